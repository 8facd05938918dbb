"""icepeer's SCTP (RFC 9260, 3758, 6525) and data channels (RFC 8831, 8832), by plain calls.

Two endpoints are wired in memory (``sctp_world.World``) with a fake clock,
a 10 ms one-way delay, and loss chosen at random or packet by packet.
"""

from __future__ import annotations

import itertools
import struct

import pytest

from icepeer.sctp import chunks as c
from icepeer.sctp.association import MAX_PACKET
from icepeer.sctp.datachannels import ChannelParameters, DcepMalformed, encode_open, parse_open
from icepeer.sctp.receiver import OVERHEAD, SACK_EVERY, Receiver

from .sctp_world import World

pytestmark = pytest.mark.unit


def open_channel(w: World, parameters: ChannelParameters | None = None) -> tuple[int, int]:
    """A channel a opens; its stream id on both sides once the ACK is back."""
    stream = w.a.channels.open(parameters or ChannelParameters(label="t"), w.now)
    w.pump()
    w.run(lambda: any(s == stream and not by_peer for s, _, by_peer in w.a.opens), limit=w.now + 10)
    assert w.b.opens and w.b.opens[-1][0] == stream
    return stream, stream


def kinds(packet: bytes) -> list[int]:
    return c.parse_packet(packet).order


# -- handshake -------------------------------------------------------------------------


def test_both_sides_init_at_once_and_meet():
    w = World()
    w.connect()
    assert w.now == pytest.approx(0.03)  # INIT, INIT-ACK, COOKIE-ECHO; both at once


def test_one_side_late_is_answered_before_it_starts():
    w = World()
    w.a.channels.association.start(w.now)
    w.pump()
    w.run(lambda: w.b.up and w.a.up, limit=1)
    assert w.a.up and w.b.up  # b answered a's INIT though it never started


def test_a_lost_init_is_sent_again():
    w = World()
    w.drop = lambda who, packet: who == "a" and kinds(packet) == [c.INIT] and w.sent["a"] == 1
    w.a.channels.association.start(w.now)
    w.pump()
    w.run(lambda: w.a.up and w.b.up, limit=5)
    assert w.a.up and 0.5 <= w.now < 1.0  # T1-init: 500 ms


def test_a_forged_cookie_is_ignored():
    w = World()
    w.connect()
    b = w.b.channels.association
    forged = c.serialize_packet(5000, 5000, b.local_tag, bytes(c.Chunk(c.COOKIE_ECHO, 0, b"\x00" * 24)))
    b.receive(forged, w.now)
    assert [kinds(p) for p in b.packets()] == []


# -- messages ----------------------------------------------------------------------------


def test_messages_of_every_kind_arrive():
    w = World()
    w.connect()
    sa, sb = open_channel(w)
    big = bytes(range(256)) * 240  # 61,440 bytes: 53 chunks
    for message in ("text", b"\x00bin", "", b"", big, "é" * 1000):
        w.a.channels.send(sa, message, w.now)
    w.pump()
    w.run(lambda: len(w.b.messages) == 6, limit=5)
    assert [m for _, m in w.b.messages] == ["text", b"\x00bin", "", b"", big, "é" * 1000]


@pytest.mark.parametrize("loss", [0.01, 0.05, 0.2])
def test_a_reliable_ordered_channel_loses_nothing(loss):
    w = World(loss=loss, seed=11)
    w.connect()
    sa, _ = open_channel(w)
    sent = [f"{i}:" + "x" * (i * 37 % 3000) for i in range(1000)]
    for message in sent:
        w.a.channels.send(sa, message, w.now)
    w.pump()
    w.run(lambda: len(w.b.messages) == len(sent), limit=600)
    assert [m for _, m in w.b.messages] == sent
    assert w.a.channels.association.sender.retransmitted > 0


def test_unordered_messages_are_not_held_behind_a_loss():
    w = World()
    w.connect()
    sa, _ = open_channel(w, ChannelParameters(label="u", ordered=False))
    first = []
    w.drop = lambda who, packet: who == "a" and bool(c.parse_packet(packet).data) and not first \
        and not first.append(1)
    for i in range(5):
        w.a.channels.send(sa, f"u{i}", w.now)
        w.pump()
    w.run(lambda: len(w.b.messages) == 4, limit=w.now + 0.05)
    assert [m for _, m in w.b.messages] == ["u1", "u2", "u3", "u4"]  # u0 comes later, alone
    w.run(lambda: len(w.b.messages) == 5, limit=w.now + 2)
    assert w.b.messages[-1][1] == "u0"


