"""Port forwarding between two real peers (real signaling server), with real TCP and UDP servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest

from icepeer.forward import Endpoint, ForwardConfig, Forwarder, HandshakeFailed, Mode, Transport
from icepeer.forward.framing import Data, serialize

from .peers import two_peers

HOST = "127.0.0.1"


# -- local servers -------------------------------------------------------------------


@contextlib.asynccontextmanager
async def tcp_server(handler: Any) -> AsyncIterator[tuple[asyncio.Server, int]]:
    server = await asyncio.start_server(handler, HOST, 0)
    try:
        yield server, server.sockets[0].getsockname()[1]
    finally:
        server.close()


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Echo until EOF, then half-close: what a well-behaved server does."""
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.write_eof()
        await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


class UdpEcho(asyncio.DatagramProtocol):
    """Answers every datagram with ``b"echo:" + datagram``, to its source."""

    def __init__(self) -> None:
        self.sources: list[tuple[str, int]] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.sources.append(addr)
        self.transport.sendto(b"echo:" + data, addr)  # type: ignore[attr-defined]


@contextlib.asynccontextmanager
async def udp_echo() -> AsyncIterator[tuple[UdpEcho, int]]:
    transport, protocol = await asyncio.get_running_loop().create_datagram_endpoint(UdpEcho, local_addr=(HOST, 0))
    try:
        yield protocol, transport.get_extra_info("sockname")[1]
    finally:
        transport.close()


