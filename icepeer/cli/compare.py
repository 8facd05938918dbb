"""``icepeer compare``: ICE, then the hand-rolled puncher, between the same two machines.

Run on both sides with the same ``--room``. Each method gets the same
signaling server (rooms ``ROOM-ice`` then ``ROOM-punch``), the same STUN
servers and the same clock, and is measured the same way:

- connected or not, and the time from starting to the first message received;
- the path (local -> remote candidate types) and the round-trip time;
- of :data:`COUNT` datagrams sent unreliably (ICE: an unordered channel with
  ``max_retransmits=0``; puncher: raw datagrams), how many never arrived.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

from ..errors import ConfigError, IcepeerError
from ..peer import connect
from ..punch import punch_connect
from . import EXIT_FAILED, EXIT_OK
from .common import Output, add_connect_options, new_room_code
from .connect import add_host_address_option
from .errors import command_output

COUNT = 200
#: Seconds between datagrams: paced, so that loss means the path, not our own queue.
PACE = 0.002
#: Seconds to wait for stragglers after the last datagram.
SETTLE = 1.0


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "compare",
        help="measure ICE against the hand-rolled puncher between the same two peers",
        description="Run on both machines with the same --room: connect with ICE, measure, "
        "close; then connect with the puncher, measure, close; print both side by side "
        f"(connected, time to first message, path, RTT, datagrams lost out of {COUNT}).",
    )
    add_connect_options(parser)
    add_host_address_option(parser)
    parser.set_defaults(run=run)


@dataclass
class Result:
    method: str
    connected: bool = False
    first_message_ms: float | None = None
    path: str | None = None
    rtt_ms: float | None = None
    lost: int | None = None
    sent: int = COUNT
    error: str | None = None


def _room(room: str, suffix: str) -> str:
    return f"{room[: 64 - len(suffix)]}{suffix}"


async def _measure(
    result: Result,
    send_datagram: Callable[[str], Awaitable[None]],
    recv_datagram: Callable[[], Awaitable[str | bytes]],
    send_reliable: Callable[[str], Awaitable[None]],
    recv_reliable: Callable[[], Awaitable[str | bytes]],
    started: float,
) -> None:
    """Hello both ways (reliable), then COUNT datagrams both ways, then counts swapped."""
    await send_reliable("hello")
    await asyncio.wait_for(recv_reliable(), 30)
    result.first_message_ms = round((time.monotonic() - started) * 1000, 1)
    received: set[str] = set()

    async def collect() -> None:
        while True:
            data = await recv_datagram()
            text = data.decode() if isinstance(data, bytes) else data
            if text.startswith("d"):
                received.add(text)

    collector = asyncio.create_task(collect())
    try:
        for i in range(COUNT):
            await send_datagram(f"d{i}")
            await asyncio.sleep(PACE)
        await asyncio.sleep(SETTLE)
    finally:
        collector.cancel()
    # Tell the peer how many of its datagrams arrived; it tells us about ours.
    await send_reliable(json.dumps({"received": len(received)}))
    while True:
        reply = await asyncio.wait_for(recv_reliable(), 30)
        text = reply.decode() if isinstance(reply, bytes) else reply
        if text.startswith("{"):
            result.lost = COUNT - int(json.loads(text)["received"])
            return


async def measure_ice(args: argparse.Namespace, room: str, out: Output) -> Result:
    result = Result("ice")
    started = time.monotonic()
    try:
        peer = await connect(args.signal, _room(room, "-ice"), ice_servers=args.ice_server,
                             relay_only=args.relay_only, timeout=args.timeout or None,
                             host_addresses=args.host_address or None)
    except ConfigError:
        raise
    except IcepeerError as exc:
        result.error = str(exc)
        return result
    try:
        result.connected = True
        reliable = await peer.channel("compare")
        lossy = await peer.channel("datagrams", ordered=False, max_retransmits=0)
        await _measure(result, lossy.send, lossy.recv, reliable.send, reliable.recv, started)
        report = peer.report()
        result.path = report.path
        result.rtt_ms = report.rtt_ms
        await peer.drain(2.0)
    except (IcepeerError, TimeoutError) as exc:
        result.error = str(exc) or "timed out"
    finally:
        await peer.close()
    return result


async def measure_punch(args: argparse.Namespace, room: str, out: Output) -> Result:
    result = Result("punch")
    started = time.monotonic()
    bind = args.host_address[0] if args.host_address else "0.0.0.0"
    stun = [u for u in args.ice_server if not u.is_turn]
    try:
        link = await punch_connect(args.signal, _room(room, "-punch"), stun=stun,
                                   timeout=args.timeout or None, bind=bind)
    except ConfigError:
        raise
    except IcepeerError as exc:
        result.error = str(exc)
        return result
    try:
        result.connected = True
        await _measure(result, link.send_datagram, link.recv_datagram, link.send, link.recv, started)
        report = link.report()
        result.path = f"{link.local.type.value} -> {link.remote.type.value} over udp"
        result.rtt_ms = round(report.rtt * 1000, 2) if report.rtt is not None else None
        await link.drain()
    except (IcepeerError, TimeoutError) as exc:
        result.error = str(exc) or "timed out"
    finally:
        await link.close()
    return result


def table(results: list[Result]) -> str:
    def cell(value: Any) -> str:
        if value is None:
            return "-"
        if isinstance(value, bool):
            return "yes" if value else "no"
        return str(value)

    rows = [
        ("connected", [cell(r.connected) for r in results]),
        ("time to first message", [f"{r.first_message_ms:.0f} ms" if r.first_message_ms is not None else "-" for r in results]),
        ("path", [cell(r.path) for r in results]),
        ("RTT", [f"{r.rtt_ms:.1f} ms" if r.rtt_ms is not None else "-" for r in results]),
        (f"datagrams lost of {COUNT}", [cell(r.lost) for r in results]),
    ]
    errors = [(r.method, r.error) for r in results if r.error]
    width = max(len(name) for name, _ in rows)
    columns = [max(len(r.method), *(len(values[i]) for _, values in rows)) for i, r in enumerate(results)]
    lines = [" " * width + "  " + "  ".join(r.method.ljust(w) for r, w in zip(results, columns))]
    for name, values in rows:
        lines.append(name.ljust(width) + "  " + "  ".join(v.ljust(w) for v, w in zip(values, columns)))
    lines += [f"{method}: {error}" for method, error in errors]
    return "\n".join(lines)


async def run(args: argparse.Namespace) -> int:
    out = command_output(args)
    room = args.room
    if room is None:
        room = new_room_code()
        out.progress(f"room code: {room}   (on the other machine: icepeer compare --room {room})")
    out.progress("1/2: ICE")
    ice = await measure_ice(args, room, out)
    out.progress("2/2: the hand-rolled puncher")
    punch = await measure_punch(args, room, out)
    results = [ice, punch]
    if args.json:
        print(json.dumps({r.method: asdict(r) for r in results}), flush=True)
    else:
        print(table(results), flush=True)
    return EXIT_OK if any(r.connected for r in results) else EXIT_FAILED
