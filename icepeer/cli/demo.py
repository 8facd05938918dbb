"""``icepeer demo``: everything on loopback, on an embedded default."""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from typing import Any

from signaling.client import join
from signaling.server import ServerConfig, SignalingServer

from ..coturn import Coturn, turnserver_path


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "demo",
        help="run signaling, coturn and two peers on loopback",
        description="Start an embedded signaling server and coturn (when installed) on free "
        "loopback ports, connect two peers, exchange a message each way, print a report.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv, -vvv)")
    parser.set_defaults(run=run)


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


async def run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    async with contextlib.AsyncExitStack() as stack:
        server = await stack.enter_async_context(SignalingServer(ServerConfig(port=0)))
        say(f"signaling server on {server.url}")
        if turnserver_path():
            turn = await stack.enter_async_context(Coturn(users={"demo": "demo"}))
            say(f"coturn on {turn.host}:{turn.port}")
        else:
            say("coturn is not installed: host candidates only (./run test installs it)")
        a = await stack.enter_async_context(join(server.url, "demo"))
        b = await stack.enter_async_context(join(server.url, "demo"))
        say(f"peer {a.peer_id[:8]} and peer {b.peer_id[:8]} joined room 'demo'")
        await a.recv()
        await a.signal(b.peer_id, "hello from a")
        await b.signal(a.peer_id, "hello from b")
        print(f"b received: {(await b.recv()).data}")  # type: ignore[union-attr]
        print(f"a received: {(await a.recv()).data}")  # type: ignore[union-attr]
    say(f"done in {1000 * (time.monotonic() - started):.0f} ms")
    return 0
