"""``icepeer connect``: chat with the peer in a room, stdin to stdout, over ICE + DTLS + SCTP."""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from icecommon.options import add_option

from ..channel import Channel
from ..errors import IcepeerError
from ..peer import Peer, connect
from .common import Output, add_connect_options, chat, new_room_code
from .errors import command_output

CHANNEL_LABEL = "chat"


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "connect",
        help="connect to the peer in a room and chat over stdin/stdout",
        description="Join a room on the signaling server, connect to the peer there with ICE "
        "(host, server-reflexive and relay candidates), DTLS and SCTP, then send each stdin "
        "line as a message and print each message received. Exit codes: 0 when stdin ends or "
        "the peer leaves and everything sent was delivered, 1 when the connection could not "
        "be made in time or the peer was lost, 2 for usage errors.",
    )
    add_connect_options(parser)
    add_host_address_option(parser)
    parser.set_defaults(run=run)


def add_host_address_option(parser: argparse.ArgumentParser) -> None:
    add_option(parser, "--host-address", env="ICEPEER_HOST_ADDRESSES", action="append", default=[],
               metavar="ADDR", help="gather host candidates on this local address only (repeatable); "
               "default: every interface but loopback")


class ChannelLink:
    """A channel as :func:`common.chat` sees it."""

    def __init__(self, peer: Peer, channel: Channel) -> None:
        self.peer = peer
        self.channel = channel

    async def send(self, data: str) -> None:
        await self.channel.send(data)

    async def recv(self) -> str | bytes:
        return await self.channel.recv()

    async def drain(self) -> bool:
        return await self.peer.drain()


async def open_peer(args: argparse.Namespace, out: Output) -> tuple[Peer, float]:
    """Connect as the flags say; return the peer and when we started."""
    room = args.room
    if room is None:
        room = new_room_code()
        out.progress(f"room code: {room}   (on the other machine: icepeer {args.command} --room {room})")
    started = time.monotonic()
    attempt = connect(
        args.signal,
        room,
        ice_servers=args.ice_server,
        relay_only=args.relay_only,
        timeout=args.timeout if args.timeout and args.timeout > 0 else None,
        host_addresses=args.host_address or None,
    )
    attempt.peer.on_progress = out.progress
    return await attempt, started


async def run(args: argparse.Namespace) -> int:
    out = command_output(args)
    peer, started = await open_peer(args, out)
    try:
        channel = await peer.channel(CHANNEL_LABEL)
        elapsed = (time.monotonic() - started) * 1000
        report = peer.report()
        assert report.local is not None and report.remote is not None
        out.progress(f"connected via {report.path} in {elapsed:.0f} ms")
        if args.verbose:
            out.progress("phases: " + ", ".join(f"{k} {v:.0f} ms" for k, v in report.timings_ms.items()))
        out.event("connected", local=report.local.to_dict(), remote=report.remote.to_dict(),
                  elapsed_ms=round(elapsed, 1))
        lost: asyncio.Future[tuple[bool, str]] = asyncio.get_running_loop().create_future()

        def on_closed(task: asyncio.Task[Any]) -> None:
            if not lost.done() and not task.cancelled():
                closed = task.result()
                lost.set_result((closed.graceful, closed.reason))

        watcher = asyncio.ensure_future(peer.wait_closed())
        watcher.add_done_callback(on_closed)
        code, reason = await chat(ChannelLink(peer, channel), out, lost=lost)
        watcher.cancel()
    except IcepeerError:
        await peer.close()
        raise
    await peer.close()
    out.progress(f"closed: {reason}")
    out.event("closed", reason=reason)
    return code