# -- SACK timing (RFC 9260 section 6.2) ---------------------------------------------------


def sacks_from(w: World, who: str) -> list[c.SackChunk]:
    out = []
    original = w.pump

    def pump() -> None:
        association = w.side(who).channels.association
        association.flush(w.now, burst_end=True)
        held = association.packets()
        for packet in held:
            for chunk in c.parse_packet(packet).chunks:
                if chunk.type == c.SACK:
                    out.append(c.SackChunk.parse(chunk.body))
        association._out[:0] = held
        original()

    w.pump = pump  # type: ignore[method-assign]
    return out


def test_one_sack_per_burst_and_at_least_every_eighth_packet():
    w = World()
    w.connect()
    sa, _ = open_channel(w)
    sacks = sacks_from(w, "b")
    for _i in range(40):  # 40 packets, sent in one burst
        w.a.channels.send(sa, b"p" * 1100, w.now)
    w.pump()
    w.run(lambda: len(w.b.messages) == 40, limit=5)
    w.run(limit=w.now + 0.5)
    # aiortc sends one SACK per packet: 40. RFC 9260 asks for one per two at least.
    assert 40 // SACK_EVERY <= len(sacks) <= 40 // 2
    assert w.a.channels.association.sender.inflight == type(w.a.channels.association.sender.inflight)()


def test_a_lone_packet_is_acknowledged_within_200_ms():
    w = World()
    w.connect()
    sa, _ = open_channel(w)
    w.run(limit=w.now + 1)  # quiet
    sacks = sacks_from(w, "b")
    sender = w.a.channels.association.sender
    sender.immediate_when_idle = False  # no I bit: the receiver's delayed SACK timer decides
    w.a.channels.send(sa, "one", w.now)
    sent_at = w.now
    w.pump()
    w.run(lambda: bool(sacks), limit=w.now + 1)
    assert sacks and w.now - sent_at == pytest.approx(w.delay + 0.2)  # sent when the timer fired
    w.run(limit=w.now + w.delay)
    assert not sender.inflight


def test_the_last_chunk_before_idle_asks_for_an_immediate_sack():
    w = World()
    w.connect()
    sa, _ = open_channel(w)
    w.run(limit=w.now + 1)
    sacks = sacks_from(w, "b")
    w.a.channels.send(sa, "alone", w.now)
    sent_at = w.now
    w.pump()
    w.run(lambda: bool(sacks), limit=w.now + 1)
    assert w.now - sent_at == pytest.approx(w.delay)  # sent as the chunk arrived: RFC 7053's I bit


def test_a_gap_is_reported_at_once_and_repaired_by_fast_retransmit():
    w = World()
    w.connect()
    sa, _ = open_channel(w)
    sacks = sacks_from(w, "b")
    dropped = []

    def drop(who: str, packet: bytes) -> bool:
        data = c.parse_packet(packet).data
        if who == "a" and data and not dropped:
            dropped.append(data[0][1])
            return True
        return False

    w.drop = drop
    for _i in range(12):
        w.a.channels.send(sa, b"f" * 1100, w.now)
    w.pump()
    w.run(lambda: len(w.b.messages) == 12, limit=5)
    assert any(s.gaps for s in sacks)
    # Repaired by fast retransmit, long before the T3 timer (RTO >= 400 ms).
    assert w.now < 0.4 + 0.1 + 0.05 and w.a.channels.association.sender.retransmitted == 1


def test_a_lost_retransmission_is_detected_and_sent_again_without_waiting_for_t3():
    # RFC 9260 fast-retransmits a chunk once; if that copy is lost too, only
    # T3 (400 ms at least, then a window of one packet) would send it again.
    # The chunks sent after the copy say it was lost.
    w = World()
    w.connect()
    sa, _ = open_channel(w)
    copies: list[int] = []

    def drop(who: str, packet: bytes) -> bool:
        data = c.parse_packet(packet).data
        if who != "a" or not data:
            return False
        first = data[0][1]
        copies.append(first)
        return copies.count(copies[0]) <= 2 and first == copies[0]  # the first chunk, twice

    w.drop = drop
    sent = [bytes([i]) * 1100 for i in range(40)]
    for message in sent:
        w.a.channels.send(sa, message, w.now)
    w.pump()
    w.run(lambda: len(w.b.messages) == len(sent), limit=5)
    sender = w.a.channels.association.sender
    assert [m for _, m in w.b.messages] == sent
    assert copies.count(copies[0]) == 3 and sender.t3_expiries == 0
    assert w.now < 0.3


