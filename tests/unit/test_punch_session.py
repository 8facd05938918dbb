"""The puncher's state machine, driven by plain function calls on a simulated network.

No sockets: :class:`World` carries datagrams between two :class:`PunchSession`
objects with a latency, through optional NAT rewrites and drop rules, on a
clock it advances itself. Addresses are documentation ranges; nothing is sent.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable

import pytest
from aioice import stun as codec

from icepeer.errors import ChannelClosed, MessageTooLarge
from icepeer.punch import (
    Candidate,
    CandidateType,
    Closed,
    Connected,
    DatagramReceived,
    Failed,
    Gathered,
    MessageReceived,
    Offer,
    PunchConfig,
    PunchSession,
    State,
)
from icepeer.punch.session import MAX_KEEPALIVE_INTERVAL
from icepeer.punch.wire import Packet, PacketType, session_key

Address = tuple[str, int]
A_HOST: Address = ("10.0.0.1", 5000)
B_HOST: Address = ("10.0.1.2", 6000)
STUN_SERVER: Address = ("192.0.2.1", 3478)
LATENCY = 0.010


def kind(data: bytes) -> PacketType | None:
    return PacketType(data[5]) if data[:4] == b"IPUN" else None


class World:
    """Two sessions, a STUN server, NATs that rewrite source addresses, a drop rule."""

    def __init__(self, *, a_public: Address | None = None, b_public: Address | None = None,
                 stun: bool = False, config: PunchConfig | None = None,
                 a_deadline: float | None = None, b_deadline: float | None = None,
                 drop: Callable[[PunchSession, bytes, Address], bool] | None = None) -> None:
        self.now = 0.0
        servers = [STUN_SERVER] if stun else []
        self.a = PunchSession(host_candidates=[A_HOST], stun_servers=servers, now=0.0,
                              config=config, connect_deadline=a_deadline)
        self.b = PunchSession(host_candidates=[B_HOST], stun_servers=servers, now=0.0,
                              config=config, connect_deadline=b_deadline)
        self.host = {self.a: A_HOST, self.b: B_HOST}
        # Where a session's packets appear to come from, and which addresses reach it.
        self.public = {self.a: a_public or A_HOST, self.b: b_public or B_HOST}
        self.routes: dict[Address, PunchSession] = {A_HOST: self.a, B_HOST: self.b}
        self.routes[self.public[self.a]] = self.a
        self.routes[self.public[self.b]] = self.b
        self.drop: Callable[[PunchSession, bytes, Address], bool] = drop or (lambda s, d, to: False)
        self.sent: dict[PunchSession, list[tuple[float, bytes, Address]]] = {self.a: [], self.b: []}
        self.received: dict[PunchSession, list[float]] = {self.a: [], self.b: []}
        self.events: dict[PunchSession, list[object]] = {self.a: [], self.b: []}
        self._flight: list[tuple[float, int, PunchSession, bytes, Address]] = []
        self._seq = itertools.count()
        self._collect()

    def other(self, s: PunchSession) -> PunchSession:
        return self.b if s is self.a else self.a

    def exchange(self, *, a_at: float | None = None, b_at: float | None = None) -> None:
        """Hand each side the other's offer (now, or at the given times)."""
        if a_at is None and b_at is None:
            self.a.set_remote_offer(self.b.offer, self.now)
            self.b.set_remote_offer(self.a.offer, self.now)
            self._collect()
            return
        raise NotImplementedError

    def _collect(self) -> None:
        for s in (self.a, self.b):
            self.events[s].extend(s.events_received())
            for data, to in s.datagrams_to_send():
                self.sent[s].append((self.now, data, to))
                if self.drop(s, data, to):
                    continue
                if to == STUN_SERVER:
                    reply = self._stun_answer(data, self.public[s])
                    if reply is not None:
                        self._queue(s, reply, STUN_SERVER)
                    continue
                dest = self.routes.get(to)
                if dest is not None and dest is not s:
                    self._queue(dest, data, self.public[s])

    def _stun_answer(self, data: bytes, source: Address) -> bytes | None:
        request = codec.parse_message(data)
        if request.message_method != codec.Method.BINDING:
            return None
        response = codec.Message(codec.Method.BINDING, codec.Class.RESPONSE,
                                 transaction_id=request.transaction_id)
        response.attributes["XOR-MAPPED-ADDRESS"] = source
        return bytes(response)

    def _queue(self, dest: PunchSession, data: bytes, src: Address) -> None:
        heapq.heappush(self._flight, (self.now + LATENCY, next(self._seq), dest, data, src))

    def inject(self, dest: PunchSession, data: bytes, src: Address) -> None:
        dest.datagram_received(data, src, self.now)
        self._collect()

    def run(self, until: float) -> None:
        """Advance the clock to ``until``, delivering and firing timers on the way."""
        stuck = 0
        while True:
            due = [d for s in (self.a, self.b) if (d := s.next_deadline()) is not None]
            if self._flight:
                due.append(self._flight[0][0])
            nxt = min(due, default=None)
            # A deadline that handle_timer() does not move would spin an event loop.
            stuck = stuck + 1 if nxt is not None and nxt <= self.now else 0
            assert stuck < 1000, f"a timer due at {nxt} is never served"
            if nxt is None or nxt > until:
                self.now = until
                for s in (self.a, self.b):
                    s.handle_timer(self.now)
                self._collect()
                return
            self.now = max(self.now, nxt)
            while self._flight and self._flight[0][0] <= self.now:
                _, _, dest, data, src = heapq.heappop(self._flight)
                self.received[dest].append(self.now)
                dest.datagram_received(data, src, self.now)
                self._collect()
            for s in (self.a, self.b):
                s.handle_timer(self.now)
            self._collect()

    def of(self, s: PunchSession, cls: type) -> list:
        return [e for e in self.events[s] if isinstance(e, cls)]

    def packets(self, s: PunchSession, ptype: PacketType, since: float = -1.0) -> list[tuple[float, Address]]:
        return [(t, to) for t, d, to in self.sent[s] if kind(d) is ptype and t > since]

    def connect(self) -> None:
        self.exchange()
        self.run(self.now + 0.5)
        assert self.a.connected and self.b.connected


