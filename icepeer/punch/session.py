"""The puncher's state machine, without I/O.

Datagrams and signaling offers go in, datagrams to send and events come out;
time is always an argument (``now``, seconds on any monotonic clock), and
:meth:`PunchSession.next_deadline` says when to call
:meth:`PunchSession.handle_timer` next. The asyncio glue in :mod:`.link`
only moves bytes; tests drive two sessions with plain function calls.

::

    GATHERING --STUN done--> READY --peer's offer--> PUNCHING --REPLY--> CONNECTED
        |                      |                        |                   |
        +----------------------+---- deadline ----------+--> FAILED         +--> CLOSED

The punching follows the classic recipe (Ford, Srisuresh, Kegel, "Peer-to-Peer
Communication Across Network Address Translators", 2005; RFC 5128 section
3.3): both peers send a PROBE every 100 ms (30 tries, as in seed 002) to every
address the other offered. The first authenticated packet from the peer
*locks* the path to its source address, even one the peer never offered (a
port its NAT rewrote: peer-reflexive, RFC 8445 section 7.2.5.3.1); from then
on everything goes to that address only. Each PROBE is answered with a REPLY
carrying the address it came from (as a STUN Binding response's
XOR-MAPPED-ADDRESS, RFC 8489 section 14.2); a REPLY from the locked address
proves the path works both ways: connected.

This module keeps the state and makes the transitions; the parts it owns do
the work: :mod:`.demux` sorts what arrives, :mod:`.punching` gathers and
punches, :mod:`.connected` carries messages and watches the peer once
connected, :mod:`.outbox` queues what leaves, and :class:`~.report.Tally` counts.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from ..errors import ChannelClosed
from .candidates import Candidate, CandidateType, Offer, candidate_at, dedupe, ip_version
from .config import MAX_KEEPALIVE_INTERVAL, PRE_CONNECT, Ignored, PunchConfig, State
from .connected import ConnectedPath
from .demux import classify
from .events import Closed, Connected, Event, Failed, Gathered
from .outbox import Outbox, Prober
from .punching import Gathering, Puncher
from .reliable import RttEstimator
from .report import PunchReport, Tally
from .wire import Packet, PacketType, session_key

__all__ = ["MAX_KEEPALIVE_INTERVAL", "Ignored", "PunchConfig", "PunchSession", "State"]

logger = logging.getLogger(__name__)

Address = tuple[str, int]


class PunchSession:
    """One side of one punched connection.

    ``host_candidates``: the addresses of the local socket (for a socket bound
    to a wildcard, one per interface). ``stun_servers``: resolved addresses to
    ask for our public mapping from the same socket. ``connect_deadline``:
    absolute time by which we must be connected, or fail.
    """

    def __init__(
        self,
        *,
        host_candidates: Sequence[Address],
        stun_servers: Sequence[Address] = (),
        now: float,
        config: PunchConfig | None = None,
        connect_deadline: float | None = None,
        offer: Offer | None = None,
        started: float | None = None,
    ) -> None:
        self.config = cfg = config or PunchConfig()
        self.state = State.GATHERING
        self._tally = Tally(now if started is None else started)
        self._deadline = connect_deadline
        hosts = [Candidate(CandidateType.HOST, a, p) for a, p in host_candidates]
        versions = {ip_version(c.address) for c in hosts}
        self._ip_version = versions.pop() if len(versions) == 1 else 4
        self._offer = (offer or Offer.fresh()).with_candidates(dedupe(hosts))
        servers = [s for s in stun_servers if ip_version(s[0]) == self._ip_version]
        self._gathering = Gathering(servers, now, rto=cfg.stun_rto, timeout=cfg.stun_timeout)
        self._remote: Offer | None = None
        self._key: bytes | None = None
        self._locked: Address | None = None
        self._remote_cand: Candidate | None = None
        self._local_cand: Candidate | None = None
        self._observed: Address | None = None
        self._events: list[Event] = []
        self._rtt = RttEstimator(min_rto=cfg.min_rto, max_rto=cfg.max_rto)
        self._out = Outbox(self._tally.counts, now)
        self._prober = Prober(self._out, self._rtt)
        self._puncher = Puncher(cfg, self._prober, now)
        self._path = ConnectedPath(cfg, self._rtt, self._out, self._prober, self._tally.counts, now)
        self.close_reason: str | None = None
        self._advance(now)

    # -- outputs ------------------------------------------------------------

    def datagrams_to_send(self) -> list[tuple[bytes, Address]]:
        """Datagrams to send now, each with its destination; the list is handed over."""
        return self._out.take()

    def events_received(self) -> list[Event]:
        """Events since the last call, in order; the list is handed over."""
        events, self._events = self._events, []
        return events

    def next_deadline(self) -> float | None:
        """When :meth:`handle_timer` must be called next (None: only on input)."""
        before = [self._deadline] if self._deadline is not None else []
        if self.state is State.GATHERING:
            return min(self._gathering.next_deadlines() + before)
        if self.state is State.READY:
            return min(before, default=None)
        if self.state is State.PUNCHING:
            return min([*before, self._puncher.next_deadline()])
        if self.state is State.CONNECTED:
            return self._path.next_deadline()
        return None

    @property
    def offer(self) -> Offer:
        """Our offer for the peer: token, key and candidates (complete once gathered)."""
        return self._offer

    @property
    def gathered(self) -> bool:
        return self.state is not State.GATHERING

    @property
    def connected(self) -> bool:
        return self.state is State.CONNECTED

    @property
    def local(self) -> Candidate | None:
        return self._local_cand

    @property
    def remote(self) -> Candidate | None:
        return self._remote_cand

    @property
    def remote_address(self) -> Address | None:
        """The locked path: where everything goes."""
        return self._locked

    @property
    def all_delivered(self) -> bool:
        """Every acknowledged-mode message we sent was acknowledged."""
        return self._path.all_delivered

    @property
    def outstanding(self) -> int:
        """Fragments queued or in flight, not yet acknowledged."""
        return self._path.outstanding

    @property
    def can_send(self) -> bool:
        """False while a window's worth of fragments waits for acknowledgement."""
        return self._path.can_send

    @property
    def rtt(self) -> float | None:
        return self._rtt.srtt

    # -- inputs -------------------------------------------------------------

    def set_remote_offer(self, offer: Offer, now: float) -> None:
        """The peer's offer arrived over signaling; punching starts once we are gathered."""
        if self._remote is not None:
            if offer != self._remote:
                logger.warning("ignoring a second, different offer from the peer")
            return
        if offer.token == self._offer.token:
            logger.warning("the peer's offer carries our own token: ignored")
            return
        self._remote = offer
        self._key = session_key(self._offer.key, offer.key)
        self._out.set_peer(offer.token, self._key)
        self._puncher.targets = [c.addr for c in offer.candidates
                                 if ip_version(c.address) == self._ip_version]
        self._tally.mark("offer_received", now)
        if self.state is State.READY:
            self._start_punching(now)
        self._advance(now)

    def datagram_received(self, data: bytes, addr: Address, now: float) -> None:
        """Any datagram that reached the socket, from anyone; never raises on bad input."""
        self._tally.counts["packets_received"] += 1
        self._tally.counts["bytes_received"] += len(data)
        checking = self.state in (State.PUNCHING, State.CONNECTED)
        what = Ignored.CLOSED if self.state in (State.CLOSED, State.FAILED) else \
            classify(data, token=self._offer.token, key=self._key if checking else None)
        if isinstance(what, Ignored):
            self._ignore(what, addr)
        elif isinstance(what, Packet):
            self._tally.counts["packets_accepted"] += 1
            self._path.last_received = now
            if self._locked is None:
                self._lock(addr, now)
            self._handle(what, addr, now)
        elif self._gathering.response_received(what, addr):
            self._tally.counts["packets_accepted"] += 1
        else:
            self._ignore(Ignored.STUN, addr)
        self._advance(now)

    def handle_timer(self, now: float) -> None:
        """Do whatever is due at ``now`` (safe to call early or often)."""
        self._advance(now)

    def send_message(self, data: str | bytes, now: float) -> None:
        """Queue an acknowledged message (in order, retransmitted until acknowledged)."""
        payload, text = self._path.message_payload(data)
        self._require_connected()
        self._path.queue_message(payload, text=text)
        self._advance(now)

    def send_datagram(self, data: str | bytes, now: float) -> None:
        """Send one unreliable datagram (it may be lost, duplicated or reordered)."""
        payload, text = self._path.datagram_payload(data)
        self._require_connected()
        assert self._locked is not None
        self._path.send_datagram(payload, text=text, to=self._locked, now=now)

    def peer_left(self, now: float) -> None:
        """Signaling says the peer left the room.

        Before the connection that ends the attempt. After it the path may
        outlive signaling, so probe it: a peer that still answers stays.
        """
        if self.state in PRE_CONNECT:
            self._fail("the peer left the room before the connection was made", now)
        elif self.state is State.CONNECTED and self._path.peer_left(now):
            self._advance(now)

    def close(self, now: float, reason: str = "closed") -> None:
        """Say goodbye (BYE, three copies against loss) and stop."""
        if self.state is State.CONNECTED:
            assert self._locked is not None
            self._path.goodbye(self._locked, now)
            self._closed(Closed(True, reason, by_peer=False), now)
        elif self.state not in (State.CLOSED, State.FAILED):
            self.state = State.CLOSED
            self.close_reason = reason
            self._events.append(Closed(True, reason, by_peer=False))

    def mark(self, name: str, now: float) -> None:
        """Record a milestone for the report (the asyncio layer adds signaling ones)."""
        self._tally.mark(name, now)

    def report(self) -> PunchReport:
        return self._tally.fill(PunchReport(
            state=self.state.value,
            local=self._local_cand,
            remote=self._remote_cand,
            local_candidates=list(self._offer.candidates),
            remote_candidates=list(self._remote.candidates) if self._remote else [],
            punch_tries=self._puncher.tries,
            rtt=self._rtt.srtt,
            rtt_latest=self._rtt.latest,
            retransmissions=self._path.retransmissions,
            duplicates=self._path.duplicates,
            stun_errors=list(self._gathering.errors),
            stun_mapped=self._gathering.mapped,
        ))

    # -- internals ----------------------------------------------------------

    def _require_connected(self) -> None:
        if self.state is not State.CONNECTED:
            raise ChannelClosed(f"cannot send: the connection is {self.state.value}"
                                + (f" ({self.close_reason})" if self.close_reason else ""))

    def _ignore(self, why: Ignored, addr: Address) -> None:
        self._tally.ignored[why.value] += 1
        logger.debug("ignored a datagram from %s:%s (%s)", addr[0], addr[1], why.value)

    # -- packets from the peer ----------------------------------------------

    def _handle(self, packet: Packet, addr: Address, now: float) -> None:
        kind = packet.type
        if kind is PacketType.PROBE:
            # Answer to where it came from, as STUN does (RFC 8489 section 6.3.1).
            self._out.packet(PacketType.REPLY, addr, now, number=packet.number, observed=addr)
            if self.state is State.PUNCHING and addr == self._locked:
                # A triggered check (RFC 8445 section 7.3.1.4): our own earlier probes
                # may have arrived before the peer had our offer; do not wait 100 ms.
                self._prober.probe([addr], now)
        elif kind is PacketType.REPLY:
            self._prober.answered(packet.number, now)
            self._path.replied(packet.number)
            self._observed = packet.observed
            if self.state is State.PUNCHING and addr == self._locked:
                self._connect(now)
        elif kind is PacketType.BYE:
            ending = self._path.bye(packet.number, now)
            if self.state is State.CONNECTED:
                self._closed(ending, now)
            else:
                self._fail("the peer closed before the connection was made", now)
        else:
            assert self._locked is not None
            self._events.extend(self._path.received(packet, self._locked, now))

    # -- transitions ----------------------------------------------------------

    def _finish_gathering(self, now: float) -> None:
        srflx = self._gathering.finish()
        # RFC 8445 section 5.1.3: a server-reflexive candidate equal to a host
        # candidate (no NAT in the way) is redundant.
        self._offer = self._offer.with_candidates(dedupe([*self._offer.candidates, *srflx]))
        self.state = State.READY
        self._tally.mark("gathered", now)
        logger.info("local candidates: %s", ", ".join(map(str, self._offer.candidates)))
        self._events.append(Gathered(self._offer.candidates, tuple(self._gathering.errors)))
        if self._remote is not None:
            self._start_punching(now)

    def _start_punching(self, now: float) -> None:
        self.state = State.PUNCHING
        self._puncher.start(now)
        self._tally.mark("punch_started", now)

    def _lock(self, addr: Address, now: float) -> None:
        assert self._remote is not None
        self._locked = addr
        self._remote_cand = candidate_at(addr, self._remote.candidates)
        self._tally.mark("locked", now)
        logger.info("path locked to %s", self._remote_cand)

    def _connect(self, now: float) -> None:
        assert self._remote_cand is not None and self._observed is not None
        self._local_cand = candidate_at(self._observed, self._offer.candidates)
        self.state = State.CONNECTED
        self._puncher.stop()
        self._path.last_received = now
        self._tally.mark("connected", now)
        logger.info("connected: %s -> %s, rtt %s", self._local_cand, self._remote_cand,
                    f"{self._rtt.latest * 1000:.1f} ms" if self._rtt.latest is not None else "?")
        self._events.append(Connected(self._local_cand, self._remote_cand, self._rtt.latest))

    def _fail(self, reason: str, now: float) -> None:
        self.state = State.FAILED
        self.close_reason = reason
        self._tally.mark("failed", now)
        logger.info("failed: %s", reason)
        self._events.append(Failed(reason))

    def _closed(self, event: Closed, now: float) -> None:
        self.state = State.CLOSED
        self.close_reason = event.reason
        self._tally.mark("closed", now)
        logger.info("closed: %s", event.reason)
        self._events.append(event)

    # -- the clock --------------------------------------------------------------

    def _advance(self, now: float) -> None:
        if self.state in PRE_CONNECT and self._deadline is not None and now >= self._deadline:
            self._fail(self._deadline_reason(), now)
            return
        if self.state is State.GATHERING:
            for data, addr in self._gathering.poll(now):
                self._out.raw(data, addr)
            if self._gathering.done:
                self._finish_gathering(now)
        if self.state is State.PUNCHING:
            failure = self._puncher.poll(now, self._locked)
            if failure is not None:
                self._fail(failure, now)
        if self.state is State.CONNECTED:
            assert self._locked is not None
            ending = self._path.poll(now, self._locked)
            if ending is not None:
                self._closed(ending, now)

    def _deadline_reason(self) -> str:
        if self.state is State.GATHERING:
            return "timed out while asking the STUN servers for our address"
        if self._remote is None:
            return "timed out waiting for the peer's candidates"
        return f"timed out punching after {self._puncher.tries} tries"
