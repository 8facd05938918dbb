"""What the connection benchmarks share: servers, child processes, and one function per method.

Every measurement runs two peers in two child processes on loopback (and
only loopback: host candidates are gathered on 127.0.0.1 for every method),
through the same signaling server and the same coturn, started here.

Methods:
- ``icepeer``: :func:`icepeer.connect` and a channel;
- ``aiortc``: stock aiortc, ``RTCPeerConnection`` with one data channel,
  offer and answer over the same signaling (aiortc does not trickle);
- ``punch``: the hand-rolled puncher (:mod:`icepeer.punch`);
- ``udp``: raw UDP sockets, addresses swapped over signaling: the floor/ceiling.

A child prints one JSON line on stdout with what it measured.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
#: A child of the method ``before+uvloop`` imports the icepeer of another checkout (``--before DIR``).
sys.path.insert(0, os.environ.get("ICEPEER_BENCH_ROOT") or str(ROOT))
#: ``--before DIR``, once given: that checkout, for a before/after in one run.
BEFORE: list[str] = []

# Imported up front, so that no method pays for imports inside the measured time.
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription  # noqa: E402
from aiortc.rtcconfiguration import RTCIceTransportPolicy  # noqa: E402

import icepeer  # noqa: E402
from icecommon.urls import parse_ice_url  # noqa: E402
from signaling.client import SignalingClient  # noqa: E402
from signaling.protocol import PeerJoined, Relayed  # noqa: E402

LOOPBACK = "127.0.0.1"


def loopback_only() -> None:
    """Make aioice (and so stock aiortc) gather host candidates on 127.0.0.1 only."""
    import aioice.ice

    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: [LOOPBACK]


# -- servers -------------------------------------------------------------------


@dataclass
class Env:
    signal_url: str
    stun: str | None
    turn_udp: str | None
    turn_tcp: str | None
    blackhole: str


@contextlib.asynccontextmanager
async def servers() -> AsyncIterator[Env]:
    from icepeer.coturn import Coturn, turnserver_path
    from signaling.server import ServerConfig, SignalingServer

    hole = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    hole.bind((LOOPBACK, 0))
    async with contextlib.AsyncExitStack() as stack:
        server = await stack.enter_async_context(SignalingServer(ServerConfig(port=0, rate=10000, burst=10000)))
        stun = turn_udp = turn_tcp = None
        if turnserver_path():
            turn = await stack.enter_async_context(Coturn(users={"bench": "bench"}))
            stun = turn.stun_url()
            turn_udp = turn.turn_url("udp", credentials=True)
            turn_tcp = turn.turn_url("tcp", credentials=True)
        else:
            print("coturn is not installed: scenarios that need it are left out", file=sys.stderr)
        try:
            yield Env(server.url, stun, turn_udp, turn_tcp, f"stun:{LOOPBACK}:{hole.getsockname()[1]}")
        finally:
            hole.close()


# -- children -------------------------------------------------------------------


async def run_pair(script: str, method: str, room: str, env: Env, extra: list[str], timeout: float = 60) -> list[dict[str, Any]]:
    """Run both peers of ``room`` as child processes; their JSON results.

    Each child imports everything, says "ready", and waits for the start
    instant on stdin: both start together, and no import is measured.
    """
    args = [sys.executable, script, "--child", method, "--room", room, "--signal", env.signal_url, *extra]
    root = BEFORE[0] if method.startswith("before") and BEFORE else str(ROOT)
    procs = [
        await asyncio.create_subprocess_exec(*args, "--index", str(index), stdin=subprocess.PIPE,
                                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                             env={**os.environ, "PYTHONPATH": root, "ICEPEER_BENCH_ROOT": root})
        for index in range(2)
    ]
    for proc in procs:
        assert proc.stdout is not None
        await asyncio.wait_for(proc.stdout.readline(), timeout)
    start_at = time.time() + 0.05
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write(f"{start_at!r}\n".encode())
        await proc.stdin.drain()
    results = []
    for proc in procs:
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout)
        except TimeoutError:
            proc.kill()
            out, err = await proc.communicate()
        line = out.decode().strip().splitlines()[-1:] or [""]
        try:
            results.append(json.loads(line[0]))
        except json.JSONDecodeError:
            results.append({"ok": False, "error": (err.decode().strip().splitlines() or ["no output"])[-1]})
    return results


def child_parser(description: str, *, runs: int, methods: str) -> argparse.ArgumentParser:
    """The options every side-by-side benchmark takes, and the hidden ones of its children."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--runs", type=int, default=runs, help="repetitions per cell")
    parser.add_argument("--methods", default=methods, help="comma-separated: " + ",".join(OPENERS))
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--before", metavar="DIR", help="method before+uvloop: the icepeer of this checkout "
                        "(e.g. a git worktree of an older commit), for a before/after in one run")
    parser.add_argument("--child", metavar="METHOD", help=argparse.SUPPRESS)
    parser.add_argument("--room", help=argparse.SUPPRESS)
    parser.add_argument("--signal", help=argparse.SUPPRESS)
    parser.add_argument("--ice-server", action="append", default=[], help=argparse.SUPPRESS)
    parser.add_argument("--relay-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--index", type=int, default=0, help=argparse.SUPPRESS)
    return parser