# -- connecting ------------------------------------------------------------


def test_host_to_host_connects_in_one_round_trip():
    w = World()
    assert w.of(w.a, Gathered)[0].candidates == (Candidate(CandidateType.HOST, *A_HOST),)
    w.exchange()
    w.run(0.1)
    for s, me, peer in ((w.a, A_HOST, B_HOST), (w.b, B_HOST, A_HOST)):
        (connected,) = w.of(s, Connected)
        assert connected.local == Candidate(CandidateType.HOST, *me)
        assert connected.remote == Candidate(CandidateType.HOST, *peer)
        assert connected.rtt == pytest.approx(2 * LATENCY)
        assert s.remote_address == peer
        assert s.report().timings["connected"] == pytest.approx(2 * LATENCY)
    assert w.a.report().punch_tries == 1


def test_simultaneous_send_both_lock_and_connect_once():
    """Both sides punch at the same instant: each locks on the other's probe."""
    w = World()
    w.exchange()
    first = {s: w.packets(s, PacketType.PROBE) for s in (w.a, w.b)}
    assert first[w.a] == [(0.0, B_HOST)] and first[w.b] == [(0.0, A_HOST)]
    w.run(1.0)
    assert len(w.of(w.a, Connected)) == 1 and len(w.of(w.b, Connected)) == 1
    assert not w.of(w.a, Failed) and not w.of(w.b, Failed)
    assert w.a.remote_address == B_HOST and w.b.remote_address == A_HOST
    # Both answered the other's probe: four packets on the wire before the connection.
    assert len(w.packets(w.a, PacketType.REPLY)) >= 1 and len(w.packets(w.b, PacketType.REPLY)) >= 1
    # Nothing more is sent before the first keepalive is due.
    assert w.packets(w.a, PacketType.PROBE, since=0.05) == []


