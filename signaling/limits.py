"""Limits without I/O: a token bucket for frame rates (the clock is injected), and
the connection caps in all and per address."""

from __future__ import annotations

import enum
import ipaddress
import time
from collections.abc import Callable

__all__ = ["TokenBucket", "ConnectionLimiter", "Refusal", "address_key"]


class TokenBucket:
    """Allow ``rate`` events per second on average, bursts up to ``burst``."""

    def __init__(
        self, rate: float, burst: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = burst
        self._stamp = clock()

    def allow(self) -> bool:
        """Take one token if there is one."""
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False


def address_key(host: str) -> str:
    """The unit a per-address cap counts.

    An IPv4 address counts as itself (an IPv4-mapped IPv6 address too). An
    IPv6 address counts as its /64: that is what one subscriber usually gets
    (RFC 6177 section 2), so a single attacker cannot dodge the cap by
    picking new addresses inside it.
    """
    try:
        ip = ipaddress.ip_address(host.partition("%")[0])
    except ValueError:
        return host
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{ip}/64", strict=False))
    return str(ip)


class ConnectionLimiter:
    """Count open connections, in all and per address; refuse those over a cap.

    ``None`` disables a cap. Every admitted connection counts until it is
    released, whether it has joined a room or not.
    """

    def __init__(self, max_total: int | None = None, max_per_address: int | None = None) -> None:
        if (max_total is not None and max_total < 1) or (
            max_per_address is not None and max_per_address < 1
        ):
            raise ValueError("connection caps must be at least 1 (None: no cap)")
        self.max_total = max_total
        self.max_per_address = max_per_address
        self.total = 0
        self._per_address: dict[str, int] = {}

    def admit(self, host: str) -> Refusal | None:
        """Count a new connection from ``host``, or say which cap refuses it."""
        if self.max_total is not None and self.total >= self.max_total:
            return Refusal.MAX_CONNECTIONS
        key = address_key(host)
        count = self._per_address.get(key, 0)
        if self.max_per_address is not None and count >= self.max_per_address:
            return Refusal.MAX_PER_IP
        self._per_address[key] = count + 1
        self.total += 1
        return None

    def release(self, host: str) -> None:
        """A connection that :meth:`admit` counted has closed."""
        key = address_key(host)
        count = self._per_address.get(key, 0)
        if count <= 1:
            self._per_address.pop(key, None)
        else:
            self._per_address[key] = count - 1
        self.total = max(0, self.total - 1)

    def count(self, host: str) -> int:
        return self._per_address.get(address_key(host), 0)


class Refusal(str, enum.Enum):
    """Why :class:`ConnectionLimiter` refused a connection."""

    MAX_CONNECTIONS = "max-connections"
    MAX_PER_IP = "max-per-ip"