async def wait_start() -> float:
    """Say ready, read the agreed instant from stdin, sleep until it; return it."""
    print("ready", flush=True)
    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    start_at = float(line)
    delay = start_at - time.time()
    if delay > 0:
        await asyncio.sleep(delay)
    return start_at


# -- one link per method ------------------------------------------------------------


class Link:
    """The smallest common shape: send a message, receive one, close."""

    send: Callable[[bytes], Awaitable[None]]
    recv: Callable[[], Awaitable[bytes | str]]
    close: Callable[[], Awaitable[None]]
    path: str = ""
    #: Messages are not guaranteed (raw UDP): the receiver counts rather than waits forever.
    lossy: bool = False


async def open_icepeer(args: argparse.Namespace) -> Link:
    peer = await icepeer.connect(args.signal, args.room, ice_servers=args.ice_server,
                                 relay_only=args.relay_only, host_addresses=[LOOPBACK], timeout=30)
    channel = await peer.channel("bench")
    link = Link()
    link.send, link.recv, link.close = channel.send, channel.recv, peer.close
    link.path = peer.report().path
    link.timings = peer.report().timings_ms  # type: ignore[attr-defined]
    link.drain = peer.drain  # type: ignore[attr-defined]
    return link


async def open_icepeer_code(args: argparse.Namespace) -> Link:
    """icepeer with a code (the PAKE, HMACs and key confirmation), both sides given it beforehand."""
    number = 1 + int.from_bytes(args.room.encode(), "big") % 99000
    peer = await icepeer.connect(args.signal, code=f"{number}-guitar-ribbon", wait_for_peer=True,
                                 ice_servers=args.ice_server, relay_only=args.relay_only,
                                 host_addresses=[LOOPBACK], timeout=30)
    channel = await peer.channel("bench")
    link = Link()
    link.send, link.recv, link.close = channel.send, channel.recv, peer.close
    link.path = peer.report().path
    link.timings = peer.report().timings_ms  # type: ignore[attr-defined]
    link.drain = peer.drain  # type: ignore[attr-defined]
    return link


