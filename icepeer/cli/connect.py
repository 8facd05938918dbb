"""``icepeer connect``: chat with the peer in a room, stdin to stdout, over ICE + DTLS + SCTP."""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import TYPE_CHECKING, Any

from icecommon.options import add_option

from .. import rendezvous
from ..code import new_code, parse_code
from ..errors import ConfigError, IcepeerError
from ..events import PathChanged
from ..warmup import Warmup
from .common import DEFAULT_SIGNAL_URL, Output, add_code_options, add_connect_options, chat
from .errors import command_output

if TYPE_CHECKING:
    from ..channel import Channel
    from ..peer import Peer

#: What a connection needs beyond the join (ICE, DTLS, SCTP): imported while the CLI joins its room.
HEAVY_MODULES = ("icepeer.peer",)

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
    add_connect_options(parser, room_help="room to join, trusting the signaling server (for browsers "
                        "and stock WebRTC peers); without it and without a code, a new code is made")
    add_code_options(parser)
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


#: What the other side runs to join a code made by each command.
OTHER_SIDE = {"connect": "connect", "forward": "forward", "send": "receive", "receive": "send"}


async def open_peer(args: argparse.Namespace, out: Output) -> tuple[Peer, float]:
    """Connect as the flags say (a code, given or made; or a room); return the peer and when we started."""
    text = getattr(args, "code_arg", None) or getattr(args, "code", None)
    if args.room is not None and text:
        raise ConfigError("give a code or --room, not both")
    timeout = args.timeout if args.timeout and args.timeout > 0 else None
    options = {
        "ice_servers": args.ice_server,
        "relay_only": args.relay_only,
        "timeout": timeout,
        "host_addresses": args.host_address or None,
        "accelerate": not args.standard_handshake,
    }
    code = None if args.room is not None else parse_code(text) if text else new_code()
    if args.room is not None:
        out.progress("note: with --room, the signaling server is trusted: whoever runs it could read "
                     "everything (a code authenticates the peers end to end)")
    started = time.monotonic()
    # The join needs none of ICE, DTLS and SCTP: it runs while they load (icepeer.warmup).
    warmup = Warmup(HEAVY_MODULES)
    joined = await rendezvous.join_early(args.signal, args.room, code, timeout=timeout)
    try:
        if code is not None and code.nameplate is None and joined.code is not None:
            _announce(args, out, str(joined.code))
        await warmup.wait()
        from ..peer import connect

        if args.room is not None:
            attempt = connect(args.signal, args.room, joined=joined, **options)
        else:
            attempt = connect(args.signal, code=code, joined=joined, **options)
        attempt.peer.on_progress = out.progress
    except BaseException:
        await joined.link.leave()
        raise
    peer = await attempt
    watcher = asyncio.ensure_future(_report_paths(peer, out))
    _watchers.add(watcher)
    watcher.add_done_callback(_watchers.discard)
    if getattr(args, "verify", False) and peer.verifier:
        out.progress(f"verify with the other side: {peer.verifier}")
        out.event("verifier", verifier=peer.verifier)
    return peer, started


_watchers: set[asyncio.Future[None]] = set()


async def _report_paths(peer: Peer, out: Output) -> None:
    """A ``path`` event for each new selected path (off the relay, or after an ICE restart)."""
    async for event in peer.events():
        if isinstance(event, PathChanged):
            out.event("path", local=event.local.to_dict(), remote=event.remote.to_dict(),
                      reason=event.reason, elapsed_ms=round(event.elapsed_ms, 1))


def _announce(args: argparse.Namespace, out: Output, code: str) -> None:
    out.event("code", code=code)
    verb = OTHER_SIDE.get(args.command, args.command)
    other = getattr(args, "other_side", verb)
    signal = "" if args.signal == DEFAULT_SIGNAL_URL else f" --signal {args.signal}"
    out.progress(f"code: {code}")
    out.progress(f"on the other machine: icepeer {other.replace(verb, f'{verb} {code}', 1)}{signal}")


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
                  elapsed_ms=round(elapsed, 1), accelerated=[k for k, v in report.accelerated.items() if v],
                  phases=report.to_dict()["phases"], rtt_ms=report.rtt_ms)
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