def _four_packets_whose_first_sacks_are_lost(count: int):
    """Four packets in flight, the first ``count`` SACKs from b dropped; (sender, drop times, world)."""
    w = World()
    w.connect()
    sa, _ = open_channel(w)
    w.run(limit=w.now + 1)
    lost: list[float] = []

    def drop(who: str, packet: bytes) -> bool:
        if who == "b" and c.SACK in kinds(packet) and len(lost) < count:
            lost.append(w.now)
            return True
        return False

    sender = w.a.channels.association.sender
    w.drop = drop
    for i in range(4):
        w.a.channels.send(sa, bytes([i]) * 1100, w.now)
    w.pump()
    w.run(lambda: len(w.b.messages) == 4 and not sender.inflight, limit=w.now + 2)
    assert len(lost) == count and not sender.inflight
    return sender, lost, w


def test_a_lost_probe_answer_is_saved_by_a_second_probe_not_by_t3():
    # The window's SACK is lost, then the SACK that answers the probe too (on
    # a path with 10 % loss, one episode in a hundred): one probe per episode
    # left the sender to T3, 400 ms at least on a path of 20 ms.
    sender, lost, w = _four_packets_whose_first_sacks_are_lost(2)
    assert sender.probes == 2 and sender.t3_expiries == 0
    assert w.now - lost[0] < 0.3


def test_a_lost_sack_is_saved_by_a_tail_loss_probe_not_by_t3():
    # A window-limited sender whose window's lone SACK is lost would wait for
    # T3. Two RTTs later it sends its newest chunk again instead; the receiver
    # answers the duplicate with a SACK at once.
    sender, lost, w = _four_packets_whose_first_sacks_are_lost(1)
    assert sender.probes == 1 and sender.t3_expiries == 0
    assert w.now - lost[0] < 0.2  # two RTTs of 20 ms, not T3's 400 ms


def test_a_lost_tail_is_resent_by_the_t3_timer():
    w = World()
    w.connect()
    sa, _ = open_channel(w)
    w.drop = lambda who, packet: who == "a" and bool(c.parse_packet(packet).data) and w.now < 10
    w.a.channels.send(sa, "tail", w.now)
    w.pump()
    w.run(lambda: w.now >= 10, limit=11)
    w.drop = None
    w.run(lambda: bool(w.b.messages and w.b.messages[-1][1] == "tail"), limit=30)
    sender = w.a.channels.association.sender
    assert sender.retransmitted >= 4 and sender.rto > 1.0  # backed off, then delivered


# -- the receive window: bounded memory (RFC 9260 section 6) ------------------------------


def test_a_reader_that_stops_stops_the_sender_and_loses_nothing():
    w = World(receive_buffer=256 * 1024)
    w.connect()
    sa, _ = open_channel(w)
    w.b.auto_read = False
    messages = [bytes([i % 256]) * 16000 for i in range(200)]  # 3.2 MB
    for message in messages:
        w.a.channels.send(sa, message, w.now)
    w.pump()
    w.run(limit=w.now + 5)
    receiver = w.b.channels.association.receiver
    held = receiver.held + receiver.unread
    assert held <= 256 * 1024 + MAX_PACKET + OVERHEAD
    assert receiver.a_rwnd == 0 and receiver.dropped <= 16  # zero-window probes only
    assert len(w.b.messages) < 20
    w.b.auto_read = True
    w.b.read_all()
    w.pump()
    w.run(lambda: len(w.b.messages) == len(messages), limit=w.now + 60)
    assert [m for _, m in w.b.messages] == messages