async def open_aiortc(args: argparse.Namespace, *, loopback: bool = True) -> Link:
    if loopback:
        loopback_only()
    servers = []
    for url in args.ice_server:
        parsed = parse_ice_url(url)
        servers.append(RTCIceServer(urls=parsed.url(), username=parsed.username, credential=parsed.password))
    policy = RTCIceTransportPolicy.RELAY if args.relay_only else RTCIceTransportPolicy.ALL
    config = RTCConfiguration(iceServers=servers, iceTransportPolicy=policy)
    pc = RTCPeerConnection(config)
    sig = await SignalingClient.connect(args.signal, args.room)
    opened: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    queue: asyncio.Queue[bytes | str] = asyncio.Queue()

    def adopt(channel: Any) -> None:
        channel.on("message", queue.put_nowait)
        if channel.readyState == "open":
            opened.set_result(channel)
        else:
            channel.on("open", lambda: opened.done() or opened.set_result(channel))

    if sig.peers:
        other = sig.peers[0]
        pc.on("datachannel", adopt)
        while True:
            event = await sig.recv()
            if isinstance(event, Relayed) and event.data.get("type") == "offer":
                break
        await pc.setRemoteDescription(RTCSessionDescription(**event.data))
        await pc.setLocalDescription(await pc.createAnswer())
        await sig.signal(other, {"type": "answer", "sdp": pc.localDescription.sdp})
    else:
        while True:
            event = await sig.recv()
            if isinstance(event, PeerJoined):
                other = event.peer_id
                break
        adopt(pc.createDataChannel("bench"))
        await pc.setLocalDescription(await pc.createOffer())  # gathers every candidate first
        await sig.signal(other, {"type": "offer", "sdp": pc.localDescription.sdp})
        while True:
            event = await sig.recv()
            if isinstance(event, Relayed) and event.data.get("type") == "answer":
                break
        await pc.setRemoteDescription(RTCSessionDescription(**event.data))
    channel = await opened
    link = Link()

    async def send(data: bytes) -> None:
        channel.send(data)
        # aiortc's send() never blocks: bufferedAmount is its only backpressure signal.
        while channel.bufferedAmount > 1024 * 1024:
            await asyncio.sleep(0.001)

    async def close() -> None:
        await pc.close()
        await sig.leave()

    async def drain() -> bool:
        sctp = pc.sctp
        while channel.bufferedAmount or sctp._outbound_queue or sctp._sent_queue:
            await asyncio.sleep(0.01)
        return True

    link.send, link.recv, link.close = send, queue.get, close
    link.drain = drain  # type: ignore[attr-defined]
    pair = pc.sctp.transport.transport._connection._nominated.get(1)
    link.path = f"{pair.local_candidate.type} -> {pair.remote_candidate.type}" if pair else "?"
    link.pair = pair  # type: ignore[attr-defined]
    return link


async def open_udp(args: argparse.Namespace) -> Link:
    """Raw UDP: swap 127.0.0.1 ports over signaling, then plain datagrams."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes] = asyncio.Queue()

    class Protocol(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: Any) -> None:
            queue.put_nowait(data)

    transport, _ = await loop.create_datagram_endpoint(Protocol, local_addr=(LOOPBACK, 0))
    sock = transport.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 * 1024 * 1024)
    port = transport.get_extra_info("sockname")[1]
    sig = await SignalingClient.connect(args.signal, args.room)
    if sig.peers:
        other = sig.peers[0]
        await sig.signal(other, {"port": port})
    else:
        while not isinstance(event := await sig.recv(), PeerJoined):
            pass
        other = event.peer_id
        await sig.signal(other, {"port": port})
    while not (isinstance(event := await sig.recv(), Relayed) and "port" in event.data):
        pass
    remote = (LOOPBACK, event.data["port"])
    link = Link()
    link.lossy = True
    link.path = "host -> host (raw udp)"

    async def send(data: bytes) -> None:
        transport.sendto(data, remote)
        await asyncio.sleep(0)

    async def close() -> None:
        transport.close()
        await sig.leave()

    link.send, link.recv, link.close = send, queue.get, close
    return link


async def open_punch(args: argparse.Namespace) -> Link:
    from icepeer.punch import punch_connect

    stun = [u for u in args.ice_server if u.startswith("stun:")]
    punch = await punch_connect(args.signal, args.room, stun=stun, timeout=30, bind=LOOPBACK)
    link = Link()
    link.send, link.recv, link.close = punch.send, punch.recv, punch.close
    link.drain = punch.drain  # type: ignore[attr-defined]
    link.path = f"{punch.local.type.value} -> {punch.remote.type.value}"
    return link


OPENERS: dict[str, Callable[[argparse.Namespace], Awaitable[Link]]] = {
    "icepeer": open_icepeer,
    # The same on uvloop, as the icepeer CLI and signaling server run (Linux).
    "icepeer+uvloop": open_icepeer,
    "icepeer+code": open_icepeer_code,
    # icepeer+uvloop from the checkout of --before.
    "before+uvloop": open_icepeer,
    "aiortc": open_aiortc,
    "punch": open_punch,
    "udp": open_udp,
}


def entry(main: Callable[[], Awaitable[int]]) -> int:
    """Run a benchmark: the children of a ``+uvloop`` method on uvloop, everything else on asyncio."""
    child = sys.argv[sys.argv.index("--child") + 1] if "--child" in sys.argv else ""
    if child.endswith("+uvloop"):
        import uvloop

        return uvloop.run(main())  # type: ignore[arg-type]
    return asyncio.run(main())  # type: ignore[arg-type]


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def fmt_ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"