def test_late_offer_side_ignores_early_probes_then_connects():
    """B learns A's offer 1 s after A learned B's: A's early probes are counted, then it works."""
    w = World()
    w.a.set_remote_offer(w.b.offer, 0.0)
    w._collect()
    w.run(1.0)
    assert w.a.state is State.PUNCHING and w.b.state is State.READY
    assert w.b.report().ignored == {"early": 10}
    w.b.set_remote_offer(w.a.offer, w.now)
    w._collect()
    w.run(1.5)
    assert w.a.connected and w.b.connected
    assert w.a.report().punch_tries < 30


def test_a_probe_from_the_peer_triggers_a_probe_back():
    """A's scheduled probe reached B before B had A's offer; B's probe must not wait 100 ms
    for A's next one (RFC 8445 section 7.3.1.4 triggered checks)."""
    w = World()
    w.a.set_remote_offer(w.b.offer, 0.0)
    w._collect()
    w.run(0.05)
    assert w.b.report().ignored == {"early": 1}
    w.b.set_remote_offer(w.a.offer, w.now)
    w._collect()
    w.run(0.05 + 4 * LATENCY + 0.001)  # B's probe, A's reply and probe, B's reply
    assert w.a.connected and w.b.connected
    assert w.a.report().timings["connected"] == pytest.approx(0.05 + 3 * LATENCY)
    assert w.a.report().punch_tries == 1


def test_probes_go_to_every_offered_address_until_locked():
    w = World(a_public=("198.51.100.1", 40000))
    # B also offers an address that leads nowhere.
    extra = Offer(w.b.offer.token, w.b.offer.key,
                  (*w.b.offer.candidates, Candidate(CandidateType.SRFLX, "203.0.113.9", 9)))
    w.a.set_remote_offer(extra, 0.0)
    w.b.set_remote_offer(w.a.offer, 0.0)
    w._collect()
    assert sorted(to for _, to in w.packets(w.a, PacketType.PROBE)) == [B_HOST, ("203.0.113.9", 9)]
    w.run(0.5)
    assert w.a.connected
    after = w.packets(w.a, PacketType.PROBE, since=0.0)
    assert all(to == B_HOST for _, to in after)


def test_port_rewrite_locks_the_peer_reflexive_address():
    """B's NAT gives it another port than STUN saw: A locks the rewritten one (prflx)."""
    b_public = ("203.0.113.7", 7001)
    w = World(b_public=b_public)
    # B offers its host address (unreachable from A) and the srflx STUN saw (port 7000).
    b_offer = w.b.offer.with_candidates(
        [Candidate(CandidateType.HOST, *B_HOST), Candidate(CandidateType.SRFLX, "203.0.113.7", 7000)])
    del w.routes[B_HOST]
    w.a.set_remote_offer(b_offer, 0.0)
    w.b.set_remote_offer(w.a.offer, 0.0)
    w._collect()
    w.run(1.0)
    (a_conn,) = w.of(w.a, Connected)
    assert a_conn.remote == Candidate(CandidateType.PRFLX, *b_public)
    assert w.a.remote_address == b_public
    (b_conn,) = w.of(w.b, Connected)
    assert b_conn.local == Candidate(CandidateType.PRFLX, *b_public)
    assert b_conn.remote == Candidate(CandidateType.HOST, *A_HOST)
    # Everything after the lock goes to the rewritten port, nothing to the offered ones.
    locked_at = w.a.report().timings["locked"]
    assert {to for t, to in w.packets(w.a, PacketType.PROBE) if t >= locked_at} <= {b_public}


def test_stun_learns_the_server_reflexive_candidate():
    w = World(stun=True, a_public=("198.51.100.1", 41000), b_public=("203.0.113.7", 7000))
    del w.routes[A_HOST], w.routes[B_HOST]  # only the public addresses are reachable
    w.run(0.05)
    for s, public in ((w.a, ("198.51.100.1", 41000)), (w.b, ("203.0.113.7", 7000))):
        (gathered,) = w.of(s, Gathered)
        assert Candidate(CandidateType.SRFLX, *public) in gathered.candidates
        assert s.report().stun_mapped == [public]
    w.exchange()
    w.run(1.0)
    (conn,) = w.of(w.a, Connected)
    assert conn.local == Candidate(CandidateType.SRFLX, "198.51.100.1", 41000)
    assert conn.remote == Candidate(CandidateType.SRFLX, "203.0.113.7", 7000)


