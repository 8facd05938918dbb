"""What a session sends: datagrams for the socket, counted, and the probes that measure RTT.

:class:`Outbox` seals punch packets for the peer (its token, the shared key:
see :mod:`.wire`) and remembers when the last one left, which the keepalive
timer needs (RFC 8445 section 11). :class:`Prober` numbers PROBEs and matches
the REPLYs that echo them, feeding the RTT estimator (RFC 6298).
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Sequence

from .reliable import RttEstimator
from .wire import Flags, Packet, PacketType

__all__ = ["Outbox", "Prober"]

Address = tuple[str, int]

#: Send times kept for this many recent probes; a REPLY to an older one measures nothing.
PROBES_REMEMBERED = 64


class Outbox:
    """Datagrams waiting for the socket, with the counters a report shows."""

    def __init__(self, stats: Counter[str], now: float) -> None:
        self._datagrams: list[tuple[bytes, Address]] = []
        self._stats = stats
        self._peer: tuple[bytes, bytes] | None = None
        #: When the last punch packet was queued (STUN requests do not count).
        self.last_sent = now

    def take(self) -> list[tuple[bytes, Address]]:
        """Everything queued so far; the list is handed over."""
        out, self._datagrams = self._datagrams, []
        return out

    def set_peer(self, token: bytes, key: bytes) -> None:
        """Address packets to the peer's ``token`` and tag them with the session ``key``."""
        self._peer = (token, key)

    def raw(self, data: bytes, to: Address) -> None:
        """A datagram that is not a punch packet (a STUN request)."""
        self._datagrams.append((data, to))
        self._stats["packets_sent"] += 1
        self._stats["bytes_sent"] += len(data)

    def packet(self, kind: PacketType, to: Address, now: float, *, number: int = 0,
               payload: bytes = b"", flags: Flags = Flags.NONE,
               observed: Address | None = None) -> None:
        """A punch packet for the peer (only once :meth:`set_peer` was called)."""
        assert self._peer is not None
        token, key = self._peer
        self.raw(Packet(kind, token, number, payload, flags, observed).serialize(key), to)
        self.last_sent = now


class Prober:
    """PROBEs, numbered, and the REPLYs that answer them."""

    def __init__(self, outbox: Outbox, rtt: RttEstimator) -> None:
        self._outbox = outbox
        self._rtt = rtt
        self._sent: OrderedDict[int, float] = OrderedDict()
        #: The number of the latest probe (0: none yet).
        self.last_id = 0

    def probe(self, targets: Sequence[Address], now: float) -> None:
        """One PROBE, with one number, to each of ``targets``."""
        self.last_id += 1
        self._sent[self.last_id] = now
        while len(self._sent) > PROBES_REMEMBERED:
            self._sent.popitem(last=False)
        for addr in targets:
            self._outbox.packet(PacketType.PROBE, addr, now, number=self.last_id)

    def answered(self, number: int, now: float) -> None:
        """A REPLY echoed probe ``number``: an RTT sample if we still know when it left."""
        sent = self._sent.pop(number, None)
        if sent is not None:
            self._rtt.sample(now - sent)
