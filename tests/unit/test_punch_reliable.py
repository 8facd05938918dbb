"""The acknowledged mode's two halves on their own: RFC 6298 timers, windows, reordering."""

from __future__ import annotations

import random

import pytest

from icepeer.punch.reliable import ReliableReceiver, ReliableSender, RttEstimator
from icepeer.punch.wire import Flags


def test_rtt_estimator_follows_rfc_6298():
    rtt = RttEstimator(initial_rto=1.0, min_rto=0.0, max_rto=60.0)
    assert rtt.rto == 1.0  # section 2.1
    rtt.sample(0.1)  # section 2.2
    assert rtt.srtt == pytest.approx(0.1) and rtt.rttvar == pytest.approx(0.05)
    assert rtt.rto == pytest.approx(0.1 + 4 * 0.05)
    rtt.sample(0.3)  # section 2.3
    assert rtt.rttvar == pytest.approx(0.75 * 0.05 + 0.25 * 0.2)
    assert rtt.srtt == pytest.approx(0.875 * 0.1 + 0.125 * 0.3)
    before = rtt.rto
    rtt.backoff()
    assert rtt.rto == pytest.approx(2 * before)


def test_rto_is_clamped():
    rtt = RttEstimator(min_rto=0.2, max_rto=3.0)
    rtt.sample(0.001)
    assert rtt.rto == 0.2
    for _ in range(10):
        rtt.backoff()
    assert rtt.rto == 3.0


def test_window_limits_what_is_in_flight():
    sender = ReliableSender(RttEstimator(), fragment_size=10, window=4)
    sender.queue(b"x" * 95, text=False)  # 10 fragments
    first = sender.poll(0.0)
    assert [f.seq for f in first] == [0, 1, 2, 3]
    assert [f.flags for f in first] == [Flags.NONE] * 4
    assert sender.outstanding == 10 and sender.poll(0.1) == []
    assert sender.ack(2, 0.1) == 2
    assert [f.seq for f in sender.poll(0.1)] == [4, 5]
    assert sender.ack(10, 0.2) == 0  # acknowledging what was never sent is ignored
    assert sender.ack(1, 0.2) == 0  # old
    sender.ack(6, 0.2)
    rest = sender.poll(0.2)
    assert [f.seq for f in rest] == [6, 7, 8, 9] and rest[-1].flags == Flags.FIN
    sender.ack(10, 0.3)
    assert sender.all_delivered and sender.next_deadline() is None


def test_timeout_retransmits_and_backs_off_karn():
    rtt = RttEstimator(initial_rto=1.0, min_rto=0.2)
    sender = ReliableSender(rtt, fragment_size=100)
    sender.queue(b"a", text=True)
    sender.queue(b"b", text=True)
    assert len(sender.poll(0.0)) == 2 and sender.next_deadline() == 1.0
    assert sender.poll(0.99) == []
    again = sender.poll(1.0)
    assert [f.seq for f in again] == [0, 1] and sender.retransmissions == 2
    assert rtt.rto == 2.0 and sender.next_deadline() == 3.0
    sender.ack(2, 1.05)
    assert rtt.srtt is None  # Karn: no sample from retransmitted fragments
    assert sender.all_delivered


def test_receiver_reorders_and_reassembles():
    sender = ReliableSender(RttEstimator(), fragment_size=3)
    messages = [b"alpha", b"", b"gamma-delta", "текст".encode()]
    for i, m in enumerate(messages):
        sender.queue(m, text=(i == 3))
    frags = sender.poll(0.0)
    random.Random(5).shuffle(frags)
    receiver = ReliableReceiver()
    got: list[tuple[bytes, bool]] = []
    for f in frags + frags[:3]:  # and some duplicates
        got += receiver.receive(f.seq, f.payload, f.flags)
    assert got == [(m, i == 3) for i, m in enumerate(messages)]
    assert receiver.duplicates == 3 and receiver.next_expected == len(frags)


def test_receiver_drops_beyond_its_window_and_oversized_messages():
    receiver = ReliableReceiver(window=4, max_message=5)
    assert receiver.receive(4, b"far", Flags.FIN) == [] and receiver.dropped == 1
    assert receiver.receive(0, b"1234", Flags.NONE) == []
    assert receiver.receive(1, b"56", Flags.FIN) == []  # 6 bytes > 5: dropped whole
    assert receiver.receive(2, b"ok", Flags.FIN) == [(b"ok", False)]