def test_stun_retransmits_then_gives_up_with_host_candidates_only():
    w = World(stun=True, config=PunchConfig(stun_rto=0.5, stun_timeout=3.0),
              drop=lambda s, data, to: to == STUN_SERVER)
    w.run(2.9)
    times = [t for t, _, to in w.sent[w.a] if to == STUN_SERVER]
    assert times == pytest.approx([0.0, 0.5, 1.5])  # RFC 8489 section 6.2.1: RTO doubles
    assert w.a.state is State.GATHERING and not w.of(w.a, Gathered)
    w.run(3.0)
    (gathered,) = w.of(w.a, Gathered)
    assert gathered.candidates == (Candidate(CandidateType.HOST, *A_HOST),)
    assert "no answer from STUN server 192.0.2.1:3478" in gathered.errors[0]
    w.exchange()
    w.run(3.5)
    assert w.a.connected


def test_stun_error_response_is_reported():
    w = World(stun=True, drop=lambda s, data, to: to == STUN_SERVER)
    w.run(0.0)
    request = codec.parse_message(w.sent[w.a][0][1])
    error = codec.Message(codec.Method.BINDING, codec.Class.ERROR,
                          transaction_id=request.transaction_id)
    error.attributes["ERROR-CODE"] = (400, "Bad Request")
    w.inject(w.a, bytes(error), STUN_SERVER)
    (gathered,) = w.of(w.a, Gathered)
    assert "error (400, 'Bad Request')" in gathered.errors[0]


# -- authentication ----------------------------------------------------------


def forged(s: PunchSession, kind_: PacketType, *, to: bytes, key: bytes, number: int = 1,
           observed: Address | None = None) -> bytes:
    return Packet(kind_, to, number, observed=observed).serialize(key)


def test_token_mismatch_is_ignored_and_does_not_lock():
    w = World()
    w.exchange()
    key = session_key(w.a.offer.key, w.b.offer.key)
    attacker = ("203.0.113.66", 666)
    # Another session's token, even with the right key: dropped as TOKEN.
    w.inject(w.a, forged(w.a, PacketType.PROBE, to=b"\x00" * 8, key=key), attacker)
    # Our token with a wrong key (someone who saw a packet but not the offers): INTEGRITY.
    w.inject(w.a, forged(w.a, PacketType.PROBE, to=w.a.offer.token, key=b"k" * 32), attacker)
    # A's own packet reflected back to it carries B's token: TOKEN.
    reflected = w.sent[w.a][-1][1]
    w.inject(w.a, reflected, attacker)
    assert w.a.report().ignored == {"token": 2, "integrity": 1}
    assert w.a.remote_address is None
    assert not any(to == attacker for _, _, to in w.sent[w.a])  # never answered
    w.run(0.5)
    assert w.a.connected and w.a.remote_address == B_HOST


def test_packets_before_the_offer_are_early_not_accepted():
    w = World()
    key = session_key(w.a.offer.key, w.b.offer.key)
    w.inject(w.a, forged(w.a, PacketType.PROBE, to=w.a.offer.token, key=key), B_HOST)
    assert w.a.report().ignored == {"early": 1}
    assert w.a.report().packets_accepted == 0


# -- giving up ---------------------------------------------------------------


def test_gives_up_after_30_tries_100_ms_apart():
    w = World()
    w.drop = lambda s, data, to: s is w.a  # A's packets never arrive: B never answers A
    w.a.set_remote_offer(w.b.offer, 0.0)
    w._collect()
    w.run(3.39)
    probes = w.packets(w.a, PacketType.PROBE)
    assert len(probes) == 30
    assert [t for t, _ in probes] == pytest.approx([i * 0.1 for i in range(30)])
    assert w.a.state is State.PUNCHING and not w.of(w.a, Failed)
    w.run(3.41)  # the last try at 2.9 s plus the final wait of 0.5 s
    (failed,) = w.of(w.a, Failed)
    assert "no answer from the peer after 30 punch packets" in failed.reason
    assert w.a.state is State.FAILED and w.a.report().punch_tries == 30
    with pytest.raises(ChannelClosed):
        w.a.send_message("too late", w.now)


