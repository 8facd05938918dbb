"""``python -m signaling``: run the signaling server until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import signal
import sys

from icecommon.options import add_option

from .exceptions import SignalingError
from .protocol import SUBPROTOCOL
from .server import ServerConfig, SignalingServer

logger = logging.getLogger("signaling")


def _optional_seconds(text: str) -> float | None:
    value = float(text)
    return None if value <= 0 else value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m signaling",
        description=f"icepeer signaling server (protocol {SUBPROTOCOL}): peers join rooms "
        "and swap offers, answers and candidates.",
    )
    d = ServerConfig()
    add = add_option
    add(parser, "--host", env="SIGNALING_HOST", default=d.host, help="address to listen on")
    add(parser, "--port", env="SIGNALING_PORT", type=int, default=d.port, help="port to listen on (0: any free port)")
    add(parser, "--room-size", env="SIGNALING_ROOM_SIZE", type=int, default=d.room_size, help="peers per room")
    add(parser, "--max-message-size", env="SIGNALING_MAX_MESSAGE_SIZE", type=int,
        default=d.max_message_size, help="largest frame in bytes; bigger ones close the connection with 1009")
    add(parser, "--rate", env="SIGNALING_RATE", type=float, default=d.rate,
        help="frames per second a connection may send on average")
    add(parser, "--burst", env="SIGNALING_BURST", type=int, default=d.burst,
        help="frames a connection may send in a burst")
    add(parser, "--join-timeout", env="SIGNALING_JOIN_TIMEOUT", type=_optional_seconds,
        default=d.join_timeout, help="seconds before a connection that never joins is closed (0: never)")
    add(parser, "--ping-interval", env="SIGNALING_PING_INTERVAL", type=_optional_seconds,
        default=d.ping_interval, help="seconds between websocket pings (0: off)")
    add(parser, "--ping-timeout", env="SIGNALING_PING_TIMEOUT", type=_optional_seconds,
        default=d.ping_timeout, help="seconds to wait for a pong before closing (0: forever)")
    add(parser, "--allowed-origin", env="SIGNALING_ALLOWED_ORIGINS", action="append", default=[],
        help="Origin a browser may connect from (repeatable); none given: any origin")
    add(parser, "--certfile", env="SIGNALING_CERTFILE", help="TLS certificate (PEM) to serve wss://")
    add(parser, "--keyfile", env="SIGNALING_KEYFILE", help="TLS private key (PEM)")
    add(parser, "--ice-server", env="SIGNALING_ICE_SERVERS", action="append", default=[],
        help="STUN/TURN URL handed to every peer, without credentials (repeatable)")
    add(parser, "--turn-secret", env="SIGNALING_TURN_SECRET", secret=True,
        help="coturn static-auth-secret: mint time-limited TURN credentials per join")
    add(parser, "--turn-url", env="SIGNALING_TURN_URLS", action="append", default=[],
        help="TURN URL the minted credentials are for (repeatable)")
    add(parser, "--turn-ttl", env="SIGNALING_TURN_TTL", type=float, default=d.turn_ttl,
        help="lifetime of minted TURN credentials in seconds")
    add(parser, "--log-level", env="SIGNALING_LOG_LEVEL", default="info",
        choices=["debug", "info", "warning", "error"], help="logging level")
    return parser


async def run(config: ServerConfig) -> None:
    # With thousands of connections, CPython's default collection thresholds
    # run full collections that pause relaying for 300-500 ms (measured with
    # 5,000 peers, docs/benchmarks.md). The server makes few reference cycles:
    # collect far less often, and never scan the objects made at start-up.
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with SignalingServer(config) as server:
        # Machine-readable first line: scripts wait for it to learn the port.
        print(f"listening on {server.url}", flush=True)
        await stop.wait()
        logger.info("shutting down: closing %d connections", server.metrics.connections)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.log_level != "debug":
        logging.getLogger("websockets").setLevel(logging.WARNING)
    config = ServerConfig(
        host=args.host,
        port=args.port,
        room_size=args.room_size,
        max_message_size=args.max_message_size,
        rate=args.rate,
        burst=args.burst,
        join_timeout=args.join_timeout,
        ping_interval=args.ping_interval,
        ping_timeout=args.ping_timeout,
        allowed_origins=args.allowed_origin,
        certfile=args.certfile,
        keyfile=args.keyfile,
        ice_servers=args.ice_server,
        turn_secret=args.turn_secret,
        turn_urls=args.turn_url,
        turn_ttl=args.turn_ttl,
    )
    try:
        config.validate()
        asyncio.run(run(config))
    except SignalingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
