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
"""

from __future__ import annotations

import enum
import ipaddress
import logging
from collections import Counter, OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import ChannelClosed, MessageTooLarge
from .binding import BindingTransaction, looks_like_stun, parse_stun
from .candidates import Candidate, CandidateType, Offer, dedupe
from .events import (
    Closed,
    Connected,
    DatagramReceived,
    Event,
    Failed,
    Gathered,
    MessageReceived,
)
from .reliable import ReliableReceiver, ReliableSender, RttEstimator
from .report import PunchReport
from .wire import (
    OVERHEAD,
    BadTag,
    Flags,
    MalformedPacket,
    Packet,
    PacketType,
    peek_token,
    session_key,
)

__all__ = ["MAX_KEEPALIVE_INTERVAL", "Ignored", "PunchConfig", "PunchSession", "State"]

logger = logging.getLogger(__name__)

Address = tuple[str, int]

#: Keepalives at least this often: NAT UDP mappings may expire after 30 s
#: (RFC 4787 REQ-5 asks for at least 2 minutes, many home routers do less),
#: and RFC 8445 section 11 sends them every 15 s.
MAX_KEEPALIVE_INTERVAL = 15.0


class State(enum.Enum):
    GATHERING = "gathering"
    READY = "ready"
    PUNCHING = "punching"
    CONNECTED = "connected"
    CLOSED = "closed"
    FAILED = "failed"


class Ignored(str, enum.Enum):
    """Why a datagram was dropped (each is counted, none is fatal)."""

    FOREIGN = "foreign"        # neither a punch packet nor STUN
    MALFORMED = "malformed"    # our magic or STUN's, but undecodable
    STUN = "stun"              # a STUN message that answers none of our requests
    TOKEN = "token"            # a punch packet for another session
    INTEGRITY = "integrity"    # right token, wrong tag: forged or corrupted
    EARLY = "early"            # authentic-looking, but we cannot check it yet
    CLOSED = "closed"          # after the session ended


@dataclass(frozen=True)
class PunchConfig:
    """Timers and limits. ``None`` disables a limit."""

    punch_interval: float = 0.1
    max_tries: int | None = 30
    #: After the last try, how long to wait for a late answer before giving up.
    final_wait: float = 0.5
    #: Dead-peer detection: no authenticated packet for this long.
    dead_timeout: float | None = 10.0
    #: None: ``min(15 s, dead_timeout / 3)``, so that two lost keepalives are survivable.
    keepalive_interval: float | None = None
    #: After signaling says the peer left, how long the path may stay silent.
    peer_left_grace: float = 1.5
    stun_rto: float = 0.5
    stun_timeout: float = 3.0
    #: The largest datagram we send; 1200 bytes avoids IP fragmentation on
    #: practically every path (RFC 8085 section 3.2, QUIC's RFC 9000 section 14).
    max_packet_size: int = 1200
    max_message_size: int = 1 << 20
    window: int = 64
    min_rto: float = 0.2
    max_rto: float = 3.0

    @property
    def keepalive(self) -> float:
        if self.keepalive_interval is not None:
            return min(self.keepalive_interval, MAX_KEEPALIVE_INTERVAL)
        if self.dead_timeout is None:
            return MAX_KEEPALIVE_INTERVAL
        return min(MAX_KEEPALIVE_INTERVAL, self.dead_timeout / 3)

    @property
    def max_datagram_size(self) -> int:
        return self.max_packet_size - OVERHEAD

    @property
    def fragment_size(self) -> int:
        return self.max_packet_size - OVERHEAD - 4


def _version(address: str) -> int | None:
    try:
        return ipaddress.ip_address(address).version
    except ValueError:
        return None


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
        self.config = config or PunchConfig()
        self.state = State.GATHERING
        self._origin = now if started is None else started
        self._timings: dict[str, float] = {}
        self._deadline = connect_deadline
        hosts = [Candidate(CandidateType.HOST, a, p) for a, p in host_candidates]
        versions = {_version(c.address) for c in hosts}
        self._ip_version = versions.pop() if len(versions) == 1 else 4
        self._offer = (offer or Offer.fresh()).with_candidates(dedupe(hosts))
        self._stun = [
            BindingTransaction(s, now, rto=self.config.stun_rto, timeout=self.config.stun_timeout)
            for s in stun_servers
            if _version(s[0]) == self._ip_version
        ]
        self._stun_errors: list[str] = []
        self._remote: Offer | None = None
        self._key: bytes | None = None
        self._targets: list[Address] = []
        self._locked: Address | None = None
        self._remote_cand: Candidate | None = None
        self._local_cand: Candidate | None = None
        self._observed: Address | None = None
        self._tries = 0
        self._next_probe: float | None = None
        self._last_probe = now
        self._punch_started = now
        self._probe_id = 0
        self._probes: OrderedDict[int, float] = OrderedDict()
        self._last_sent = now
        self._last_received = now
        self._peer_left_at: float | None = None
        self._peer_left_probe: float | None = None
        self._peer_left_first_id: int | None = None
        self._rtt = RttEstimator(min_rto=self.config.min_rto, max_rto=self.config.max_rto)
        self._sender = ReliableSender(self._rtt, fragment_size=self.config.fragment_size,
                                      window=self.config.window)
        self._receiver = ReliableReceiver(max_message=self.config.max_message_size)
        self._out: list[tuple[bytes, Address]] = []
        self._events: list[Event] = []
        self._ignored: Counter[str] = Counter()
        self._stats: Counter[str] = Counter()
        self.close_reason: str | None = None
        self._advance(now)

    # -- outputs ------------------------------------------------------------

    def datagrams_to_send(self) -> list[tuple[bytes, Address]]:
        """Datagrams to send now, each with its destination; the list is handed over."""
        out, self._out = self._out, []
        return out

    def events_received(self) -> list[Event]:
        """Events since the last call, in order; the list is handed over."""
        events, self._events = self._events, []
        return events

    def next_deadline(self) -> float | None:
        """When :meth:`handle_timer` must be called next (None: only on input)."""
        if self.state is State.GATHERING:
            due = [d for t in self._stun if (d := t.next_deadline()) is not None]
            return min(due + self._pre_connect_deadlines())
        if self.state is State.READY:
            return min(self._pre_connect_deadlines(), default=None)
        if self.state is State.PUNCHING:
            due = self._pre_connect_deadlines()
            if self._next_probe is not None:
                due.append(self._next_probe)
            else:
                due.append(self._last_probe + self.config.final_wait)
            return min(due)
        if self.state is State.CONNECTED:
            due = [self._last_sent + self.config.keepalive]
            if self.config.dead_timeout is not None:
                due.append(self._last_received + self.config.dead_timeout)
            if (t := self._sender.next_deadline()) is not None:
                due.append(t)
            if self._peer_left_at is not None:
                due.append(self._peer_left_at + self.config.peer_left_grace)
                if self._peer_left_probe is not None:
                    due.append(self._peer_left_probe)
            return min(due)
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
        return self._sender.all_delivered

    @property
    def outstanding(self) -> int:
        """Fragments queued or in flight, not yet acknowledged."""
        return self._sender.outstanding

    @property
    def can_send(self) -> bool:
        """False while a window's worth of fragments waits for acknowledgement."""
        return self._sender.outstanding < 2 * self.config.window

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
        self._targets = [c.addr for c in offer.candidates if _version(c.address) == self._ip_version]
        self._mark("offer_received", now)
        if self.state is State.READY:
            self._start_punching(now)
        self._advance(now)

    def datagram_received(self, data: bytes, addr: Address, now: float) -> None:
        """Any datagram that reached the socket, from anyone; never raises on bad input."""
        self._stats["packets_received"] += 1
        self._stats["bytes_received"] += len(data)
        if self.state in (State.CLOSED, State.FAILED):
            self._ignore(Ignored.CLOSED, addr)
        elif data[:4] == b"IPUN":
            self._punch_datagram(data, addr, now)
        elif looks_like_stun(data):
            self._stun_datagram(data, addr, now)
        else:
            self._ignore(Ignored.FOREIGN, addr)
        self._advance(now)

    def handle_timer(self, now: float) -> None:
        """Do whatever is due at ``now`` (safe to call early or often)."""
        self._advance(now)

    def send_message(self, data: str | bytes, now: float) -> None:
        """Queue an acknowledged message (in order, retransmitted until acknowledged)."""
        payload, text = self._payload(data)
        if len(payload) > self.config.max_message_size:
            raise MessageTooLarge(
                f"message of {len(payload)} bytes, at most {self.config.max_message_size}")
        self._require_connected()
        self._sender.queue(payload, text=text)
        self._stats["messages_sent"] += 1
        self._advance(now)

    def send_datagram(self, data: str | bytes, now: float) -> None:
        """Send one unreliable datagram (it may be lost, duplicated or reordered)."""
        payload, text = self._payload(data)
        if len(payload) > self.config.max_datagram_size:
            raise MessageTooLarge(
                f"datagram of {len(payload)} bytes, at most {self.config.max_datagram_size}")
        self._require_connected()
        assert self._locked is not None
        self._stats["datagrams_sent"] += 1
        self._send(PacketType.DATA, self._locked, now, payload=payload,
                   flags=Flags.TEXT if text else Flags.NONE)

    def peer_left(self, now: float) -> None:
        """Signaling says the peer left the room.

        Before the connection that ends the attempt. After it the path may
        outlive signaling, so probe it: a peer that still answers stays.
        """
        if self.state in (State.GATHERING, State.READY, State.PUNCHING):
            self._fail("the peer left the room before the connection was made", now)
        elif self.state is State.CONNECTED and self._peer_left_at is None:
            self._peer_left_at = now
            self._peer_left_probe = now
            self._advance(now)

    def close(self, now: float, reason: str = "closed") -> None:
        """Say goodbye (BYE, three copies against loss) and stop."""
        if self.state is State.CONNECTED:
            assert self._locked is not None
            for _ in range(3):
                self._send(PacketType.BYE, self._locked, now, number=self._receiver.next_expected)
            self._closed(True, reason, by_peer=False, now=now)
        elif self.state not in (State.CLOSED, State.FAILED):
            self.state = State.CLOSED
            self.close_reason = reason
            self._events.append(Closed(True, reason, by_peer=False))

    def mark(self, name: str, now: float) -> None:
        """Record a milestone for the report (the asyncio layer adds signaling ones)."""
        self._mark(name, now)

    def report(self) -> PunchReport:
        s = self._stats
        return PunchReport(
            state=self.state.value,
            local=self._local_cand,
            remote=self._remote_cand,
            local_candidates=list(self._offer.candidates),
            remote_candidates=list(self._remote.candidates) if self._remote else [],
            timings=dict(self._timings),
            punch_tries=self._tries,
            rtt=self._rtt.srtt,
            rtt_latest=self._rtt.latest,
            packets_sent=s["packets_sent"],
            packets_received=s["packets_received"],
            packets_accepted=s["packets_accepted"],
            packets_ignored=sum(self._ignored.values()),
            ignored=dict(self._ignored),
            bytes_sent=s["bytes_sent"],
            bytes_received=s["bytes_received"],
            messages_sent=s["messages_sent"],
            messages_received=s["messages_received"],
            datagrams_sent=s["datagrams_sent"],
            datagrams_received=s["datagrams_received"],
            retransmissions=self._sender.retransmissions,
            duplicates=self._receiver.duplicates,
            stun_errors=list(self._stun_errors),
            stun_mapped=[t.mapped for t in self._stun if t.mapped],
        )

    # -- internals ----------------------------------------------------------

    def _mark(self, name: str, now: float) -> None:
        self._timings.setdefault(name, now - self._origin)

    def _payload(self, data: str | bytes) -> tuple[bytes, bool]:
        if isinstance(data, str):
            return data.encode("utf-8"), True
        return bytes(data), False

    def _require_connected(self) -> None:
        if self.state is not State.CONNECTED:
            raise ChannelClosed(f"cannot send: the connection is {self.state.value}"
                                + (f" ({self.close_reason})" if self.close_reason else ""))

    def _pre_connect_deadlines(self) -> list[float]:
        return [self._deadline] if self._deadline is not None else []

    def _ignore(self, why: Ignored, addr: Address) -> None:
        self._ignored[why.value] += 1
        logger.debug("ignored a datagram from %s:%s (%s)", addr[0], addr[1], why.value)

    def _send(self, kind: PacketType, to: Address, now: float, *, number: int = 0,
              payload: bytes = b"", flags: Flags = Flags.NONE,
              observed: Address | None = None) -> None:
        assert self._remote is not None and self._key is not None
        packet = Packet(kind, self._remote.token, number, payload, flags, observed)
        data = packet.serialize(self._key)
        self._out.append((data, to))
        self._stats["packets_sent"] += 1
        self._stats["bytes_sent"] += len(data)
        self._last_sent = now

    def _probe(self, targets: Sequence[Address], now: float) -> None:
        self._probe_id += 1
        self._probes[self._probe_id] = now
        while len(self._probes) > 64:
            self._probes.popitem(last=False)
        for addr in targets:
            self._send(PacketType.PROBE, addr, now, number=self._probe_id)

    # gathering (RFC 8489 Binding) -------------------------------------------

    def _stun_datagram(self, data: bytes, addr: Address, now: float) -> None:
        message = parse_stun(data)
        if message is None:
            self._ignore(Ignored.MALFORMED, addr)
            return
        for tr in self._stun:
            if tr.response_received(message, addr):
                self._stats["packets_accepted"] += 1
                if tr.error:
                    logger.warning("%s", tr.error)
                return
        self._ignore(Ignored.STUN, addr)

    def _finish_gathering(self, now: float) -> None:
        srflx = [Candidate(CandidateType.SRFLX, *t.mapped) for t in self._stun if t.mapped]
        self._stun_errors = [t.error for t in self._stun if t.error]
        # RFC 8445 section 5.1.3: a server-reflexive candidate equal to a host
        # candidate (no NAT in the way) is redundant.
        self._offer = self._offer.with_candidates(dedupe([*self._offer.candidates, *srflx]))
        self.state = State.READY
        self._mark("gathered", now)
        logger.info("local candidates: %s", ", ".join(map(str, self._offer.candidates)))
        self._events.append(Gathered(self._offer.candidates, tuple(self._stun_errors)))
        if self._remote is not None:
            self._start_punching(now)

    # punching ---------------------------------------------------------------

    def _start_punching(self, now: float) -> None:
        self.state = State.PUNCHING
        self._next_probe = now
        self._punch_started = now
        self._mark("punch_started", now)
        logger.info("punching towards %s", ", ".join(f"{a}:{p}" for a, p in self._targets) or
                    "no address (waiting for the peer's packets)")

    def _punch_datagram(self, data: bytes, addr: Address, now: float) -> None:
        token = peek_token(data)
        if token is None:
            self._ignore(Ignored.MALFORMED, addr)
            return
        if token != self._offer.token:
            self._ignore(Ignored.TOKEN, addr)
            return
        if self._key is None or self.state not in (State.PUNCHING, State.CONNECTED):
            self._ignore(Ignored.EARLY, addr)
            return
        try:
            packet = Packet.parse(data, self._key)
        except BadTag:
            self._ignore(Ignored.INTEGRITY, addr)
            return
        except MalformedPacket:
            self._ignore(Ignored.MALFORMED, addr)
            return
        self._stats["packets_accepted"] += 1
        self._last_received = now
        if self._locked is None:
            self._lock(addr, now)
        self._handle(packet, addr, now)

    def _lock(self, addr: Address, now: float) -> None:
        assert self._remote is not None
        offered = {c.addr: c for c in self._remote.candidates}
        self._locked = addr
        self._remote_cand = offered.get(addr) or Candidate(CandidateType.PRFLX, *addr)
        self._mark("locked", now)
        logger.info("path locked to %s", self._remote_cand)

    def _handle(self, packet: Packet, addr: Address, now: float) -> None:
        kind = packet.type
        if kind is PacketType.PROBE:
            # Answer to where it came from, as STUN does (RFC 8489 section 6.3.1).
            self._send(PacketType.REPLY, addr, now, number=packet.number, observed=addr)
            if self.state is State.PUNCHING and addr == self._locked:
                # A triggered check (RFC 8445 section 7.3.1.4): our own earlier probes
                # may have arrived before the peer had our offer; do not wait 100 ms.
                self._probe([addr], now)
        elif kind is PacketType.REPLY:
            sent = self._probes.pop(packet.number, None)
            if sent is not None:
                self._rtt.sample(now - sent)
            first = self._peer_left_first_id
            if first is not None and packet.number >= first:
                # Only an answer to a probe sent after the notice proves the peer is alive.
                logger.info("the peer left signaling but still answers on the path")
                self._peer_left_at = self._peer_left_probe = self._peer_left_first_id = None
            self._observed = packet.observed
            if self.state is State.PUNCHING and addr == self._locked:
                self._connect(now)
        elif kind is PacketType.DATA:
            self._stats["datagrams_received"] += 1
            self._events.append(DatagramReceived(self._decode(packet.payload, packet.flags)))
        elif kind is PacketType.MSG:
            for data, text in self._receiver.receive(packet.number, packet.payload, packet.flags):
                self._stats["messages_received"] += 1
                self._events.append(MessageReceived(data.decode("utf-8", "replace") if text else data))
            assert self._locked is not None
            self._send(PacketType.ACK, self._locked, now, number=self._receiver.next_expected)
        elif kind is PacketType.ACK:
            self._sender.ack(packet.number, now)
        elif kind is PacketType.BYE:
            self._sender.ack(packet.number, now)
            if self.state is State.CONNECTED:
                left = self._sender.outstanding
                if left:
                    self._closed(False, f"the peer closed with {left} of our message fragments "
                                 "undelivered", by_peer=True, now=now)
                else:
                    self._closed(True, "the peer closed the connection", by_peer=True, now=now)
            else:
                self._fail("the peer closed before the connection was made", now)

    @staticmethod
    def _decode(payload: bytes, flags: Flags) -> str | bytes:
        return payload.decode("utf-8", "replace") if flags & Flags.TEXT else payload

    def _connect(self, now: float) -> None:
        assert self._remote_cand is not None and self._observed is not None
        ours = {c.addr: c for c in self._offer.candidates}
        self._local_cand = ours.get(self._observed) or Candidate(CandidateType.PRFLX, *self._observed)
        self.state = State.CONNECTED
        self._next_probe = None
        self._last_received = now
        self._mark("connected", now)
        logger.info("connected: %s -> %s, rtt %s", self._local_cand, self._remote_cand,
                    f"{self._rtt.latest * 1000:.1f} ms" if self._rtt.latest is not None else "?")
        self._events.append(Connected(self._local_cand, self._remote_cand, self._rtt.latest))

    def _fail(self, reason: str, now: float) -> None:
        self.state = State.FAILED
        self.close_reason = reason
        self._mark("failed", now)
        logger.info("failed: %s", reason)
        self._events.append(Failed(reason))

    def _closed(self, graceful: bool, reason: str, *, by_peer: bool, now: float) -> None:
        self.state = State.CLOSED
        self.close_reason = reason
        self._mark("closed", now)
        logger.info("closed: %s", reason)
        self._events.append(Closed(graceful, reason, by_peer))

    # the clock --------------------------------------------------------------

    def _advance(self, now: float) -> None:
        cfg = self.config
        if self.state in (State.GATHERING, State.READY, State.PUNCHING) and \
                self._deadline is not None and now >= self._deadline:
            self._fail(self._deadline_reason(), now)
            return
        if self.state is State.GATHERING:
            for tr in self._stun:
                for data, addr in tr.poll(now):
                    self._out.append((data, addr))
                    self._stats["packets_sent"] += 1
                    self._stats["bytes_sent"] += len(data)
            if all(tr.done for tr in self._stun):
                self._finish_gathering(now)
        if self.state is State.PUNCHING:
            if self._next_probe is not None and now >= self._next_probe:
                self._probe([self._locked] if self._locked else self._targets, now)
                self._tries += 1
                self._last_probe = now
                if cfg.max_tries is not None and self._tries >= cfg.max_tries:
                    self._next_probe = None
                else:
                    self._next_probe = now + cfg.punch_interval
            elif self._next_probe is None and now >= self._last_probe + cfg.final_wait:
                where = f"{len(self._targets)} address{'es' if len(self._targets) != 1 else ''}"
                self._fail(f"no answer from the peer after {self._tries} punch packets to {where} "
                           f"in {now - self._punch_started:.1f} s: "
                           "a symmetric NAT or a firewall may be in the way", now)
        if self.state is State.CONNECTED:
            self._advance_connected(now)

    def _deadline_reason(self) -> str:
        if self.state is State.GATHERING:
            return "timed out while asking the STUN servers for our address"
        if self._remote is None:
            return "timed out waiting for the peer's candidates"
        return f"timed out punching after {self._tries} tries"

    def _advance_connected(self, now: float) -> None:
        cfg = self.config
        assert self._locked is not None
        for frag in self._sender.poll(now):
            self._send(PacketType.MSG, self._locked, now, number=frag.seq, payload=frag.payload,
                       flags=frag.flags)
        if cfg.dead_timeout is not None and now >= self._last_received + cfg.dead_timeout:
            self._closed(False, f"no packet from the peer for {cfg.dead_timeout:g} s",
                         by_peer=False, now=now)
            return
        if self._peer_left_at is not None:
            if now >= self._peer_left_at + cfg.peer_left_grace:
                self._closed(False, "the peer left the room and no longer answers",
                             by_peer=True, now=now)
                return
            if self._peer_left_probe is not None and now >= self._peer_left_probe:
                self._probe([self._locked], now)
                if self._peer_left_first_id is None:
                    self._peer_left_first_id = self._probe_id
                half = self._peer_left_at + cfg.peer_left_grace / 2
                self._peer_left_probe = half if now < half else None
        if now >= self._last_sent + cfg.keepalive:
            # RFC 8445 section 11: keep the NAT mapping alive; the REPLY measures RTT.
            self._probe([self._locked], now)