def test_deadline_cuts_punching_short():
    w = World(a_deadline=1.0)
    w.drop = lambda s, data, to: True
    w.exchange()
    w.run(0.99)
    assert w.a.state is State.PUNCHING
    w.run(1.0)
    (failed,) = w.of(w.a, Failed)
    assert failed.reason.startswith("timed out punching after")
    assert 10 <= w.a.report().punch_tries <= 11  # 0.0, 0.1, ... (float steps may reach 1.0 - ε)
    assert w.b.state is State.PUNCHING  # B had no deadline


def test_deadline_while_waiting_for_the_offer():
    w = World(a_deadline=2.0)
    w.run(5.0)
    (failed,) = w.of(w.a, Failed)
    assert failed.reason == "timed out waiting for the peer's candidates"
    assert w.a.report().timings["failed"] == pytest.approx(2.0)


def test_unlimited_tries_with_none():
    w = World(config=PunchConfig(max_tries=None))
    w.drop = lambda s, data, to: True
    w.exchange()
    w.run(10.0)
    assert w.a.state is State.PUNCHING and len(w.packets(w.a, PacketType.PROBE)) == 101


# -- keepalives and dead peers --------------------------------------------------


def keepalive_gaps(w: World, s: PunchSession, since: float) -> list[float]:
    times = [t for t, _ in w.packets(s, PacketType.PROBE, since=since)]
    return [b - a for a, b in itertools.pairwise(times)]


def test_keepalive_schedule_default():
    """dead_timeout 10 s: one keepalive every 10/3 s of idleness, answered, both stay up."""
    w = World()
    w.connect()
    start = w.now
    w.run(start + 60)
    assert w.a.connected and w.b.connected
    sent = sorted(w.packets(w.a, PacketType.PROBE, since=start) + w.packets(w.b, PacketType.PROBE, since=start))
    times = [start] + [t for t, _ in sent]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert len(sent) >= 15
    assert max(gaps) <= 10 / 3 + 0.03
    assert w.a.rtt == pytest.approx(2 * LATENCY)


@pytest.mark.parametrize("dead, expected", [(None, 15.0), (120.0, 15.0), (30.0, 10.0), (6.0, 2.0)])
def test_keepalive_interval_is_at_most_15_s(dead, expected):
    config = PunchConfig(dead_timeout=dead)
    assert config.keepalive == pytest.approx(expected)
    assert config.keepalive <= MAX_KEEPALIVE_INTERVAL
    assert PunchConfig(keepalive_interval=60.0).keepalive == MAX_KEEPALIVE_INTERVAL
    w = World(config=config)
    w.connect()
    start = w.now
    w.drop = lambda s, data, to: s is w.b  # B is silent: A keeps its own schedule
    w.run(start + min(dead or 100.0, 100.0) - 0.1)
    gaps = keepalive_gaps(w, w.a, start)
    assert len(gaps) >= 2 and all(g == pytest.approx(expected, abs=0.011) for g in gaps)


def test_no_keepalive_while_traffic_flows():
    w = World()
    w.connect()
    start = w.now
    t = start
    while t < start + 20:
        t += 1.0
        w.run(t)
        w.a.send_datagram(b"tick", w.now)
        w._collect()
    w.run(w.now + 0.1)
    assert w.packets(w.a, PacketType.PROBE, since=start) == []
    assert len(w.of(w.b, DatagramReceived)) == 20


def test_dead_peer_detected_after_10_s_of_silence():
    w = World()
    w.connect()
    w.drop = lambda s, data, to: True  # the network goes away
    last = w.received[w.a][-1]
    w.run(last + 9.9)
    assert w.a.connected and not w.of(w.a, Closed)
    w.run(last + 10.1)
    (closed,) = w.of(w.a, Closed)
    assert closed == Closed(False, "no packet from the peer for 10 s", by_peer=False)
    assert w.a.report().timings["closed"] == pytest.approx(last + 10)


