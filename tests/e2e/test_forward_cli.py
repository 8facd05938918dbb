"""``icepeer forward`` as two subprocesses, with real TCP and UDP servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import signal
import socket
from collections.abc import AsyncIterator
from typing import Any

from tests.integration.test_forward import HOST, echo, roundtrip, tcp_server, udp_client, udp_echo

from .cli import run, start


class Side:
    """One ``icepeer forward`` process, read event by event."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.events: list[dict[str, Any]] = []

    async def until(self, name: str, timeout: float = 15, **match: Any) -> dict[str, Any]:
        for event in self.events:
            if event["event"] == name and all(event.get(k) == v for k, v in match.items()):
                return event
        assert self.proc.stdout is not None
        async with asyncio.timeout(timeout):
            while True:
                line = await self.proc.stdout.readline()
                if not line:
                    raise AssertionError(f"exited before {name!r}: {self.events}")
                event = json.loads(line)
                self.events.append(event)
                if event["event"] == name and all(event.get(k) == v for k, v in match.items()):
                    return event

    async def stop(self, signum: int = signal.SIGINT, timeout: float = 10) -> tuple[int, str]:
        if self.proc.returncode is None:
            self.proc.send_signal(signum)
        out, err = await asyncio.wait_for(self.proc.communicate(), timeout)
        self.events += [json.loads(line) for line in out.decode().splitlines()]
        assert self.proc.returncode is not None
        return self.proc.returncode, err.decode()


def forward_args(server: Any, room: str, *extra: str) -> list[str]:
    return ["forward", "--room", room, "--signal", server.url, "--host-address", HOST, "--json", *extra]


@contextlib.asynccontextmanager
async def tunnel(server: Any, room: str, target: int, *extra: str) -> AsyncIterator[tuple[Side, Side, int]]:
    listen = Side(await start(*forward_args(server, room, "--listen", f"{HOST}:0", *extra)))
    connect = Side(await start(*forward_args(server, room, "--connect", f"{HOST}:{target}", *extra)))
    try:
        port = (await listen.until("listening"))["port"]
        await asyncio.gather(listen.until("ready"), connect.until("ready"))
        yield listen, connect, port
    finally:
        for side in (listen, connect):
            if side.proc.returncode is None:
                side.proc.kill()
                await side.proc.wait()


async def test_tcp_forward_many_connections_a_large_transfer_and_a_clean_exit(signaling_server):
    async with tcp_server(echo) as (_, port), tunnel(signaling_server, "fwd-tcp", port) as (listen, connect, lport):
        payloads = [os.urandom(5000 + 1000 * i) for i in range(20)]
        assert await asyncio.wait_for(asyncio.gather(*(roundtrip(lport, p) for p in payloads)), 30) == payloads
        big = os.urandom(3 * 1024 * 1024)
        back = await asyncio.wait_for(roundtrip(lport, big), 60)
        assert hashlib.sha256(back).digest() == hashlib.sha256(big).digest()

        await listen.until("stream_closed", id=21)
        opened = [e for e in listen.events if e["event"] == "stream_open"]
        assert len(opened) == 21 and all(e["client"].startswith("127.0.0.1:") for e in opened)
        code, err = await listen.stop(signal.SIGINT)
        assert code == 0, err
        assert listen.events[-1] == {"event": "closed", "reason": "interrupted"}
        code, err = await connect.stop(signal.SIGCONT)  # it exits by itself: the peer left
        assert code == 0, err
        assert connect.events[-1]["event"] == "closed"
        assert connect.events[-1]["reason"] in ("peer left", "peer closed the connection")
        closed = [e for e in connect.events if e["event"] == "stream_closed"]
        assert len(closed) == 21 and all(e["clean"] for e in closed)
        assert "Traceback" not in err


