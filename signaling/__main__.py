"""``python -m signaling``: run the signaling server until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import resource
import signal
import stat
import sys
import urllib.parse
from typing import Any

from icecommon.options import add_option

from .exceptions import ConfigError, SignalingError
from .protocol import SUBPROTOCOL
from .server import ServerConfig, SignalingServer

logger = logging.getLogger("signaling")


def _optional_seconds(text: str) -> float | None:
    value = float(text)
    return None if value <= 0 else value


def _optional_count(text: str) -> int | None:
    value = int(text)
    if value < 0:
        raise ValueError(f"{value} is negative")
    return None if value == 0 else value


class _RefuseOnCommandLine(argparse.Action):
    """A secret given as a flag is visible to every user in ``ps``: refuse it."""

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        parser.error(
            f"{self.option_strings[0]} on the command line is visible to every user of this "
            "machine (ps, /proc); put the secret in a file (--turn-secret-file FILE, mode 0600) "
            "or in the environment (SIGNALING_TURN_SECRET)"
        )


def read_secret_file(path: str) -> str:
    """The secret in ``path`` (surrounding whitespace stripped); refuse an empty file."""
    try:
        with open(path, encoding="utf-8") as f:
            mode = os.fstat(f.fileno()).st_mode
            secret = f.read().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--turn-secret-file {path}: {getattr(exc, 'strerror', None) or exc}") from None
    if not secret:
        raise ConfigError(f"--turn-secret-file {path} is empty")
    if mode & stat.S_IROTH:
        logger.warning("%s is readable by every user: chmod o-r it", path)
    return secret


def _redis_url(value: str | None) -> str | None:
    """Refuse a Redis password given on the command line (the environment is fine)."""
    if value is None or value == os.environ.get("SIGNALING_REDIS"):
        return value
    if urllib.parse.urlsplit(value).password:
        raise ConfigError(
            "--redis: a password on the command line is visible to every user of this machine; "
            "put the URL in SIGNALING_REDIS instead"
        )
    return value


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
    # The TURN secret never comes from argv: SIGNALING_TURN_SECRET or a file.
    parser.add_argument("--turn-secret", nargs="?", action=_RefuseOnCommandLine, help=argparse.SUPPRESS)
    add(parser, "--turn-secret-file", env="SIGNALING_TURN_SECRET_FILE",
        help="file holding coturn's static-auth-secret, to mint time-limited TURN credentials "
        "per join (or the secret itself in SIGNALING_TURN_SECRET; never on the command line)")
    add(parser, "--turn-url", env="SIGNALING_TURN_URLS", action="append", default=[],
        help="TURN URL the minted credentials are for (repeatable)")
    add(parser, "--turn-ttl", env="SIGNALING_TURN_TTL", type=float, default=d.turn_ttl,
        help="lifetime of minted TURN credentials in seconds (at most 86400); a relayed "
        "connection lasts at most this long")
    add(parser, "--max-connections", env="SIGNALING_MAX_CONNECTIONS", type=_optional_count,
        default=d.max_connections, help="open connections this process accepts; more are closed "
        "with 1013 (0: no cap)")
    add(parser, "--max-per-ip", env="SIGNALING_MAX_PER_IP", type=_optional_count,
        default=d.max_per_ip, help="open connections per client address (IPv6: per /64); more "
        "are closed with 1013 (0: no cap; behind a proxy every client has the proxy's address)")
    add(parser, "--max-send-queue", env="SIGNALING_MAX_SEND_QUEUE", type=int,
        default=d.max_send_queue, help="bytes that may wait for one slow reader before its "
        "connection is closed with 4001")
    add(parser, "--metrics", env="SIGNALING_METRICS", default=d.metrics,
        help="where GET /metrics is served: main (the websocket port), off, or HOST:PORT "
        "(a listener of its own)")
    add(parser, "--redis", env="SIGNALING_REDIS", secret=True,
        help="redis:// or rediss:// URL (a password only through the environment): share rooms "
        "with every server process using the same Redis; none: rooms stay in this process")
    add(parser, "--redis-node-ttl", env="SIGNALING_REDIS_NODE_TTL", type=float,
        default=d.redis_node_ttl, help="seconds without a heartbeat after which a dead server "
        "process's peers are reaped (the others get peer-left)")
    add(parser, "--log-level", env="SIGNALING_LOG_LEVEL", default="info",
        choices=["debug", "info", "warning", "error"], help="logging level")
    return parser


#: File descriptors kept for everything but client sockets (listeners, Redis, logs).
FD_RESERVE = 64


def fit_to_fd_limit(config: ServerConfig) -> None:
    """Keep --max-connections under RLIMIT_NOFILE (raising the soft limit first).

    Past the limit accept() fails with EMFILE, and asyncio logs each failure:
    a cap the server enforces itself is cleaner (1013 and one counter).
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
    if soft == resource.RLIM_INFINITY:
        return
    room = max(1, soft - FD_RESERVE)
    if config.max_connections is None or config.max_connections > room:
        logger.warning(
            "--max-connections %s is more than the file descriptor limit allows (%d): using %d; "
            "raise LimitNOFILE (ulimit -n) to hold more",
            config.max_connections or "(no cap)", soft, room,
        )
        config.max_connections = room


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
    try:
        secret = os.environ.get("SIGNALING_TURN_SECRET") or None
        if args.turn_secret_file:
            if secret:
                raise ConfigError("SIGNALING_TURN_SECRET and --turn-secret-file: give one, not both")
            secret = read_secret_file(args.turn_secret_file)
        redis = _redis_url(args.redis)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
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
        turn_secret=secret,
        turn_urls=args.turn_url,
        turn_ttl=args.turn_ttl,
        max_connections=args.max_connections,
        max_per_ip=args.max_per_ip,
        max_send_queue=args.max_send_queue,
        metrics=args.metrics,
        redis=redis,
        redis_node_ttl=args.redis_node_ttl,
    )
    try:
        config.validate()
        fit_to_fd_limit(config)
        asyncio.run(run(config))
    except SignalingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