def test_dead_timeout_none_never_gives_up():
    w = World(config=PunchConfig(dead_timeout=None))
    w.connect()
    w.drop = lambda s, data, to: True
    w.run(1000.0)
    assert w.a.connected


def test_peer_left_signaling_but_path_alive_stays():
    w = World()
    w.connect()
    w.a.peer_left(w.now)
    w._collect()
    w.run(w.now + 5)
    assert w.a.connected


def test_peer_left_and_silent_is_lost_after_the_grace():
    w = World()
    w.connect()
    w.drop = lambda s, data, to: s is w.b  # B was killed
    left = w.now
    w.a.peer_left(left)
    w._collect()
    w.run(left + 1.49)
    assert w.a.connected
    assert len(w.packets(w.a, PacketType.PROBE, since=left - 0.001)) == 2  # two checks
    w.run(left + 1.51)
    (closed,) = w.of(w.a, Closed)
    assert not closed.graceful and "left the room" in closed.reason


def test_peer_left_before_connecting_fails_at_once():
    w = World()
    w.a.peer_left(0.0)
    (failed,) = w.a.events_received() or [None]  # Gathered was collected already
    assert isinstance(failed, Failed) and "left the room" in failed.reason


# -- messages --------------------------------------------------------------------


def test_messages_and_datagrams_both_ways():
    w = World()
    w.connect()
    w.a.send_message("hello", w.now)
    w.a.send_message(b"\x00\xffbinary", w.now)
    w.b.send_datagram("dgram", w.now)
    w._collect()
    w.run(w.now + 0.1)
    assert [e.data for e in w.of(w.b, MessageReceived)] == ["hello", b"\x00\xffbinary"]
    assert [e.data for e in w.of(w.a, DatagramReceived)] == ["dgram"]
    assert w.a.all_delivered
    report = w.a.report()
    assert (report.messages_sent, report.datagrams_received) == (2, 1)


def test_lost_message_is_retransmitted_and_delivered_in_order():
    w = World()
    w.connect()
    dropped: list[int] = []

    def drop_first_msg(s, data, to):
        if s is w.a and kind(data) is PacketType.MSG and not dropped:
            dropped.append(1)
            return True
        return False

    w.drop = drop_first_msg
    for text in ("one", "two", "three"):
        w.a.send_message(text, w.now)
    w._collect()
    w.run(w.now + 0.1)
    assert w.of(w.b, MessageReceived) == []  # two and three wait for one
    assert not w.a.all_delivered and w.a.outstanding == 3
    w.run(w.now + 1.0)
    assert [e.data for e in w.of(w.b, MessageReceived)] == ["one", "two", "three"]
    assert w.a.all_delivered
    assert w.a.report().retransmissions >= 1


def test_lost_acks_cause_duplicates_that_are_dropped():
    w = World()
    w.connect()
    acks = {"dropped": 0}

    def drop_acks(s, data, to):
        if s is w.b and kind(data) is PacketType.ACK and acks["dropped"] < 2:
            acks["dropped"] += 1
            return True
        return False

    w.drop = drop_acks
    w.a.send_message("once", w.now)
    w._collect()
    w.run(w.now + 3)
    assert [e.data for e in w.of(w.b, MessageReceived)] == ["once"]
    assert w.b.report().duplicates >= 1
    assert w.a.all_delivered


def test_big_message_is_fragmented_and_reassembled():
    w = World()
    w.connect()
    big = bytes(range(256)) * 40  # 10 KiB: 9 fragments of at most 1164 bytes
    w.a.send_message(big, w.now)
    w._collect()
    sizes = [len(d) for _, d, _ in w.sent[w.a] if kind(d) is PacketType.MSG]
    assert len(sizes) == 9 and max(sizes) <= 1200
    w.run(w.now + 0.2)
    assert [e.data for e in w.of(w.b, MessageReceived)] == [big]


def test_limits_and_sending_before_connecting():
    w = World()
    with pytest.raises(ChannelClosed):
        w.a.send_message("early", 0.0)
    with pytest.raises(ChannelClosed):
        w.a.send_datagram("early", 0.0)
    w.connect()
    with pytest.raises(MessageTooLarge):
        w.a.send_datagram(b"x" * 1169, w.now)
    w.a.send_datagram(b"x" * 1168, w.now)
    with pytest.raises(MessageTooLarge):
        w.a.send_message(b"x" * ((1 << 20) + 1), w.now)


