"""After the connection: messages and datagrams on the locked path, and noticing a dead peer.

Acknowledged messages are fragmented, numbered and retransmitted until the
peer acknowledges them (:mod:`.reliable`, RTO as in RFC 6298); datagrams are
sent once. A PROBE goes out whenever nothing else was sent for ``keepalive``
seconds, to keep the NAT mappings open (RFC 8445 section 11, RFC 4787
REQ-5), and its REPLY measures the RTT. The peer is dead after
``dead_timeout`` seconds without an authenticated packet from it (as ICE's
consent freshness, RFC 7675, does with its checks). When signaling says the
peer left, the path is probed at once and again halfway through
``peer_left_grace``: only a REPLY to a probe sent after the notice keeps the
connection.
"""

from __future__ import annotations

import logging
from collections import Counter

from ..errors import MessageTooLarge
from .config import PunchConfig
from .events import Closed, DatagramReceived, Event, MessageReceived
from .outbox import Outbox, Prober
from .reliable import ReliableReceiver, ReliableSender, RttEstimator
from .wire import Flags, Packet, PacketType

__all__ = ["ConnectedPath"]

logger = logging.getLogger(__name__)

Address = tuple[str, int]


def _encode(data: str | bytes, limit: int, what: str) -> tuple[bytes, bool]:
    payload, text = (data.encode("utf-8"), True) if isinstance(data, str) else (bytes(data), False)
    if len(payload) > limit:
        raise MessageTooLarge(f"{what} of {len(payload)} bytes, at most {limit}")
    return payload, text


def _decode(payload: bytes, flags: Flags) -> str | bytes:
    return payload.decode("utf-8", "replace") if flags & Flags.TEXT else payload


class ConnectedPath:
    """The CONNECTED state's traffic and timers; everything goes to the locked address."""

    def __init__(self, config: PunchConfig, rtt: RttEstimator, outbox: Outbox, prober: Prober,
                 stats: Counter[str], now: float) -> None:
        self._config = config
        self._outbox = outbox
        self._prober = prober
        self._stats = stats
        self._sender = ReliableSender(rtt, fragment_size=config.fragment_size,
                                      window=config.window)
        self._receiver = ReliableReceiver(max_message=config.max_message_size)
        #: When the last authenticated packet came from the peer.
        self.last_received = now
        self._peer_left_at: float | None = None
        self._peer_left_probe: float | None = None
        self._peer_left_first_id: int | None = None

    @property
    def all_delivered(self) -> bool:
        return self._sender.all_delivered

    @property
    def outstanding(self) -> int:
        return self._sender.outstanding

    @property
    def can_send(self) -> bool:
        return self._sender.outstanding < 2 * self._config.window

    @property
    def retransmissions(self) -> int:
        return self._sender.retransmissions

    @property
    def duplicates(self) -> int:
        return self._receiver.duplicates

    def message_payload(self, data: str | bytes) -> tuple[bytes, bool]:
        """The bytes of a message and whether it is text; raises :class:`MessageTooLarge`."""
        return _encode(data, self._config.max_message_size, "message")

    def datagram_payload(self, data: str | bytes) -> tuple[bytes, bool]:
        """The bytes of a datagram and whether it is text; raises :class:`MessageTooLarge`."""
        return _encode(data, self._config.max_datagram_size, "datagram")

    def queue_message(self, payload: bytes, *, text: bool) -> None:
        """Queue an acknowledged message; its fragments leave on the next :meth:`poll`."""
        self._sender.queue(payload, text=text)
        self._stats["messages_sent"] += 1

    def send_datagram(self, payload: bytes, *, text: bool, to: Address, now: float) -> None:
        self._stats["datagrams_sent"] += 1
        self._outbox.packet(PacketType.DATA, to, now, payload=payload,
                            flags=Flags.TEXT if text else Flags.NONE)

    def received(self, packet: Packet, to: Address, now: float) -> list[Event]:
        """A DATA, MSG or ACK packet from the peer; each MSG is acknowledged to ``to``."""
        events: list[Event] = []
        kind = packet.type
        if kind is PacketType.DATA:
            self._stats["datagrams_received"] += 1
            events.append(DatagramReceived(_decode(packet.payload, packet.flags)))
        elif kind is PacketType.MSG:
            for data, text in self._receiver.receive(packet.number, packet.payload, packet.flags):
                self._stats["messages_received"] += 1
                events.append(MessageReceived(data.decode("utf-8", "replace") if text else data))
            self._outbox.packet(PacketType.ACK, to, now, number=self._receiver.next_expected)
        elif kind is PacketType.ACK:
            self._sender.ack(packet.number, now)
        return events

    def replied(self, number: int) -> None:
        """A REPLY to probe ``number`` arrived."""
        first = self._peer_left_first_id
        if first is not None and number >= first:
            # Only an answer to a probe sent after the notice proves the peer is alive.
            logger.info("the peer left signaling but still answers on the path")
            self._peer_left_at = self._peer_left_probe = self._peer_left_first_id = None

    def bye(self, number: int, now: float) -> Closed:
        """The peer's goodbye, acknowledging our fragments before ``number``: how it ends."""
        self._sender.ack(number, now)
        left = self._sender.outstanding
        if left:
            return Closed(False, f"the peer closed with {left} of our message fragments "
                          "undelivered", by_peer=True)
        return Closed(True, "the peer closed the connection", by_peer=True)

    def goodbye(self, to: Address, now: float) -> None:
        """Our BYE (three copies against loss), acknowledging what we received."""
        for _ in range(3):
            self._outbox.packet(PacketType.BYE, to, now, number=self._receiver.next_expected)

    def peer_left(self, now: float) -> bool:
        """Signaling says the peer left: start probing; False if it already said so."""
        if self._peer_left_at is not None:
            return False
        self._peer_left_at = now
        self._peer_left_probe = now
        return True

    def next_deadline(self) -> float:
        cfg = self._config
        due = [self._outbox.last_sent + cfg.keepalive]
        if cfg.dead_timeout is not None:
            due.append(self.last_received + cfg.dead_timeout)
        if (t := self._sender.next_deadline()) is not None:
            due.append(t)
        if self._peer_left_at is not None:
            due.append(self._peer_left_at + cfg.peer_left_grace)
            if self._peer_left_probe is not None:
                due.append(self._peer_left_probe)
        return min(due)

    def poll(self, now: float, to: Address) -> Closed | None:
        """Send what is due at ``now``; how the connection ends, if the peer is gone."""
        cfg = self._config
        for frag in self._sender.poll(now):
            self._outbox.packet(PacketType.MSG, to, now, number=frag.seq, payload=frag.payload,
                                flags=frag.flags)
        if cfg.dead_timeout is not None and now >= self.last_received + cfg.dead_timeout:
            return Closed(False, f"no packet from the peer for {cfg.dead_timeout:g} s",
                          by_peer=False)
        if self._peer_left_at is not None:
            if now >= self._peer_left_at + cfg.peer_left_grace:
                return Closed(False, "the peer left the room and no longer answers", by_peer=True)
            if self._peer_left_probe is not None and now >= self._peer_left_probe:
                self._prober.probe([to], now)
                if self._peer_left_first_id is None:
                    self._peer_left_first_id = self._prober.last_id
                half = self._peer_left_at + cfg.peer_left_grace / 2
                self._peer_left_probe = half if now < half else None
        if now >= self._outbox.last_sent + cfg.keepalive:
            # RFC 8445 section 11: keep the NAT mapping alive; the REPLY measures RTT.
            self._prober.probe([to], now)
        return None
