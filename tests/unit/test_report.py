"""The connection report: phases in round trips of the path, and which accelerations were used."""

from __future__ import annotations

import pytest

from icepeer.report import ConnectionReport

pytestmark = pytest.mark.unit


def test_phases_after_the_peer_was_found_are_counted_in_round_trips_of_the_path():
    report = ConnectionReport(room="r", rtt_ms=100.0, timings_ms={
        "joined": 150.0, "peer_found": 160.0, "ice_connected": 360.0, "dtls_connected": 410.0,
        "channel_open": 410.0})
    assert report.phases == [("ice_connected", 200.0, 2.0), ("dtls_connected", 50.0, 0.5),
                             ("channel_open", 0.0, 0.0)]
    assert report.to_dict()["phases"][0] == {"phase": "ice_connected", "ms": 200.0, "round_trips": 2.0}
    report.accelerated = {"snap": True, "sped": True, "preagreed": False}
    text = report.describe()
    assert "ice_connected 200 ms (2 RTT)" in text and "handshake: accelerated (snap, sped)" in text


def test_without_an_rtt_the_phases_have_no_round_trips():
    report = ConnectionReport(room="r", timings_ms={"peer_found": 1.0, "ice_connected": 5.0})
    assert report.phases == [("ice_connected", 4.0, None)]
    report.accelerated = {"snap": False, "sped": False, "preagreed": False}
    assert "handshake: standard" in report.describe()