# -- goodbye -------------------------------------------------------------------------


def test_close_says_bye_and_the_peer_closes_gracefully():
    w = World()
    w.connect()
    w.a.send_message("last words", w.now)
    w._collect()
    w.run(w.now + 0.1)
    w.a.close(w.now)
    w._collect()
    assert len(w.packets(w.a, PacketType.BYE)) == 3
    w.run(w.now + 0.1)
    assert w.of(w.b, Closed) == [Closed(True, "the peer closed the connection", by_peer=True)]
    assert w.of(w.a, Closed) == [Closed(True, "closed", by_peer=False)]
    assert [e.data for e in w.of(w.b, MessageReceived)] == ["last words"]


def test_bye_with_our_messages_undelivered_is_not_graceful():
    w = World()
    w.connect()
    w.drop = lambda s, data, to: s is w.b and kind(data) is PacketType.MSG
    w.b.send_message("you will not hear this", w.now)
    w._collect()
    w.a.close(w.now)
    w._collect()
    w.run(w.now + 0.1)
    (closed,) = w.of(w.b, Closed)
    assert not closed.graceful and "undelivered" in closed.reason


# -- garbage ---------------------------------------------------------------------------


def garbage(w: World) -> list[tuple[bytes, str]]:
    key = session_key(w.a.offer.key, w.b.offer.key)
    good = Packet(PacketType.PROBE, w.a.offer.token, 7).serialize(key)
    bad_stun = bytearray(bytes(codec.Message(codec.Method.BINDING, codec.Class.RESPONSE)))
    # A PRIORITY attribute of the wrong length: aioice 0.13's stun.parse_message raises
    # struct.error on it, not ValueError.
    attr = b"\x00\x24\x00\x02\x00\x01\x00\x00"
    bad_stun[2:4] = len(attr).to_bytes(2, "big")
    bad_stun += attr
    flipped = bytearray(good)
    flipped[-1] ^= 1
    wrong_type = bytearray(good[:-16])
    wrong_type[5] = 99
    return [
        (b"", "foreign"),
        (b"hello", "foreign"),
        (b"\x16\xfe\xfd" + b"\x00" * 40, "foreign"),  # a DTLS record
        (b"IPUN", "malformed"),
        (good[:20], "malformed"),
        (bytes(flipped), "integrity"),
        (Packet(PacketType.REPLY, w.a.offer.token, 1, observed=("1.2.3.4", 5)).serialize(key)[:-17]
         + b"\x00" * 17, "integrity"),
        (bytes(wrong_type) + __import__("hmac").new(key, bytes(wrong_type), "sha256").digest()[:16],
         "malformed"),
        (bytes(bad_stun), "malformed"),
        (bytes(codec.Message(codec.Method.BINDING, codec.Class.RESPONSE)), "stun"),
        (bytes(range(256)) * 8, "foreign"),
    ]


@pytest.mark.parametrize("connected", [False, True])
def test_malformed_and_foreign_packets_are_counted_never_fatal(connected):
    w = World()
    if connected:
        w.connect()
    else:
        w.exchange()
    state = w.a.state
    stranger = ("203.0.113.99", 9999)
    cases = garbage(w)
    for data, _ in cases:
        w.inject(w.a, data, stranger)
    expected: dict[str, int] = {}
    for _, why in cases:
        expected[why] = expected.get(why, 0) + 1
    report = w.a.report()
    assert report.ignored == expected
    assert report.packets_ignored == len(cases)
    assert w.a.state is state
    assert not any(to == stranger for _, _, to in w.sent[w.a])
    w.run(w.now + 0.5)
    assert w.a.connected and w.a.remote_address == B_HOST


def test_after_close_everything_is_ignored():
    w = World()
    w.connect()
    w.a.close(w.now)
    w._collect()
    w.inject(w.a, b"anything", B_HOST)
    assert w.a.report().ignored == {"closed": 1}
