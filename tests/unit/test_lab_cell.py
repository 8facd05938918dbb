"""Reading a peer's --json transcript, and what a cell reports."""

from __future__ import annotations

import json

from icepeer.lab.cell import CellResult, Mode, PeerReport, Transcript, ice_server_args


def connected(local: str = "srflx", remote: str = "relay", ms: float = 715) -> str:
    return json.dumps({"event": "connected",
                       "local": {"type": local, "address": "198.51.100.10", "port": 4000, "protocol": "udp"},
                       "remote": {"type": remote, "address": "198.51.100.2", "port": 5000, "protocol": "udp"},
                       "elapsed_ms": ms})


def transcript(*lines: str) -> Transcript:
    t = Transcript()
    for line in lines:
        t.feed(line)
    return t


def test_transcript_reads_events_and_keeps_junk_apart() -> None:
    t = transcript(connected(), '{"event":"message","data":"b->a 1"}', "not json", "",
                   '{"event":"closed","reason":"stdin closed"}', '{"no":"event"}')
    assert t.connected is not None and t.elapsed_ms == 715
    assert t.messages == ["b->a 1"]
    assert t.closed == "stdin closed"
    assert t.other == ["not json", '{"no":"event"}']
    assert t.candidate("local")["type"] == "srflx"


def test_errors_are_collected() -> None:
    t = transcript('{"event":"error","message":"ICE failed"}')
    report = PeerReport.from_transcript(t, sent=0, exit_code=1)
    assert not report.connected and report.error == "ICE failed"


def test_stderr_explains_a_silent_failure() -> None:
    report = PeerReport.from_transcript(Transcript(), sent=0, exit_code=2,
                                        stderr_tail="usage: ...\nerror: unrecognized arguments: --json")
    assert report.error == "error: unrecognized arguments: --json"


def test_cell_counts_lost_messages_both_ways() -> None:
    ta = transcript(connected(ms=700), '{"event":"message","data":"x"}')
    tb = transcript(connected("relay", "srflx", 715), *['{"event":"message","data":"y"}'] * 3)
    pa = PeerReport.from_transcript(ta, sent=3, exit_code=0)
    pb = PeerReport.from_transcript(tb, sent=3, exit_code=0)
    r = CellResult.from_peers("prc", "sym", Mode.ICE, pa, pb, ta, wall_ms=1900, seconds=3.2)
    assert r.connected and r.outcome == "relay" and r.path == "srflx -> relay (udp)"
    assert r.connect_ms == 715  # the slower peer
    assert (r.sent, r.lost) == (6, 2)
    assert r.summary().endswith("relay srflx -> relay (udp), connected in 715 ms, 2 of 6 messages lost")
    again = CellResult.from_json(json.loads(json.dumps(r.to_json())))
    assert again == r


def test_summary_names_a_peer_that_exited_badly() -> None:
    ta = transcript(connected(), '{"event":"closed","reason":"not everything sent was delivered"}')
    pa = PeerReport.from_transcript(ta, sent=3, exit_code=1)
    pb = PeerReport.from_transcript(transcript(connected()), sent=3, exit_code=0)
    assert pa.closed == "not everything sent was delivered"
    r = CellResult.from_peers("sym", "sym", Mode.ICE, pa, pb, ta, wall_ms=1, seconds=1)
    assert r.summary().endswith("; A exited 1 (not everything sent was delivered)")


def test_one_side_connected_is_a_failure() -> None:
    ta = transcript(connected("host", "host"))
    pa = PeerReport.from_transcript(ta, sent=0, exit_code=1)
    pb = PeerReport.from_transcript(transcript('{"event":"error","message":"timeout"}'), sent=0, exit_code=1)
    r = CellResult.from_peers("sym", "sym", Mode.ICE_NO_TURN, pa, pb, ta, wall_ms=None, seconds=12)
    assert not r.connected and r.outcome == "failed" and r.path is None
    assert r.error == "timeout" and r.connect_ms is None
    assert "FAILED after 12.0 s (timeout)" in r.summary()


def test_direct_outcome() -> None:
    ta = transcript(connected("host", "prflx"))
    p = PeerReport.from_transcript(ta, sent=1, exit_code=0)
    r = CellResult.from_peers("full", "sym", Mode.PUNCH, p, p, ta, wall_ms=1, seconds=1)
    assert r.outcome == "direct" and r.ip_version == 4


def test_an_ipv6_pair_says_so() -> None:
    line = json.dumps({"event": "connected", "elapsed_ms": 90,
                       "local": {"type": "host", "address": "2001:db8:1::2", "port": 4000,
                                 "protocol": "udp"},
                       "remote": {"type": "host", "address": "2001:db8:2::2", "port": 5000}})
    ta = transcript(line)
    p = PeerReport.from_transcript(ta, sent=3, exit_code=0)
    r = CellResult.from_peers("sym", "sym", Mode.ICE, p, p, ta, wall_ms=1, seconds=1)
    assert r.ip_version == 6 and r.path == "host -> host (udp, IPv6)"
    assert CellResult.from_json(json.loads(json.dumps(r.to_json()))) == r
    # a matrix.json written before the field existed still reads
    old = {k: v for k, v in r.to_json().items() if k != "ip_version"}
    assert CellResult.from_json(old).ip_version is None


def test_modes_map_to_ice_server_flags() -> None:
    stun = "stun:198.51.100.2:3478"
    turn = ["turn:lab:lab@198.51.100.2:3478?transport=udp", "turn:lab:lab@198.51.100.2:3478?transport=tcp"]

    def urls(mode: Mode) -> list[str]:
        args = ice_server_args(mode)
        return [args[i + 1] for i, a in enumerate(args) if a == "--ice-server"]

    assert urls(Mode.ICE) == [stun, *turn]
    assert urls(Mode.ICE_NO_TURN) == [stun] == urls(Mode.PUNCH)
    assert urls(Mode.RELAY_ONLY) == turn and "--relay-only" in ice_server_args(Mode.RELAY_ONLY)
    assert "--relay-only" not in ice_server_args(Mode.ICE)
    assert Mode.PUNCH.verb == "punch" and Mode.RELAY_ONLY.verb == "connect"


def test_a_move_off_the_relay_is_the_cells_path() -> None:
    path = json.dumps({"event": "path", "reason": "direct", "elapsed_ms": 399.6,
                       "local": {"type": "host", "address": "10.0.1.2", "port": 4000, "protocol": "udp"},
                       "remote": {"type": "prflx", "address": "198.51.100.7", "port": 6000, "protocol": "udp"}})
    ta = transcript(connected("srflx", "relay"))
    assert ta.relayed and ta.moved_ms is None
    ta.feed(path)
    assert not ta.relayed and ta.moved_ms == 399.6
    p = PeerReport.from_transcript(ta, sent=3, exit_code=0)
    r = CellResult.from_peers("addr", "sym", Mode.ICE, p, p, ta, wall_ms=1, seconds=1)
    assert (r.outcome, r.path, r.moved_ms) == ("direct", "host -> prflx (udp)", 399.6)
    assert p.local == "host 10.0.1.2:4000/udp"
    assert CellResult.from_json(json.loads(json.dumps(r.to_json()))) == r