class UdpClient(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.queue.put_nowait(data)


@contextlib.asynccontextmanager
async def udp_client(port: int) -> AsyncIterator[tuple[asyncio.DatagramTransport, UdpClient]]:
    transport, protocol = await asyncio.get_running_loop().create_datagram_endpoint(
        UdpClient, remote_addr=(HOST, port))
    try:
        yield transport, protocol
    finally:
        transport.close()


# -- the forward -----------------------------------------------------------------------


@contextlib.asynccontextmanager
async def forward(url: str, target_port: int, transport: Transport = Transport.TCP,
                  **options: Any) -> AsyncIterator[tuple[Forwarder, Forwarder, int]]:
    """Two peers, a listening forwarder on a free port and a connecting one towards ``target_port``."""
    events: dict[str, list[tuple[str, dict[str, Any]]]] = {"listen": [], "connect": []}
    async with two_peers(url) as (a, b):
        listen = Forwarder(ForwardConfig(Mode.LISTEN, transport, Endpoint(HOST, 0), **options),
                           on_event=lambda name, **f: events["listen"].append((name, f)))
        connect = Forwarder(ForwardConfig(Mode.CONNECT, transport, Endpoint(HOST, target_port), **options),
                            on_event=lambda name, **f: events["connect"].append((name, f)))
        bound = await listen.bind()
        runs = [asyncio.create_task(listen.run(a)), asyncio.create_task(connect.run(b))]
        listen.events, connect.events = events["listen"], events["connect"]  # type: ignore[attr-defined]
        try:
            while not all(any(n == "ready" for n, _ in e) for e in events.values()):
                for run in runs:
                    if run.done():
                        run.result()
                await asyncio.sleep(0.01)
            yield listen, connect, bound.port
        finally:
            await asyncio.gather(listen.close(), connect.close())
            for run in runs:
                run.cancel()
            await asyncio.gather(*runs, return_exceptions=True)


async def roundtrip(port: int, payload: bytes) -> bytes:
    """Send ``payload``, half-close, read the echo until EOF."""
    reader, writer = await asyncio.open_connection(HOST, port)

    async def upload() -> None:
        for i in range(0, len(payload), 65536):
            writer.write(payload[i:i + 65536])
            await writer.drain()
        writer.write_eof()

    up = asyncio.create_task(upload())
    back = await reader.read()
    await up
    writer.close()
    return back


# -- TCP -----------------------------------------------------------------------------


async def test_tcp_echo_roundtrip_and_events(signaling_server):
    async with tcp_server(echo) as (_, port), forward(signaling_server.url, port) as (listen, connect, lport):
        assert await roundtrip(lport, b"hello through the tunnel") == b"hello through the tunnel"
        for _ in range(100):
            if listen.finished and connect.finished:
                break
            await asyncio.sleep(0.02)
        assert listen.finished[0].clean and connect.finished[0].clean
        assert listen.finished[0].bytes_sent == listen.finished[0].bytes_received == 24
        names = [n for n, _ in listen.events]
        assert names[:2] == ["listening", "ready"]
        assert "stream_open" in names and "stream_closed" in names


async def test_many_concurrent_tcp_connections(signaling_server):
    async with tcp_server(echo) as (_, port), forward(signaling_server.url, port) as (_, _c, lport):
        payloads = [os.urandom(1000 + 997 * i) for i in range(40)]
        results = await asyncio.wait_for(asyncio.gather(*(roundtrip(lport, p) for p in payloads)), 30)
        assert results == payloads


async def test_large_transfer_is_intact(signaling_server):
    async with tcp_server(echo) as (_, port), forward(signaling_server.url, port) as (*_, lport):
        payload = os.urandom(4 * 1024 * 1024 + 123)
        back = await asyncio.wait_for(roundtrip(lport, payload), 60)
        assert hashlib.sha256(back).digest() == hashlib.sha256(payload).digest()


async def test_half_close_keeps_the_other_direction_open(signaling_server):
    """The client shuts its side first; the server answers after that EOF, then closes."""
    got_eof = asyncio.Event()

    async def answer_after_eof(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.read()  # until the client's EOF
        got_eof.set()
        await asyncio.sleep(0.2)
        for piece in (b"you said: ", request, b" (after your EOF)"):
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(0.05)
        writer.close()

    async with tcp_server(answer_after_eof) as (_, port), forward(signaling_server.url, port) as (*_, lport):
        reader, writer = await asyncio.open_connection(HOST, lport)
        writer.write(b"question")
        writer.write_eof()
        await asyncio.wait_for(got_eof.wait(), 5)
        assert await asyncio.wait_for(reader.read(), 5) == b"you said: question (after your EOF)"
        writer.close()


async def test_server_half_closes_first_while_the_client_keeps_sending(signaling_server):
    received = bytearray()

    async def greet_then_listen(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"banner")
        writer.write_eof()  # nothing more from the server
        while data := await reader.read(65536):
            received.extend(data)
        writer.close()

    async with tcp_server(greet_then_listen) as (_, port), forward(signaling_server.url, port) as (l, c, lport):
        reader, writer = await asyncio.open_connection(HOST, lport)
        assert await asyncio.wait_for(reader.read(), 5) == b"banner"  # EOF from the server came through
        for i in range(5):  # the client's direction is still open
            writer.write(b"after the banner %d;" % i)
            await writer.drain()
            await asyncio.sleep(0.02)
        writer.write_eof()
        for _ in range(100):
            if l.finished and c.finished:
                break
            await asyncio.sleep(0.02)
        assert bytes(received) == b"".join(b"after the banner %d;" % i for i in range(5))
        assert l.finished[0].clean and c.finished[0].clean
        writer.close()


async def test_slow_reader_bounds_what_the_tunnel_holds(signaling_server):
    """The service stops reading: the tunnel stops reading the client instead of buffering.

    The kernel's socket buffers on loopback take a few MB (autotuned send
    buffers grow to tcp_wmem's maximum); beyond them, the client's writes stall.
    """
    window = 128 * 1024
    resume = asyncio.Event()
    received = hashlib.sha256()
    count = 0

    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal count
        writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024)
        await resume.wait()
        while data := await reader.read(65536):
            received.update(data)
            count += len(data)
        writer.close()

    async with tcp_server(slow) as (_, port), \
            forward(signaling_server.url, port, window=window) as (listen, connect, lport):
        _, writer = await asyncio.open_connection(HOST, lport)
        sent = hashlib.sha256()
        written = 0
        stop = asyncio.Event()

        async def upload() -> None:
            nonlocal written
            while not stop.is_set():
                chunk = os.urandom(16384)
                writer.write(chunk)
                sent.update(chunk)
                written += len(chunk)
                await writer.drain()
            writer.write_eof()

        up = asyncio.create_task(upload())
        last = -1
        while written != last:  # until the tunnel stops taking data
            last = written
            await asyncio.sleep(0.4)
        assert written < 16 * 1024 * 1024  # kernel buffers (~4 MB here) and one window, not everything
        (l_stream,), (c_stream,) = listen.streams.values(), connect.streams.values()
        # Credit: what the listening side sent and the connecting side has not written out <= one window.
        assert 0 < l_stream.stats.bytes_sent - c_stream.stats.bytes_received <= window
        assert c_stream._window.peak <= window
        assert len(c_stream._channel._messages) <= 1  # Channel's own queue is read at once
        assert c_stream._writer.transport.get_write_buffer_size() <= window + 65536
        sent_before = l_stream.stats.bytes_sent
        await asyncio.sleep(0.3)
        assert l_stream.stats.bytes_sent == sent_before  # the client's socket is not read meanwhile

        resume.set()
        stop.set()
        await asyncio.wait_for(up, 30)
        for _ in range(300):
            if count == written:
                break
            await asyncio.sleep(0.05)
        assert count == written and received.digest() == sent.digest()
        writer.close()


async def test_service_refusing_resets_the_client(signaling_server):
    with socket.socket() as unused:  # a port nobody listens on
        unused.bind((HOST, 0))
        port = unused.getsockname()[1]
    async with forward(signaling_server.url, port) as (listen, connect, lport):
        reader, writer = await asyncio.open_connection(HOST, lport)
        writer.write(b"anyone?")
        with contextlib.suppress(ConnectionResetError):
            assert await asyncio.wait_for(reader.read(), 5) == b""
        for _ in range(100):
            if listen.finished:
                break
            await asyncio.sleep(0.02)
        assert not listen.finished[0].clean
        assert f"cannot connect to 127.0.0.1:{port}" in listen.finished[0].reason
        assert any(n == "stream_closed" and "cannot connect" in f["reason"] for n, f in connect.events)
        writer.close()


async def test_a_peer_breaking_the_window_is_reset(signaling_server):
    """A raw peer that sends beyond the announced window gets its stream reset."""
    async with tcp_server(echo) as (_, port), two_peers(signaling_server.url) as (a, b):
        connect = Forwarder(ForwardConfig(Mode.CONNECT, Transport.TCP, Endpoint(HOST, port), window=1000))
        run = asyncio.create_task(connect.run(b))
        control = await a.channel("forward")
        await control.send('{"type":"hello","version":1,"mode":"listen","protocol":"tcp","window":65536}')
        await control.recv()
        stream = await a.open_channel("tcp/1")
        await stream.send(serialize(Data(b"x" * 1001)))
        messages = [await asyncio.wait_for(stream.recv(), 5) for _ in range(1)]
        assert messages[0][:1] == b"\x03" and b"window" in messages[0]
        with pytest.raises(icepeer_channel_closed()):
            await asyncio.wait_for(stream.recv(), 5)
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)
        await connect.close()