def test_a_peer_that_ignores_the_window_is_cut_off():
    w = World(receive_buffer=256 * 1024)
    w.connect()
    sa, _ = open_channel(w)
    w.b.auto_read = False
    sender = w.a.channels.association.sender
    for _i in range(400):
        w.a.channels.send(sa, b"z" * 16000, w.now)
        sender.peer_rwnd = 1 << 30  # the hostile sender pretends the window is open
        sender.cwnd = 1 << 30
        w.pump()
        w.run(limit=w.now + 0.01)
        if w.b.ended:
            break
    w.run(limit=w.now + 0.1)  # the ABORT reaches a
    reason, by_peer = w.b.ended  # type: ignore[misc]
    assert "beyond the receive window" in reason and not by_peer
    receiver = w.b.channels.association.receiver
    assert receiver.held + receiver.unread <= 256 * 1024 + MAX_PACKET + OVERHEAD
    assert w.a.ended and "protocol violation" in w.a.ended[0]


def test_a_message_larger_than_the_limit_aborts():
    w = World()
    w.connect()
    sa, _ = open_channel(w)
    w.a.channels.send(sa, b"m" * 70000, w.now)  # max_message is 65536 on both sides
    w.pump()
    w.run(lambda: w.b.ended is not None, limit=5)
    assert w.b.ended and "65536" in w.b.ended[0]


# -- partial reliability (RFC 3758) -------------------------------------------------------


def test_max_retransmits_zero_skips_lost_messages_without_a_stall():
    w = World(loss=0.2, seed=4)
    w.connect()
    sa, _ = open_channel(w, ChannelParameters(label="pr", max_retransmits=0))
    for i in range(300):
        w.a.channels.send(sa, f"m{i}", w.now)
        w.pump()
        w.run(limit=w.now + 0.002)
    w.run(limit=w.now + 10)
    got = [m for _, m in w.b.messages]
    assert 150 < len(got) < 300
    assert got == sorted(got, key=lambda m: int(str(m)[1:]))  # ordered, with holes
    sender = w.a.channels.association.sender
    assert sender.idle and sender.advanced_peer_ack == sender.cumulative_acked


def test_an_expired_lifetime_message_is_skipped():
    w = World()
    w.connect()
    sa, _ = open_channel(w, ChannelParameters(label="t", max_packet_lifetime=100))
    w.drop = lambda who, packet: who == "a" and bool(c.parse_packet(packet).data) and w.now < 1
    w.a.channels.send(sa, "stale", w.now)
    w.pump()
    w.run(limit=1)
    w.drop = None
    w.a.channels.send(sa, "fresh", w.now)
    w.pump()
    w.run(lambda: bool(w.b.messages), limit=3)
    w.run(limit=w.now + 0.5)
    assert [m for _, m in w.b.messages] == ["fresh"]


# -- channels: DCEP and closing -------------------------------------------------------------


def test_dcep_open_carries_every_option_and_rejects_garbage():
    for p in (ChannelParameters("a", "proto", True, None, None), ChannelParameters("é", "", False, 3, None),
              ChannelParameters("t", "", True, None, 1500)):
        assert parse_open(encode_open(p)) == p
    with pytest.raises(DcepMalformed):
        parse_open(encode_open(ChannelParameters("x"))[:-1])
    with pytest.raises(DcepMalformed):
        parse_open(b"\x03\x55" + bytes(10))


def test_closing_resets_both_directions_and_frees_the_stream():
    w = World()
    w.connect()
    sa, _ = open_channel(w)
    w.a.channels.send(sa, "last words", w.now)
    w.a.channels.close(sa)
    w.pump()
    w.run(lambda: sa in w.a.closed_channels and sa in w.b.closed_channels, limit=5)
    assert w.b.messages[-1][1] == "last words"
    assert sa not in w.a.channels.channels and sa not in w.b.channels.channels
    again = w.a.channels.open(ChannelParameters(label="again"), w.now)
    w.pump()
    w.run(lambda: len(w.b.opens) == 2, limit=w.now + 5)
    w.a.channels.send(again, "hi", w.now)
    w.pump()
    w.run(lambda: w.b.messages[-1][1] == "hi", limit=w.now + 5)


def test_the_peer_may_not_open_a_stream_of_our_parity():
    w = World()
    w.connect()
    b = w.b.channels.association
    # a is the DTLS client (even ids); b receives an OPEN on an odd (its own) id.
    w.a.channels.association.send(1, 50, encode_open(ChannelParameters("sneaky")), w.now)
    w.pump()
    w.run(limit=w.now + 1)
    assert w.b.opens == [] and b.established


