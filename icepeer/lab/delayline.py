"""A delay line for Ethernet frames: when each frame may leave. No I/O.

This kernel has no ``netem`` (``tc qdisc add ... netem``: "Specified qdisc
kind is unknown"), so the lab delays packets in user space: each delayed
uplink is a pair of TAP devices joined by :mod:`icepeer.lab.wire`, which
asks this module when to pass each frame on.

Each direction of a link is a FIFO. A frame that arrives at ``t`` leaves at
``t + delay + u`` with ``u`` uniform in ``[-jitter, +jitter]``, but never
before the frame ahead of it: a path's queue does not reorder, and neither
does this. A queue holds at most :data:`MAX_FRAMES` (a frame beyond that is
dropped, as a full router buffer does).

Link-layer frames pass at once: ARP (not IP at all) and IPv6 neighbour
discovery (ICMPv6 types 133 to 137, RFC 4861 section 4). A real path does
not carry them end to end (a host resolves only its next hop), so delaying
them would add a round trip to the first packet that a real path does not.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["MAX_FRAMES", "Direction", "WireSpec", "delayed"]

ETHERTYPE_IPV4 = b"\x08\x00"
ETHERTYPE_IPV6 = b"\x86\xdd"
ICMPV6 = 58
NEIGHBOUR_DISCOVERY = range(133, 138)  # RS, RA, NS, NA, redirect
MAX_FRAMES = 20_000
#: Frames due within this many seconds are sent now: the wait before them
#: is rounded up to whole milliseconds (epoll), so on average they leave on time.
SLACK = 0.0005


def delayed(frame: bytes) -> bool:
    """Whether ``frame`` (Ethernet, no VLAN tag) is IP traffic to hold, rather than link chatter."""
    kind = frame[12:14]
    if kind == ETHERTYPE_IPV4:
        return True
    if kind == ETHERTYPE_IPV6:
        # Next header at byte 6 of the IPv6 header, the ICMPv6 type right after it (40 bytes).
        return not (len(frame) > 54 and frame[20] == ICMPV6 and frame[54] in NEIGHBOUR_DISCOVERY)
    return False


@dataclass(frozen=True)
class WireSpec:
    """One delayed uplink: TAP device ``a_dev`` in ``a_ns`` joined to ``b_dev`` in ``b_ns``."""

    a_ns: str
    a_dev: str
    b_ns: str
    b_dev: str
    delay_ms: float
    """Added to every IP frame, each direction."""
    jitter_ms: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> WireSpec:
        return cls(**doc)


class Direction:
    """One direction of a link: frames in, each held for its delay, out in order."""

    def __init__(self, delay_ms: float, jitter_ms: float = 0.0, *, rng: random.Random | None = None,
                 limit: int = MAX_FRAMES) -> None:
        self.delay = delay_ms / 1000
        self.jitter = jitter_ms / 1000
        self.limit = limit
        self.dropped = 0
        self._rng = rng or random.Random()
        self._queue: deque[tuple[float, bytes]] = deque()

    def __len__(self) -> int:
        return len(self._queue)

    def push(self, frame: bytes, now: float) -> bool:
        """Queue ``frame`` arrived at ``now``; ``False`` if it is to be sent on at once instead."""
        if not delayed(frame):
            return False
        if len(self._queue) >= self.limit:
            self.dropped += 1
            return True
        due = now + self.delay
        if self.jitter:
            due += self._rng.uniform(-self.jitter, self.jitter)
        if self._queue:
            due = max(due, self._queue[-1][0])  # never overtake the frame ahead
        self._queue.append((due, frame))
        return True

    @property
    def next_due(self) -> float | None:
        return self._queue[0][0] if self._queue else None

    def pop_due(self, now: float) -> Iterator[bytes]:
        """The frames whose time has come (within :data:`SLACK`), oldest first."""
        queue = self._queue
        while queue and queue[0][0] <= now + SLACK:
            yield queue.popleft()[1]