def icepeer_channel_closed() -> type[Exception]:
    from icepeer import ChannelClosed

    return ChannelClosed


@pytest.mark.parametrize("modes, words", [((Mode.LISTEN, Mode.LISTEN), "both sides use --listen"),
                                          ((Mode.CONNECT, Mode.CONNECT), "both sides use --connect")])
async def test_handshake_refuses_two_of_a_kind(signaling_server, modes, words):
    async with two_peers(signaling_server.url) as (a, b):
        sides = [Forwarder(ForwardConfig(mode, Transport.TCP, Endpoint(HOST, 0 if mode is Mode.LISTEN else 9)))
                 for mode in modes]
        results = await asyncio.gather(sides[0].run(a), sides[1].run(b), return_exceptions=True)
        for result in results:
            assert isinstance(result, HandshakeFailed) and words in str(result)


async def test_handshake_refuses_tcp_against_udp(signaling_server):
    async with two_peers(signaling_server.url) as (a, b):
        listen = Forwarder(ForwardConfig(Mode.LISTEN, Transport.TCP, Endpoint(HOST, 0)))
        connect = Forwarder(ForwardConfig(Mode.CONNECT, Transport.UDP, Endpoint(HOST, 9)))
        results = await asyncio.gather(listen.run(a), connect.run(b), return_exceptions=True)
        assert all(isinstance(r, HandshakeFailed) and "same --protocol" in str(r) for r in results)
        assert "this side forwards tcp, the peer udp" in str(results[0])