# -- malformed packets ---------------------------------------------------------------------


def test_malformed_packets_are_dropped_not_fatal():
    w = World()
    w.connect()
    sa, _ = open_channel(w)
    b = w.b.channels.association
    good = c.serialize_packet(5000, 5000, b.local_tag, c.sack_chunk(0, 1000, [], []))
    for bad in (b"", b"\x00" * 11, good[:-1], good[:8] + b"\xff\xff\xff\xff" + good[12:],
                c.serialize_packet(5000, 5000, 12345, c.sack_chunk(0, 1000, [], [])),
                c.serialize_packet(5000, 5000, b.local_tag, struct.pack("!BBH", 0, 3, 200) + bytes(20)),
                c.serialize_packet(5000, 5000, b.local_tag, struct.pack("!BBH", 3, 0, 8) + bytes(4))):
        b.receive(bad, w.now)
    w.a.channels.send(sa, "after", w.now)
    w.pump()
    w.run(lambda: bool(w.b.messages), limit=w.now + 1)
    assert w.b.messages[-1][1] == "after" and b.established


def test_a_flood_on_a_preagreed_stream_nobody_opened_is_held_to_the_window_then_delivered():
    # The peer may send on a pre-agreed stream before we open it: that waits,
    # unread, so a peer flooding a stream we never open only fills the window.
    from icepeer.sctp.datachannels import preagreed_stream

    w = World(receive_buffer=256 * 1024)
    w.connect()
    stream = preagreed_stream("x")
    w.a.channels.open(ChannelParameters(label="x"), w.now, stream=stream)
    messages = [bytes([i % 256]) * 16000 for i in range(200)]  # 3.2 MB
    for message in messages:
        w.a.channels.send(stream, message, w.now)
    w.pump()
    w.run(limit=w.now + 5)
    receiver = w.b.channels.association.receiver
    assert receiver.held + receiver.unread <= 256 * 1024 + MAX_PACKET + OVERHEAD
    assert receiver.a_rwnd == 0 and w.b.messages == [] and not w.b.ended
    w.b.channels.open(ChannelParameters(label="x"), w.now, stream=stream)
    w.b.channels.release(stream)
    w.pump()
    w.run(lambda: len(w.b.messages) == len(messages), limit=w.now + 60)
    assert [m for _, m in w.b.messages] == messages


def test_fast_recovery_ends_with_the_window_that_was_in_flight_not_with_the_queue():
    # TSNs are given when messages are queued: counting fast recovery until the
    # last queued TSN is acknowledged froze cwnd for the rest of a long transfer.
    w = World()
    w.connect()
    sa, _ = open_channel(w)
    sender = w.a.channels.association.sender
    dropped: list[int] = []

    def drop(who: str, packet: bytes) -> bool:
        data = c.parse_packet(packet).data
        if who == "a" and data and not dropped and sender.packets_sent > 30:
            dropped.append(data[0][1])
            return True
        return False

    w.drop = drop
    for i in range(3000):  # about 3.3 MB queued: far more than a window
        w.a.channels.send(sa, bytes([i % 256]) * 1100, w.now)
    w.pump()
    w.run(lambda: bool(dropped) and sender.congestion.fast_recovery_exit is not None, limit=w.now + 5)
    halved = sender.congestion.cwnd
    w.run(lambda: sender.congestion.cwnd > halved, limit=w.now + 5)
    assert sender.congestion.cwnd > halved and sender.outbound  # growing again, the queue not drained


def test_slow_start_ends_when_the_round_trip_grows():
    from icepeer.sctp.congestion import HYSTART_SAMPLES, Congestion

    cc = Congestion(1200)
    tsn = 0
    for rtt in (0.100, 0.100, 0.130):  # the third round: the queue is filling (eta 12.5 ms)
        for _ in range(HYSTART_SAMPLES):
            cc.sample(rtt)
            tsn += 1
            cc.acked(1200, flight_before=cc.cwnd, cumulative=tsn, advanced=True, fast=False,
                     highest_outstanding=tsn + 10)
        tsn += 10  # the round's last TSN is acknowledged: the round ends
        cc.acked(1200, flight_before=cc.cwnd, cumulative=tsn, advanced=True, fast=False,
                 highest_outstanding=tsn + 10)
    assert cc.hystart_exits == 1 and cc.ssthresh < 1 << 30  # congestion avoidance from here


