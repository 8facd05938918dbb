"""``icepeer punch``: a chat over a hand-rolled UDP hole punch (no ICE, no DTLS).

The same flags and events as ``icepeer connect``, so that the two can be
compared one for one; see docs/puncher.md.
"""

from __future__ import annotations

import argparse
import json
import logging
from typing import Any

from icecommon.options import add_option

from ..errors import ConfigError
from ..punch import PunchConfig
from ..punch.link import punch_connect
from .common import add_connect_options, chat, new_room_code
from .errors import command_output

logger = logging.getLogger(__name__)



def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds: {text!r}")
    return value


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "punch",
        help="chat over a hand-rolled UDP hole punch (the baseline ICE is compared with)",
        description="Join a room, swap host and STUN-learned addresses with the peer through "
        "the signaling server, punch a UDP path with authenticated probes, then send stdin "
        "lines as acknowledged messages and print the peer's. STUN servers come from "
        "--ice-server and the signaling server; TURN URLs are accepted and ignored.",
    )
    add_connect_options(parser)
    add_option(parser, "--bind", env="ICEPEER_PUNCH_BIND", default="0.0.0.0", metavar="ADDR",
               help="local IPv4 address for the UDP socket (0.0.0.0: every interface)")
    add_option(parser, "--dead-timeout", env="ICEPEER_PUNCH_DEAD_TIMEOUT", type=_seconds,
               default=10.0, metavar="SECONDS",
               help="declare the peer lost after this long without a packet from it")
    parser.set_defaults(run=run)


async def run(args: argparse.Namespace) -> int:
    out = command_output(args)
    if args.relay_only:
        raise ConfigError("the puncher has no relay: --relay-only belongs to 'icepeer connect'")
    room = args.room
    if room is None:
        room = new_room_code()
        out.progress(f"room code: {room}")
        out.progress(f"on the other side run: icepeer punch --room {room}")
    config = PunchConfig(dead_timeout=args.dead_timeout)
    async with punch_connect(args.signal, room, stun=args.ice_server, timeout=args.timeout,
                             bind=args.bind, config=config, progress=out.progress) as link:
        elapsed_ms = round((link.elapsed or 0.0) * 1000)
        out.progress(f"connected via {link.local.type.value} -> {link.remote.type.value} "
                     f"over udp in {elapsed_ms} ms")
        out.event("connected", local=link.local.to_json(), remote=link.remote.to_json(),
                  elapsed_ms=elapsed_ms)
        code, reason = await chat(link, out, lost=link.lost)
        out.event("closed", reason=reason)
        out.progress(f"closed: {reason}")
        logger.info("report: %s", json.dumps(link.report().to_dict()))
        return code