async def test_the_peer_leaving_ends_the_forward_and_its_streams(signaling_server):
    async with tcp_server(echo) as (_, port), two_peers(signaling_server.url) as (a, b):
        listen = Forwarder(ForwardConfig(Mode.LISTEN, Transport.TCP, Endpoint(HOST, 0)))
        connect = Forwarder(ForwardConfig(Mode.CONNECT, Transport.TCP, Endpoint(HOST, port)))
        lport = (await listen.bind()).port
        runs = [asyncio.create_task(listen.run(a)), asyncio.create_task(connect.run(b))]
        reader, writer = await asyncio.open_connection(HOST, lport)
        writer.write(b"ping")
        assert await asyncio.wait_for(reader.readexactly(4), 5) == b"ping"
        await b.close()
        closed = await asyncio.wait_for(runs[0], 10)
        assert closed.graceful
        with contextlib.suppress(ConnectionResetError):
            assert await asyncio.wait_for(reader.read(), 5) == b""  # the client's connection is gone too
        await asyncio.gather(*runs, return_exceptions=True)
        writer.close()


# -- UDP -----------------------------------------------------------------------------


async def test_udp_keeps_boundaries_and_answers_each_client(signaling_server):
    async with udp_echo() as (server, port), \
            forward(signaling_server.url, port, Transport.UDP) as (listen, connect, lport), \
            udp_client(lport) as (t1, c1), udp_client(lport) as (t2, c2):
        sizes = [1, 1200, 9000, 60000]
        for size in sizes:
            t1.sendto(b"1" * size)
            t2.sendto(b"2" * size)
        got1 = [await asyncio.wait_for(c1.queue.get(), 5) for _ in sizes]
        got2 = [await asyncio.wait_for(c2.queue.get(), 5) for _ in sizes]
        # Unordered channel: the set of datagrams, each whole, each to its own client.
        assert sorted(got1, key=len) == [b"echo:" + b"1" * s for s in sizes]
        assert sorted(got2, key=len) == [b"echo:" + b"2" * s for s in sizes]
        assert len(set(server.sources)) == 2  # one socket per flow towards the service
        assert connect.udp.stats.flows_opened == listen.udp.stats.flows_opened == 2


async def test_udp_idle_flows_expire(signaling_server):
    async with udp_echo() as (server, port), \
            forward(signaling_server.url, port, Transport.UDP, idle_timeout=0.3) as (listen, connect, lport), \
            udp_client(lport) as (t1, c1):
        t1.sendto(b"first")
        assert await asyncio.wait_for(c1.queue.get(), 5) == b"echo:first"
        assert len(listen.udp.table) == len(connect.udp.table) == 1
        await asyncio.sleep(0.8)
        assert len(listen.udp.table) == len(connect.udp.table) == 0
        assert any(n == "flow_expired" for n, _ in listen.events)
        assert any(n == "flow_expired" for n, _ in connect.events)
        t1.sendto(b"again")  # a new flow, a new socket towards the service
        assert await asyncio.wait_for(c1.queue.get(), 5) == b"echo:again"
        assert listen.udp.stats.flows_opened == 2 and len(set(server.sources)) == 2