def test_slow_start_ends_within_a_round_that_a_loss_holds_open():
    # A round ends when its last TSN is acknowledged; a loss early in it holds the
    # cumulative TSN back, and checking only at the round's end let slow start
    # double on into the queue (lab, 150 ms RTT: 900 packets dropped, then a T3).
    from icepeer.sctp.congestion import HYSTART_SAMPLES, Congestion

    cc = Congestion(1200)
    tsn = 0
    cc.acked(0, flight_before=cc.cwnd, cumulative=tsn, advanced=False, fast=False, highest_outstanding=20)
    for _ in range(HYSTART_SAMPLES):  # a first round at 100 ms, up to TSN 20
        cc.sample(0.100)
        tsn += 1
        cc.acked(1200, flight_before=cc.cwnd, cumulative=tsn, advanced=True, fast=False,
                 highest_outstanding=tsn + 10)
    tsn = 20
    cc.acked(1200, flight_before=cc.cwnd, cumulative=tsn, advanced=True, fast=False,
             highest_outstanding=tsn + 1000)
    for _ in range(HYSTART_SAMPLES):  # the next round's RTTs grow; its cumulative TSN is stuck
        cc.sample(0.150)
        cc.acked(1200, flight_before=cc.cwnd, cumulative=tsn, advanced=False, fast=False,
                 highest_outstanding=tsn + 1000)
    assert cc.hystart_exits == 1 and cc.cwnd > cc.ssthresh
    grown = cc.cwnd
    cc.sample(0.150)
    cc.acked(1200, flight_before=cc.cwnd, cumulative=tsn + 1, advanced=True, fast=False,
             highest_outstanding=tsn + 1000)
    assert cc.hystart_exits == 1 and cc.cwnd == grown  # congestion avoidance: no slow-start step


def test_slow_start_goes_on_while_the_round_trip_holds():
    from icepeer.sctp.congestion import HYSTART_SAMPLES, Congestion

    cc = Congestion(1200)
    tsn = 0
    for _round in range(5):
        for _ in range(HYSTART_SAMPLES):
            cc.sample(0.100)
            tsn += 1
            cc.acked(1200, flight_before=cc.cwnd, cumulative=tsn, advanced=True, fast=False,
                     highest_outstanding=tsn + 10)
        tsn += 10
        cc.acked(1200, flight_before=cc.cwnd, cumulative=tsn, advanced=True, fast=False,
                 highest_outstanding=tsn + 10)
    assert cc.hystart_exits == 0 and cc.ssthresh == 1 << 30


@pytest.mark.parametrize("unordered", [False, True])
def test_fragments_in_any_order_make_each_message_once_across_the_tsn_wrap(unordered):
    # Reassembly looks for a message's ends only when the fragment could have
    # completed it; every arrival order must still give each message once, in
    # order, and leave nothing held (the TSNs wrap through 2^32 on the way).
    flag = c.FLAG_UNORDERED if unordered else 0
    first = 0xFFFFFFFE
    for order in itertools.permutations(range(4)):
        got: list[bytes] = []
        r = Receiver(first, limit=1 << 20, max_message=1 << 20, deliver=lambda s, p, d, got=got: got.append(d))
        # Message 0 in TSNs first..first+2 (B, middle, E), message 1 in one unfragmented chunk.
        chunks = [(c.FLAG_BEGIN | flag, first, 0, 0, 51, b"ab"), (flag, (first + 1) & 0xFFFFFFFF, 0, 0, 51, b"cd"),
                  (c.FLAG_END | flag, (first + 2) & 0xFFFFFFFF, 0, 0, 51, b"ef"),
                  (c.FLAG_BEGIN | c.FLAG_END | flag, (first + 3) & 0xFFFFFFFF, 0, 1, 51, b"gh")]
        for i in order:
            r.data(chunks[i], 0.0, 0)
        if unordered:
            assert sorted(got) == [b"abcdef", b"gh"], order
        else:
            assert got == [b"abcdef", b"gh"], order
        assert r.held == 0 and not r.streams[0].fragments, order
