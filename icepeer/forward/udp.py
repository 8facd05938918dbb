"""UDP forwarding: asyncio glue around :class:`.flows.FlowTable` and the datagram format.

The listening side owns one socket that clients send to; the connecting side
opens one connected socket per flow towards the service. Between them, one
unordered channel without retransmissions (``ordered=False,
max_retransmits=0``): a lost datagram stays lost, as UDP would have it.

Nothing here waits on a slow path: datagrams for the peer wait in a bounded
queue (and are dropped when it is full), datagrams for the local side are
dropped when the socket's send buffer is full. Drops are counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from ..channel import Channel
from ..errors import ChannelClosed
from .errors import ProtocolViolation
from .flows import Flow, FlowTable
from .framing import FLOW_HEADER, decode_datagram, encode_datagram

__all__ = ["QUEUE_DATAGRAMS", "UdpConnector", "UdpListener", "UdpStats"]

logger = logging.getLogger(__name__)

#: Datagrams waiting for the channel before new ones are dropped.
QUEUE_DATAGRAMS = 512
#: Bytes a local socket may hold unsent before datagrams for it are dropped.
LOCAL_BUFFER = 1024 * 1024

Emit = Callable[..., None]
Address = tuple[str, int]


@dataclass
class UdpStats:
    datagrams_out: int = 0  # from local applications to the peer
    datagrams_in: int = 0  # from the peer to local applications
    dropped: int = 0  # queue full, too large, unknown flow, socket full
    flows_opened: int = 0
    flows_expired: int = 0


def _backlog(transport: asyncio.BaseTransport) -> int:
    """Bytes a datagram transport holds unsent (its stub lacks get_write_buffer_size)."""
    return int(getattr(transport, "get_write_buffer_size", lambda: 0)())


def _address(addr: Any) -> str:
    host, port = addr[0], addr[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class _Side:
    """What both sides share: the queue towards the peer, the flow table, expiry."""

    def __init__(self, table: FlowTable[Any], emit: Emit) -> None:
        self.table = table
        self.stats = UdpStats()
        self._emit = emit
        self._queue: asyncio.Queue[bytes] = asyncio.Queue(QUEUE_DATAGRAMS)
        self._max_payload = 65535

    def _to_peer(self, flow: Flow[Any], data: bytes) -> None:
        if len(data) > self._max_payload:
            self.stats.dropped += 1
            return
        try:
            self._queue.put_nowait(encode_datagram(flow.id, data))
        except asyncio.QueueFull:
            self.stats.dropped += 1
            return
        flow.datagrams_out += 1
        flow.bytes_out += len(data)
        self.stats.datagrams_out += 1
        self.table.touch(flow, time.monotonic())

    async def run(self, channel: Channel) -> None:
        """Pump datagrams both ways and expire idle flows until the channel closes."""
        self._max_payload = channel.max_message_size - FLOW_HEADER
        tasks = [asyncio.create_task(coro) for coro in
                 (self._send_loop(channel), self._receive_loop(channel), self._expire_loop())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for flow in self.table:
                self._closed(flow)
                self.table.remove(flow)

    async def _send_loop(self, channel: Channel) -> None:
        with contextlib.suppress(ChannelClosed):
            while True:
                await channel.send(await self._queue.get())

    async def _receive_loop(self, channel: Channel) -> None:
        with contextlib.suppress(ChannelClosed):
            while True:
                message = await channel.recv()
                try:
                    flow_id, payload = decode_datagram(message)
                except ProtocolViolation as exc:
                    logger.warning("udp: %s", exc)
                    self.stats.dropped += 1
                    continue
                await self._from_peer(flow_id, payload)

    async def _from_peer(self, flow_id: int, payload: bytes) -> None:
        raise NotImplementedError

    def _delivered(self, flow: Flow[Any], payload: bytes) -> None:
        flow.datagrams_in += 1
        flow.bytes_in += len(payload)
        self.stats.datagrams_in += 1
        self.table.touch(flow, time.monotonic())

    async def _expire_loop(self) -> None:
        while True:
            deadline = self.table.next_expiry()
            now = time.monotonic()
            wait = self.table.idle_timeout if deadline is None else max(0.0, deadline - now)
            await asyncio.sleep(min(wait, 1.0) + 0.01)
            for flow in self.table.expire(time.monotonic()):
                self.stats.flows_expired += 1
                self._closed(flow)
                self._emit("flow_expired", id=flow.id, **self._describe(flow),
                           datagrams_sent=flow.datagrams_out, datagrams_received=flow.datagrams_in)

    def _opened(self, flow: Flow[Any], evicted: Flow[Any] | None) -> None:
        self.stats.flows_opened += 1
        if evicted is not None:
            self._closed(evicted)
            self._emit("flow_expired", id=evicted.id, **self._describe(evicted), reason="table full",
                       datagrams_sent=evicted.datagrams_out, datagrams_received=evicted.datagrams_in)
        self._emit("flow_open", id=flow.id, **self._describe(flow))

    def _closed(self, flow: Flow[Any]) -> None:
        pass

    def _describe(self, flow: Flow[Any]) -> dict[str, Any]:
        return {}


class UdpListener(_Side, asyncio.DatagramProtocol):
    """The side applications send to: flows keyed by client address."""

    def __init__(self, table: FlowTable[Address], emit: Emit) -> None:
        super().__init__(table, emit)
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # asyncio's selector datagram transport does not subclass DatagramTransport (3.11).
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        key = (addr[0], addr[1])
        flow = self.table.by_key(key)
        if flow is None:
            flow, evicted = self.table.open(key, time.monotonic())
            self._opened(flow, evicted)
        self._to_peer(flow, data)

    def error_received(self, exc: Exception) -> None:
        logger.debug("udp listener: %s", exc)

    async def _from_peer(self, flow_id: int, payload: bytes) -> None:
        flow = self.table.by_id(flow_id)
        transport = self.transport
        if flow is None or transport is None or _backlog(transport) > LOCAL_BUFFER:
            self.stats.dropped += 1  # the flow expired meanwhile: its client is gone
            return
        transport.sendto(payload, flow.key)
        self._delivered(flow, payload)

    def _describe(self, flow: Flow[Any]) -> dict[str, Any]:
        return {"client": _address(flow.key)}


class _FlowSocket(asyncio.DatagramProtocol):
    def __init__(self, owner: UdpConnector, flow: Flow[int]) -> None:
        self.owner = owner
        self.flow = flow

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if self.owner.table.by_id(self.flow.id) is self.flow:
            self.owner._to_peer(self.flow, data)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable from the service: UDP would lose the datagram too.
        logger.debug("udp flow %d: %s", self.flow.id, exc)


class UdpConnector(_Side):
    """The side next to the service: one connected socket per flow."""

    def __init__(self, table: FlowTable[int], emit: Emit, target: Address) -> None:
        super().__init__(table, emit)
        self.target = target

    async def _from_peer(self, flow_id: int, payload: bytes) -> None:
        flow = self.table.by_key(flow_id)
        if flow is None:
            flow, evicted = self.table.open(flow_id, time.monotonic(), flow_id=flow_id)
            try:
                transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
                    lambda: _FlowSocket(self, flow), remote_addr=self.target)
            except OSError as exc:
                self.table.remove(flow)
                self.stats.dropped += 1
                logger.warning("udp: cannot reach %s: %s", _address(self.target), exc)
                return
            flow.extra = transport
            self._opened(flow, evicted)
        transport = cast(asyncio.DatagramTransport, flow.extra)
        if _backlog(transport) > LOCAL_BUFFER:
            self.stats.dropped += 1
            return
        transport.sendto(payload)
        self._delivered(flow, payload)

    def _closed(self, flow: Flow[Any]) -> None:
        if flow.extra is not None:
            cast(asyncio.DatagramTransport, flow.extra).close()

    def _describe(self, flow: Flow[Any]) -> dict[str, Any]:
        transport = cast(asyncio.DatagramTransport | None, flow.extra)
        local = transport.get_extra_info("sockname") if transport is not None else None
        return {"source": _address(local)} if local else {}
