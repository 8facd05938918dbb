"""``icepeer forward``: a TCP or UDP port on one machine, reaching a service on the other."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import time
from typing import Any

from icecommon.options import add_option

from ..errors import ConfigError, IcepeerError
from ..forward import DEFAULT_WINDOW, ForwardConfig, Forwarder, Mode, Transport, parse_endpoint
from ..forward.address import Endpoint
from ..forward.flows import DEFAULT_IDLE_TIMEOUT
from ..peer import Peer
from . import EXIT_FAILED, EXIT_OK
from .common import Output, add_code_options, add_connect_options
from .connect import add_host_address_option, open_peer
from .errors import command_output
from .errors import report as report_error

#: Events shown in words without -v (with --json every event is printed).
_QUIET = {"stream_open", "stream_closed", "flow_open", "flow_expired"}


def _endpoint(allow_port_zero: bool) -> Any:
    def parse(text: str) -> Endpoint:
        try:
            return parse_endpoint(text, allow_port_zero=allow_port_zero)
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def _positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, not {text}")
    return value


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "forward",
        help="forward a local TCP or UDP port to a service on the peer's side",
        description="Forward a port through the peer connection. On the machine where "
        "applications connect: icepeer forward --room R --listen HOST:PORT. On the machine that "
        "reaches the service: icepeer forward --room R --connect HOST:PORT. TCP: each accepted "
        "connection gets its own reliable channel, with half-close and flow control. UDP: each "
        "client address is a flow over one unordered, unreliable channel; idle flows expire. "
        "A bare PORT means 127.0.0.1:PORT. Runs until the peer leaves or Ctrl-C. Exit codes: 0 "
        "when the peer left or on Ctrl-C, 1 when the connection failed or was lost, 2 for usage "
        "errors.",
    )
    side = parser.add_mutually_exclusive_group(required=True)
    side.add_argument("--listen", type=_endpoint(True), metavar="HOST:PORT",
                      help="accept local connections here (port 0: any free port, see the "
                      "'listening' event)")
    side.add_argument("--connect", type=_endpoint(False), metavar="HOST:PORT",
                      help="connect to the service here for every forwarded connection")
    add_option(parser, "--protocol", env="ICEPEER_FORWARD_PROTOCOL", default="tcp", choices=("tcp", "udp"),
               help="what to forward; both sides must agree")
    add_option(parser, "--udp-timeout", env="ICEPEER_UDP_TIMEOUT", type=_positive, default=DEFAULT_IDLE_TIMEOUT,
               metavar="SECONDS", help="a UDP flow idle this long expires")
    add_option(parser, "--window", env="ICEPEER_FORWARD_WINDOW", type=int, default=DEFAULT_WINDOW,
               metavar="BYTES", help="bytes of each TCP stream this side accepts before the peer waits")
    add_connect_options(parser, room_help="room to join, trusting the signaling server; without it and "
                        "without a code, a new code is made")
    add_code_options(parser)
    add_host_address_option(parser)
    parser.set_defaults(run=run)


def _emitter(out: Output, verbose: int) -> Any:
    def emit(name: str, **fields: Any) -> None:
        out.event(name, **fields)
        if out.json_mode and name in _QUIET:
            return
        if name == "listening":
            out.progress(f"listening on {fields['address']} ({fields['protocol']})")
        elif name == "ready":
            if "listen" in fields:
                out.progress(f"forwarding {fields['protocol']} {fields['listen']} -> the peer")
            else:
                out.progress(f"forwarding {fields['protocol']} from the peer -> {fields['connect']}")
        elif verbose and name == "stream_open":
            where = fields.get("client") or fields.get("target")
            out.progress(f"stream {fields['id']} open ({where})")
        elif verbose and name == "stream_closed":
            out.progress(f"stream {fields['id']} closed: {fields['reason']} ({fields['bytes_sent']} bytes sent, "
                         f"{fields['bytes_received']} received)")
        elif verbose and name in ("flow_open", "flow_expired"):
            out.progress(f"udp flow {fields['id']} {'open' if name == 'flow_open' else 'expired'} "
                         f"({fields.get('client') or fields.get('source', '')})")

    return emit


async def run(args: argparse.Namespace) -> int:
    out = command_output(args)
    if args.window < 1024 or args.window > 64 * 1024 * 1024:
        raise ConfigError("--window must be between 1024 and 67108864 bytes")
    mode = Mode.LISTEN if args.listen else Mode.CONNECT
    config = ForwardConfig(mode, Transport(args.protocol), args.listen or args.connect,
                           window=args.window, idle_timeout=args.udp_timeout)
    forwarder = Forwarder(config, on_event=_emitter(out, args.verbose))
    try:
        if mode is Mode.LISTEN:
            await forwarder.bind()  # fail fast on a busy port, before waiting for anyone
        other = "--connect HOST:PORT" if mode is Mode.LISTEN else "--listen HOST:PORT"
        args.other_side = f"forward {other}" + (" --protocol udp" if args.protocol == "udp" else "")
        peer, started = await open_peer(args, out)
    except IcepeerError:
        await forwarder.close()
        raise
    report = peer.report()
    elapsed = (time.monotonic() - started) * 1000
    out.progress(f"connected via {report.path} in {elapsed:.0f} ms")
    if report.local is not None and report.remote is not None:
        out.event("connected", local=report.local.to_dict(), remote=report.remote.to_dict(),
                  elapsed_ms=round(elapsed, 1))
    return await _serve(forwarder, peer, out)


async def _serve(forwarder: Forwarder, peer: Peer, out: Output) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    work = asyncio.create_task(forwarder.run(peer))
    stopped = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({work, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if not work.done():
            work.cancel()
            await asyncio.gather(work, return_exceptions=True)
            code, reason = EXIT_OK, "interrupted"
        else:
            try:
                closed = work.result()
                code, reason = (EXIT_OK if closed.graceful else EXIT_FAILED), closed.reason
            except IcepeerError as exc:
                # Reported here, not by main(): the 'closed' event still follows.
                code, reason = report_error(exc, out), str(exc)
    finally:
        stopped.cancel()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        await forwarder.close()
        with contextlib.suppress(Exception):
            await peer.close()
    out.progress(f"closed: {reason}")
    out.event("closed", reason=reason)
    return code
