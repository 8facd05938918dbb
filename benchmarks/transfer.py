"""Throughput of ``icepeer forward`` (TCP) and ``icepeer send``/``receive``, beside the same over stock aiortc.

    .venv/bin/python benchmarks/transfer.py [--megabytes 32] [--runs 5] [--json]

Everything on 127.0.0.1, in one run, through one signaling server started
here. Each icepeer command runs twice per round: as shipped (``python -m
icepeer``: icepeer's DTLS and SCTP, on uvloop), and as ``aiortc``
(``benchmarks/aiortc_cli.py``: the very same command code, with a stock
aiortc ``RTCPeerConnection`` as its data path, on asyncio's loop):

- ``forward tcp``: two ``icepeer forward`` processes (``--listen 127.0.0.1:0``
  and ``--connect`` to a TCP sink in this process); this process writes
  ``--megabytes`` of random bytes into the listening port and half-closes;
  the figure is bytes / (first write -> the sink's EOF).
- ``send/receive``: ``icepeer send`` and ``icepeer receive`` processes with a
  ``--megabytes`` random file; the figure is the receiver's own ``done``
  event (offer accepted -> last file synced, renamed and checked), and the
  wall time of the two processes (start, connect, transfer, exit) beside it.
- ``channel icepeer`` / ``channel aiortc``: two peers in two processes
  (``_harness``), one sends ``--megabytes`` in 64 KiB messages (what forward
  and send use) as fast as backpressure allows, the other times first to
  last message: icepeer's :class:`Channel` and a stock ``RTCPeerConnection``.
- ``tcp direct``: the same writer and sink without the tunnel: the ceiling.

The machine is shared and noisy: compare the ratios within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import itertools
import json
import os
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from _harness import (
    LOOPBACK,
    OPENERS,
    ROOT,
    Env,
    child_parser,
    entry,
    median,
    run_pair,
    servers,
    wait_start,
)

ICEPEER = [sys.executable, "-m", "icepeer"]
STOCK = [sys.executable, str(Path(__file__).with_name("aiortc_cli.py"))]
STACKS = ("icepeer", "aiortc")
MESSAGE = 65536
CHILD_ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


# -- the raw channel, in child processes ------------------------------------------------------


async def child(args: argparse.Namespace) -> None:
    await wait_start()
    try:
        link = await asyncio.wait_for(OPENERS[args.child](args), 40)
        count = max(1, args.megabytes * 1024 * 1024 // MESSAGE)
        if args.index == 0:
            payload = os.urandom(MESSAGE)
            for _ in range(count):
                await link.send(payload)
            drain = getattr(link, "drain", None)
            if drain is not None:
                await drain()
            await asyncio.wait_for(link.recv(), 300)  # the receiver's "done"
            result: dict[str, Any] = {"ok": True, "role": "sender"}
        else:
            received, first, last = 0, 0.0, 0.0
            while received < count * MESSAGE:
                data = await asyncio.wait_for(link.recv(), 120)
                last = time.monotonic()
                first = first or last
                received += len(data)
            await link.send(b"done")
            seconds = last - first
            result = {"ok": True, "role": "receiver", "path": link.path,
                      "MBps": received / seconds / 1e6 if seconds > 0 else None}
        await asyncio.sleep(0.3)
        await link.close()
    except Exception as exc:  # noqa: BLE001 - reported as a failed run
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(result), flush=True)


async def channel_run(method: str, room: str, env: Env, megabytes: int) -> float | str:
    pair = await run_pair(__file__, method, room, env, ["--megabytes", str(megabytes)], timeout=300)
    receiver = next((r for r in pair if r.get("role") == "receiver"), None)
    if receiver and receiver.get("MBps"):
        return float(receiver["MBps"])
    return next((str(r.get("error")) for r in pair if not r.get("ok")), "no rate")


# -- a TCP sink and a writer ---------------------------------------------------------------------


class Sink:
    """Reads every connection to EOF; when the last byte of each arrived."""

    def __init__(self) -> None:
        self.finished: asyncio.Queue[tuple[int, float, str]] = asyncio.Queue()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        digest, count = hashlib.sha256(), 0
        while data := await reader.read(1024 * 1024):
            digest.update(data)
            count += len(data)
        self.finished.put_nowait((count, time.monotonic(), digest.hexdigest()))
        writer.close()


async def push(port: int, payload: bytes, sink: Sink) -> float:
    """Write ``payload`` to 127.0.0.1:port, half-close; MB/s until the sink saw all of it."""
    _, writer = await asyncio.open_connection(LOOPBACK, port)
    started = time.monotonic()
    view = memoryview(payload)
    for i in range(0, len(payload), 1024 * 1024):
        writer.write(view[i:i + 1024 * 1024])
        await writer.drain()
    writer.write_eof()
    count, ended, digest = await asyncio.wait_for(sink.finished.get(), 300)
    writer.close()
    if count != len(payload) or digest != hashlib.sha256(payload).hexdigest():
        raise RuntimeError(f"the sink got {count} bytes of {len(payload)}, or other bytes")
    return len(payload) / (ended - started) / 1e6


# -- icepeer processes ------------------------------------------------------------------------------


async def spawn(*args: str, stack: str = "icepeer") -> asyncio.subprocess.Process:
    program = ICEPEER if stack == "icepeer" else STOCK
    env = CHILD_ENV if stack == "icepeer" else {**CHILD_ENV, "ICEPEER_LOOP": "asyncio"}
    return await asyncio.create_subprocess_exec(
        *program, *args, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=env)


async def until(proc: asyncio.subprocess.Process, name: str, timeout: float = 60) -> dict[str, Any]:
    assert proc.stdout is not None
    async with asyncio.timeout(timeout):
        while line := await proc.stdout.readline():
            event = json.loads(line)
            if event["event"] == name:
                return event  # type: ignore[no-any-return]
            if event["event"] == "error":
                raise RuntimeError(event["message"])
    raise RuntimeError(f"exited before {name!r}")


@contextlib.asynccontextmanager
async def forward_pair(env: Env, room: str, target: int, stack: str) -> AsyncIterator[int]:
    common = ["--room", room, "--signal", env.signal_url, "--host-address", LOOPBACK, "--json"]
    listen = await spawn("forward", *common, "--listen", f"{LOOPBACK}:0", stack=stack)
    connect = await spawn("forward", *common, "--connect", f"{LOOPBACK}:{target}", stack=stack)
    try:
        port = (await until(listen, "listening"))["port"]
        await asyncio.gather(until(listen, "ready"), until(connect, "ready"))
        yield int(port)
    finally:
        for proc in (listen, connect):
            if proc.returncode is None:
                proc.send_signal(signal.SIGINT)
        for proc in (listen, connect):
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def forward_run(env: Env, room: str, payload: bytes, stack: str) -> float | str:
    sink = Sink()
    server = await asyncio.start_server(sink.handle, LOOPBACK, 0)
    try:
        async with forward_pair(env, room, server.sockets[0].getsockname()[1], stack) as port:
            return await push(port, payload, sink)
    except Exception as exc:  # noqa: BLE001 - reported as a failed run
        return f"{type(exc).__name__}: {exc}"
    finally:
        server.close()


async def direct_run(payload: bytes) -> float:
    sink = Sink()
    server = await asyncio.start_server(sink.handle, LOOPBACK, 0)
    try:
        return await push(server.sockets[0].getsockname()[1], payload, sink)
    finally:
        server.close()


async def send_run(env: Env, room: str, source: Path, stack: str) -> tuple[float | str, float | None]:
    """(MB/s as the receiver measured it, MB/s over the processes' wall time)."""
    with tempfile.TemporaryDirectory(prefix="icepeer-bench-") as out:
        common = ["--room", room, "--signal", env.signal_url, "--host-address", LOOPBACK, "--json"]
        started = time.monotonic()
        sender = await spawn("send", str(source), *common, stack=stack)
        receiver = await spawn("receive", "-o", out, *common, stack=stack)
        try:
            (rout, rerr), (_, serr) = await asyncio.wait_for(
                asyncio.gather(receiver.communicate(), sender.communicate()), 300)
        except TimeoutError:
            for proc in (sender, receiver):
                proc.kill()
            return "timeout", None
        wall = time.monotonic() - started
        events = [json.loads(line) for line in rout.decode().splitlines()]
        done = next((e for e in events if e["event"] == "done"), None)
        if receiver.returncode != 0 or sender.returncode != 0 or not done or not done["ok"]:
            return (rerr or serr).decode().strip().splitlines()[-1:][0] if (rerr or serr) else "failed", None
        if hashlib.sha256((Path(out) / source.name).read_bytes()).digest() != \
                hashlib.sha256(source.read_bytes()).digest():
            return "corrupted", None
        return float(done["MBps"]), source.stat().st_size / wall / 1e6


# -- main -----------------------------------------------------------------------------------------


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} MB/s"


