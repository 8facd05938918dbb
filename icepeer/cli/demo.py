"""``icepeer demo``: signaling, coturn and two peers on loopback, on an embedded default."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from typing import Any

from ..coturn import Coturn, turnserver_path
from ..peer import Peer, connect
from ..signaling_process import SignalingProcess

ROOM = "demo"


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "demo",
        help="run signaling, coturn and two peers on loopback",
        description="Start the signaling server and coturn (when installed) on free "
        "loopback ports, connect two peers, exchange a message each way, print the connection "
        "report; then the same again relay-only through coturn.",
    )
    parser.add_argument("--json", action="store_true", help="print the reports as JSON on stdout")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv, -vvv)")
    parser.set_defaults(run=run)


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


async def exchange(url: str, room: str, servers: list[str], relay_only: bool) -> list[Peer]:
    """Two peers in ``room``: each sends one message and reads the other's."""

    async def one(name: str) -> Peer:
        peer = await connect(url, room, ice_servers=servers, relay_only=relay_only,
                             host_addresses=["127.0.0.1"], timeout=10)
        channel = await peer.channel("demo")
        await channel.send(f"hello from peer {name}")
        message = await channel.recv()
        print(f"peer {name} received: {message!s}", flush=True)
        await peer.drain()
        return peer

    peers = await asyncio.gather(one("A"), one("B"))
    return list(peers)


async def run(args: argparse.Namespace) -> int:
    import json

    started = time.monotonic()
    async with contextlib.AsyncExitStack() as stack:
        server = await stack.enter_async_context(SignalingProcess())
        say(f"signaling server on {server.url}")
        servers: list[str] = []
        if turnserver_path():
            turn = await stack.enter_async_context(Coturn(users={"demo": "demo"}))
            servers = [turn.stun_url(), turn.turn_url("udp", credentials=True)]
            say(f"coturn on {turn.host}:{turn.port} (STUN and TURN)")
        else:
            say("coturn is not installed: host candidates only (`./run test` installs it)")
        runs = [("direct", False)] + ([("relay-only", True)] if servers else [])
        reports = {}
        for name, relay_only in runs:
            say(f"-- {name} connection")
            peers = await exchange(server.url, f"{ROOM}-{name}", servers, relay_only)
            report = peers[0].report()
            reports[name] = report.to_dict()
            if not args.json:
                print(report.describe(), flush=True)
            for peer in peers:
                await peer.close()
        if args.json:
            print(json.dumps(reports, indent=2))
    say(f"done in {1000 * (time.monotonic() - started):.0f} ms")
    return 0