async def test_tcp_half_close_through_the_cli(signaling_server):
    async def answer_after_eof(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.read()
        await asyncio.sleep(0.1)
        writer.write(b"got %d bytes" % len(request))
        writer.close()

    async with tcp_server(answer_after_eof) as (_, port), tunnel(signaling_server, "fwd-half", port) as (*_, lport):
        reader, writer = await asyncio.open_connection(HOST, lport)
        writer.write(b"x" * 100_000)
        writer.write_eof()
        assert await asyncio.wait_for(reader.read(), 10) == b"got 100000 bytes"
        writer.close()


async def test_slow_reader_stalls_the_client_then_everything_arrives(signaling_server):
    resume = asyncio.Event()
    received = hashlib.sha256()
    count = 0

    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal count
        await resume.wait()
        while data := await reader.read(65536):
            received.update(data)
            count += len(data)
        writer.close()

    async with tcp_server(slow) as (_, port), \
            tunnel(signaling_server, "fwd-slow", port, "--window", "131072") as (*_, lport):
        _, writer = await asyncio.open_connection(HOST, lport)
        sent, written = hashlib.sha256(), 0
        stop = asyncio.Event()

        async def upload() -> None:
            nonlocal written
            while not stop.is_set():
                chunk = os.urandom(65536)
                writer.write(chunk)
                sent.update(chunk)
                written += len(chunk)
                await writer.drain()
            writer.write_eof()

        up = asyncio.create_task(upload())
        last = -1
        while written != last:
            last = written
            await asyncio.sleep(0.5)
        # Socket buffers in the kernel (a few MB on loopback) and two 128 KiB windows, not more.
        assert 0 < written < 20 * 1024 * 1024
        resume.set()
        stop.set()
        await asyncio.wait_for(up, 30)
        async with asyncio.timeout(30):
            while count < written:
                await asyncio.sleep(0.05)
        assert count == written and received.digest() == sent.digest()
        writer.close()


async def test_udp_forward_boundaries_replies_and_expiry(signaling_server):
    async with udp_echo() as (_, port), \
            tunnel(signaling_server, "fwd-udp", port, "--protocol", "udp", "--udp-timeout", "0.5") as (listen, _, lport), \
            udp_client(lport) as (t1, c1), udp_client(lport) as (t2, c2):
        for size in (3, 1500, 30000):
            t1.sendto(b"a" * size)
            t2.sendto(b"b" * size)
        got1 = sorted([await asyncio.wait_for(c1.queue.get(), 5) for _ in range(3)], key=len)
        got2 = sorted([await asyncio.wait_for(c2.queue.get(), 5) for _ in range(3)], key=len)
        assert got1 == [b"echo:" + b"a" * s for s in (3, 1500, 30000)]
        assert got2 == [b"echo:" + b"b" * s for s in (3, 1500, 30000)]
        opened = [await listen.until("flow_open", id=i) for i in (1, 2)]
        assert {e["client"] for e in opened} == {
            f"{HOST}:{t.get_extra_info('sockname')[1]}" for t in (t1, t2)}
        expired = await listen.until("flow_expired", id=1, timeout=5)
        assert expired["datagrams_sent"] == 3 and expired["datagrams_received"] == 3


async def test_both_sides_listening_is_refused(signaling_server):
    a = Side(await start(*forward_args(signaling_server, "fwd-two", "--listen", f"{HOST}:0")))
    b = Side(await start(*forward_args(signaling_server, "fwd-two", "--listen", f"{HOST}:0")))
    for side in (a, b):
        code, err = await side.stop(signal.SIGCONT, timeout=20)
        assert code == 1, err
        assert "both sides use --listen" in err
        assert side.events[-2]["event"] == "error" and "Traceback" not in err


async def test_a_busy_port_fails_before_waiting_for_the_peer(signaling_server):
    with socket.socket() as busy:
        busy.bind((HOST, 0))
        busy.listen()
        result = await run(*forward_args(signaling_server, "fwd-busy", "--listen", f"{HOST}:{busy.getsockname()[1]}"))
    assert result.code == 1
    assert "cannot listen on 127.0.0.1:" in result.stderr and "Address already in use" in result.stderr
    assert result.events == [{"event": "error", "message": result.stderr.strip()[len("error: "):]}]


async def test_usage_errors_exit_2():
    cases = (([], "one of the arguments --listen --connect is required"),
             (["--listen", "1", "--connect", "2"], "not allowed with argument"),
             (["--connect", "host:0"], "bad port"),
             (["--listen", "1", "--protocol", "sctp"], "invalid choice"),
             (["--listen", "1", "--udp-timeout", "0"], "must be positive"))
    results = await asyncio.gather(*(run("forward", *args) for args, _ in cases))
    for (args, words), result in zip(cases, results):
        assert result.code == 2 and words in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr


async def test_without_a_room_the_code_and_the_other_command_are_printed(signaling_server):
    result = await run("forward", "--signal", signaling_server.url, "--listen", "0", "--timeout", "1")
    assert result.code == 1
    line = next(l for l in result.stderr.splitlines() if l.startswith("code: "))
    code = line.split()[1]
    assert f"on the other machine: icepeer forward {code} --connect HOST:PORT" in result.stderr