async def main() -> int:
    parser = child_parser(__doc__, runs=5, methods="icepeer+uvloop,aiortc")
    parser.add_argument("--megabytes", type=int, default=32, help="data per run, in MiB")
    args = parser.parse_args()
    if args.child:
        await child(args)
        return 0
    rooms = (f"bench-{os.getpid()}-{i}" for i in itertools.count())
    size = args.megabytes * 1024 * 1024
    payload = os.urandom(size)
    names = ["tcp direct (no tunnel)"]
    for stack in STACKS:
        names += [f"forward tcp, {stack}", f"send/receive, {stack}", f"send/receive wall, {stack}"]
    names += ["channel icepeer+uvloop", "channel aiortc"]
    values: dict[str, list[float | str]] = {name: [] for name in names}
    with tempfile.TemporaryDirectory(prefix="icepeer-bench-src-") as src:
        source = Path(src) / f"random-{args.megabytes}MiB.bin"
        source.write_bytes(payload)
        async with servers() as env:
            # Round after round, every method once: the shared machine's load drifts, and a
            # round compares the methods under the same load.
            for round_ in range(1, args.runs + 1):
                values["tcp direct (no tunnel)"].append(await direct_run(payload))
                for stack in STACKS:
                    values[f"forward tcp, {stack}"].append(await forward_run(env, next(rooms), payload, stack))
                    rate, wall = await send_run(env, next(rooms), source, stack)
                    values[f"send/receive, {stack}"].append(rate)
                    values[f"send/receive wall, {stack}"].append(wall if wall is not None else "failed")
                for method in ("icepeer+uvloop", "aiortc"):
                    values[f"channel {method}"].append(await channel_run(method, next(rooms), env, args.megabytes))
                print(f"round {round_}: " + ", ".join(
                    f"{name} {v[-1]:.2f}" if isinstance(v[-1], float) else f"{name} ({v[-1]})"
                    for name, v in values.items()), file=sys.stderr, flush=True)
    cells: dict[str, dict[str, Any]] = {}
    for name in names:
        rates = [v for v in values[name] if isinstance(v, float)]
        cells[name] = {"median_MBps": median(rates), "runs": [round(r, 3) for r in rates],
                       "failures": [v for v in values[name] if isinstance(v, str)]}
    if args.json:
        print(json.dumps({"megabytes": args.megabytes, "runs": args.runs, "cells": cells}, indent=2))
        return 0
    print(f"| {args.megabytes} MiB, median of {args.runs} | icepeer | stock aiortc | icepeer / aiortc |")
    print("|---|---|---|---|")
    for what in ("forward tcp", "send/receive", "send/receive wall", "channel"):
        if what == "channel":
            ours, theirs = cells["channel icepeer+uvloop"]["median_MBps"], cells["channel aiortc"]["median_MBps"]
        else:
            ours, theirs = cells[f"{what}, icepeer"]["median_MBps"], cells[f"{what}, aiortc"]["median_MBps"]
        ratio = f"{ours / theirs:.2f}x" if ours and theirs else "-"
        print(f"| {what} | {fmt(ours)} | {fmt(theirs)} | {ratio} |")
    print(f"| tcp direct (no tunnel) | {fmt(cells['tcp direct (no tunnel)']['median_MBps'])} | | |")
    return 0


if __name__ == "__main__":
    sys.exit(entry(main))
