"""A forward between two peers: the handshake, then TCP streams or UDP flows.

::

    async with icepeer.connect(url, room) as peer:
        forwarder = Forwarder(ForwardConfig(Mode.LISTEN, Transport.TCP, Endpoint("127.0.0.1", 8080)))
        await forwarder.bind()            # the socket exists before the peer does
        closed = await forwarder.run(peer)  # until the peer goes

The listening side accepts local connections (or datagrams) and opens the
channels; the connecting side only ever connects to its own configured
address: the peer cannot make it reach anything else.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Self

from ..channel import Channel
from ..errors import ChannelClosed, IcepeerError, PeerLost
from ..peer import Closed, Peer
from .address import Endpoint
from .errors import ForwardError, HandshakeFailed
from .flows import DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_FLOWS, FlowTable
from .framing import (
    CONTROL_LABEL,
    UDP_LABEL,
    Hello,
    Mode,
    Reset,
    Transport,
    serialize,
    stream_id,
    stream_label,
)
from .tcp import StreamStats, TcpStream
from .udp import UdpConnector, UdpListener
from .window import DEFAULT_WINDOW

__all__ = ["ForwardConfig", "Forwarder"]

logger = logging.getLogger(__name__)

#: Seconds the connecting side tries to reach the service for one stream.
CONNECT_TIMEOUT = 10.0

Emit = Callable[..., None]


@dataclass(frozen=True)
class ForwardConfig:
    mode: Mode
    transport: Transport
    endpoint: Endpoint
    #: Bytes of each TCP stream this side accepts before the peer must wait.
    window: int = DEFAULT_WINDOW
    #: Seconds without a datagram after which a UDP flow expires.
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT
    max_flows: int = DEFAULT_MAX_FLOWS
    handshake_timeout: float = 10.0


def _ignore(name: str, **fields: Any) -> None:
    pass


def _address(addr: Any) -> str:
    if not addr:
        return "?"
    host, port = addr[0], addr[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class Forwarder:
    """One side of a forward. ``on_event(name, **fields)`` hears what happens (for the CLI)."""

    def __init__(self, config: ForwardConfig, *, on_event: Emit | None = None) -> None:
        self.config = config
        self._emit = on_event or _ignore
        self.bound: Endpoint | None = None
        self.finished: list[StreamStats] = []
        self.streams: dict[int, TcpStream] = {}
        self.udp: UdpListener | UdpConnector | None = None
        self._server: asyncio.Server | None = None
        self._udp_transport: asyncio.DatagramTransport | None = None
        self._peer: Peer | None = None
        self._ready: asyncio.Future[Hello] = asyncio.get_running_loop().create_future()
        self._ids = itertools.count(1)
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def hello(self) -> Hello:
        return Hello(self.config.mode, self.config.transport, self.config.window)

    async def bind(self) -> Endpoint:
        """Listening side: open the local socket now; the address it got (port 0 picks one)."""
        config = self.config
        if config.mode is not Mode.LISTEN:
            raise ForwardError("only the listening side binds")
        if self.bound is not None:
            return self.bound
        host, port = config.endpoint.host, config.endpoint.port
        try:
            if config.transport is Transport.TCP:
                self._server = await asyncio.start_server(self._on_client, host, port)
                sockname = self._server.sockets[0].getsockname()
            else:
                table: FlowTable[tuple[str, int]] = FlowTable(
                    idle_timeout=config.idle_timeout, max_flows=config.max_flows)
                listener = UdpListener(table, self._emit)
                transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
                    lambda: listener, local_addr=(host, port))
                self.udp, self._udp_transport = listener, transport
                sockname = transport.get_extra_info("sockname")
        except OSError as exc:
            # asyncio rewords bind errors; the errno says it plainly.
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            raise ForwardError(f"cannot listen on {config.endpoint} ({config.transport.value}): "
                               f"{reason}") from exc
        self.bound = Endpoint(sockname[0], sockname[1])
        self._emit("listening", address=str(self.bound), host=self.bound.host, port=self.bound.port,
                   protocol=config.transport.value)
        return self.bound

    async def run(self, peer: Peer) -> Closed:
        """Handshake with the peer, then forward until the connection ends; how it ended."""
        self._peer = peer
        if self.config.mode is Mode.LISTEN:
            await self.bind()
        theirs = await self._handshake(peer)
        self._ready.set_result(theirs)
        fields: dict[str, Any] = {"mode": self.config.mode.value, "protocol": self.config.transport.value}
        fields["listen" if self.config.mode is Mode.LISTEN else "connect"] = str(
            self.bound or self.config.endpoint)
        self._emit("ready", **fields)
        body = self._spawn(self._body(peer, theirs))
        closed = asyncio.ensure_future(peer.wait_closed())
        try:
            await asyncio.wait({body, closed}, return_when=asyncio.FIRST_COMPLETED)
            if body.done() and not body.cancelled():
                exc = body.exception()
                if exc is not None and not isinstance(exc, PeerLost):
                    raise exc
            return await closed
        finally:
            closed.cancel()
            await self.close()

    async def close(self) -> None:
        """Stop listening, abort every stream, close every flow."""
        if self._server is not None:
            self._server.close()
        if self._udp_transport is not None:
            self._udp_transport.close()
        if not self._ready.done():
            self._ready.cancel()
        tasks = [t for t in self._tasks if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- the handshake ----------------------------------------------------------------

    async def _handshake(self, peer: Peer) -> Hello:
        try:
            async with asyncio.timeout(self.config.handshake_timeout):
                control = await peer.channel(CONTROL_LABEL)
                await control.send(self.hello.to_json())
                message = await control.recv()
        except TimeoutError:
            raise HandshakeFailed("the peer did not start forwarding: is it running icepeer forward?") from None
        except ChannelClosed as exc:
            raise HandshakeFailed("the peer closed the forward control channel") from exc
        theirs = Hello.from_json(message)
        try:
            self.hello.check(theirs)
        except HandshakeFailed:
            # Let our hello reach the peer so that it fails with the same reason.
            await peer.drain(timeout=1.0)
            raise
        return theirs

    # -- after the handshake -------------------------------------------------------------

    async def _body(self, peer: Peer, theirs: Hello) -> None:
        mode, transport = self.config.mode, self.config.transport
        if transport is Transport.TCP and mode is Mode.LISTEN:
            await peer.wait_closed()  # _on_client does the work
        elif transport is Transport.TCP:
            while True:
                channel = await peer.accept_channel()
                sid = stream_id(channel.label)
                if sid is None:
                    logger.warning("ignoring channel %r: not a forwarded stream", channel.label)
                    await channel.close()
                    continue
                self._spawn(self._serve(sid, channel, theirs))
        elif mode is Mode.LISTEN:
            assert isinstance(self.udp, UdpListener)
            channel = await peer.open_channel(UDP_LABEL, ordered=False, max_retransmits=0)
            await self.udp.run(channel)
        else:
            channel = await peer.accept_channel()
            if channel.label != UDP_LABEL or channel.ordered or channel.max_retransmits != 0:
                raise ForwardError(f"the peer opened {channel!r}, not the udp channel")
            table: FlowTable[int] = FlowTable(idle_timeout=self.config.idle_timeout,
                                              max_flows=self.config.max_flows)
            endpoint = self.config.endpoint
            self.udp = UdpConnector(table, self._emit, (endpoint.host, endpoint.port))
            await self.udp.run(channel)

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Listening side: a local application connected."""
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            theirs = await asyncio.shield(self._ready)
            assert self._peer is not None
            sid = next(self._ids)
            channel = await self._peer.open_channel(stream_label(sid))
            self._emit("stream_open", id=sid, client=_address(writer.get_extra_info("peername")))
            await self._forward(sid, channel, reader, writer, theirs)
        except (IcepeerError, asyncio.CancelledError):
            writer.transport.abort()
        finally:
            self._tasks.discard(task)

    async def _serve(self, sid: int, channel: Channel, theirs: Hello) -> None:
        """Connecting side: the peer opened a stream; connect to the service."""
        endpoint = self.config.endpoint
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(endpoint.host, endpoint.port), CONNECT_TIMEOUT)
        except (OSError, TimeoutError) as exc:
            reason = f"cannot connect to {endpoint}: {getattr(exc, 'strerror', None) or 'timed out'}"
            logger.info("stream %d: %s", sid, reason)
            self._emit("stream_closed", id=sid, bytes_sent=0, bytes_received=0, reason=reason, clean=False)
            with contextlib.suppress(IcepeerError):
                await channel.send(serialize(Reset(reason)))
                await channel.close()
            return
        self._emit("stream_open", id=sid, target=str(endpoint),
                   source=_address(writer.get_extra_info("sockname")))
        await self._forward(sid, channel, reader, writer, theirs)

    async def _forward(self, sid: int, channel: Channel, reader: asyncio.StreamReader,
                       writer: asyncio.StreamWriter, theirs: Hello) -> None:
        stream = TcpStream(sid, channel, reader, writer, credit=theirs.window, window=self.config.window)
        self.streams[sid] = stream
        try:
            stats = await stream.run()
        finally:
            del self.streams[sid]
        self.finished.append(stats)
        del self.finished[:-1000]  # recent history only: a forward may run for months
        self._emit("stream_closed", id=sid, bytes_sent=stats.bytes_sent, bytes_received=stats.bytes_received,
                   reason=stats.reason, clean=stats.clean)

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task
