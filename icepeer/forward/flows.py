"""The UDP flow table, without I/O: who a datagram belongs to, and when a flow expires.

UDP has no connections, so forwarding keeps one *flow* per client, as a NAT
does (RFC 4787 section 4.3): the listening side keys flows by the client's
address and gives each a fresh 32-bit id that travels with every datagram;
the connecting side keys them by that id and gives each its own socket to the
service, so that replies find their way back to the right client. A flow
that carries nothing in either direction for ``idle_timeout`` seconds
expires (RFC 4787 REQ-5 asks NATs for at least 2 minutes; the default here
is 60 s, and any datagram refreshes it). When the table is full, the flow
idle the longest makes room.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Iterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from .framing import MAX_FLOW_ID

__all__ = ["DEFAULT_IDLE_TIMEOUT", "DEFAULT_MAX_FLOWS", "Flow", "FlowTable"]

DEFAULT_IDLE_TIMEOUT = 60.0
DEFAULT_MAX_FLOWS = 1024

K = TypeVar("K", bound=Hashable)


@dataclass
class Flow(Generic[K]):
    id: int
    key: K
    opened: float
    last_seen: float
    datagrams_out: int = 0  # from the local application towards the peer
    datagrams_in: int = 0  # from the peer towards the local application
    bytes_out: int = 0
    bytes_in: int = 0
    extra: object = field(default=None, repr=False)  # the glue's socket, say


class FlowTable(Generic[K]):
    """Flows by key and by id, least recently used first."""

    def __init__(self, *, idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
                 max_flows: int = DEFAULT_MAX_FLOWS) -> None:
        if idle_timeout <= 0 or max_flows < 1:
            raise ValueError("idle_timeout and max_flows must be positive")
        self.idle_timeout = idle_timeout
        self.max_flows = max_flows
        self._by_key: OrderedDict[K, Flow[K]] = OrderedDict()
        self._by_id: dict[int, Flow[K]] = {}
        self._next_id = 1

    def __len__(self) -> int:
        return len(self._by_key)

    def __iter__(self) -> Iterator[Flow[K]]:
        return iter(list(self._by_key.values()))

    def by_key(self, key: K) -> Flow[K] | None:
        return self._by_key.get(key)

    def by_id(self, flow_id: int) -> Flow[K] | None:
        return self._by_id.get(flow_id)

    def open(self, key: K, now: float, *, flow_id: int | None = None) -> tuple[Flow[K], Flow[K] | None]:
        """A new flow for ``key`` (a fresh id unless given); and the flow evicted for it, if any."""
        if key in self._by_key:
            raise KeyError(f"flow for {key!r} already open")
        evicted = None
        if len(self._by_key) >= self.max_flows:
            _, evicted = self._by_key.popitem(last=False)
            del self._by_id[evicted.id]
        if flow_id is None:
            flow_id = self._fresh_id()
        flow = Flow(flow_id, key, now, now)
        self._by_key[key] = flow
        self._by_id[flow_id] = flow
        return flow, evicted

    def touch(self, flow: Flow[K], now: float) -> None:
        """Traffic on ``flow``: it is the most recently used now."""
        flow.last_seen = now
        self._by_key.move_to_end(flow.key)

    def remove(self, flow: Flow[K]) -> None:
        if self._by_key.get(flow.key) is flow:
            del self._by_key[flow.key]
            del self._by_id[flow.id]

    def expire(self, now: float) -> list[Flow[K]]:
        """Remove and return the flows idle for ``idle_timeout`` or longer."""
        gone = []
        for flow in list(self._by_key.values()):  # least recently used first
            if now - flow.last_seen < self.idle_timeout:
                break
            gone.append(flow)
            self.remove(flow)
        return gone

    def next_expiry(self) -> float | None:
        """When the oldest flow expires if nothing refreshes it."""
        for flow in self._by_key.values():
            return flow.last_seen + self.idle_timeout
        return None

    def _fresh_id(self) -> int:
        # Ids are not reused while the table lives (a late datagram of an expired
        # flow must not reach a new client); 2**32 flows wrap around.
        while True:
            flow_id, self._next_id = self._next_id, self._next_id % MAX_FLOW_ID + 1
            if flow_id not in self._by_id:
                return flow_id
