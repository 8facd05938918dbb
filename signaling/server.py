"""The signaling server: thin websockets glue around :class:`signaling.rooms.Hub`.

Decisions about rooms live in :mod:`signaling.rooms` and validation in
:mod:`signaling.protocol`; this module reads frames, applies the
per-connection limits (rate, join timeout), delivers what the hub returns,
and answers ``GET /healthz`` and ``GET /metrics`` on the same port.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Self

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed, NegotiationError
from websockets.http11 import Request, Response
from websockets.typing import Origin, Subprotocol

from icecommon.urls import BadUrl, IceServerUrl, parse_ice_url

from .exceptions import ConfigError, ProtocolError
from .limits import TokenBucket
from .protocol import SUBPROTOCOL, Error, ErrorCode, parse_client
from .rooms import Hub, Outgoing, Session
from .turn_rest import mint

__all__ = ["ServerConfig", "SignalingServer"]

logger = logging.getLogger(__name__)

# RFC 6455 section 7.4.1
CLOSE_POLICY = 1008


def _parse(url: str, option: str) -> IceServerUrl:
    try:
        return parse_ice_url(url)
    except BadUrl as exc:
        raise ConfigError(f"{option}: {exc}") from None


@dataclass
class ServerConfig:
    """Every option of the server; ``python -m signaling --help`` documents them."""

    host: str = "127.0.0.1"
    port: int = 8765
    room_size: int = 2
    max_message_size: int = 64 * 1024
    #: Frames per second a connection may send on average, and its burst.
    rate: float = 50.0
    burst: int = 200
    #: Seconds a connection may stay without joining a room (None: forever).
    join_timeout: float | None = 30.0
    ping_interval: float | None = 20.0
    ping_timeout: float | None = 20.0
    allowed_origins: Sequence[str] = ()
    certfile: str | None = None
    keyfile: str | None = None
    #: Static ICE server URLs handed to every peer (no credentials allowed).
    ice_servers: Sequence[str] = ()
    #: coturn REST shared secret; with turn_urls, credentials are minted per join.
    turn_secret: str | None = None
    turn_urls: Sequence[str] = ()
    turn_ttl: float = 86400.0

    def validate(self) -> None:
        """Raise :class:`ConfigError` for options that cannot work."""
        if not 0 <= self.port < 65536:
            raise ConfigError(f"port {self.port} out of range")
        if self.room_size < 1:
            raise ConfigError("--room-size must be at least 1")
        if self.max_message_size < 1024:
            raise ConfigError("--max-message-size must be at least 1024 bytes")
        if self.rate <= 0 or self.burst < 1:
            raise ConfigError("--rate must be positive and --burst at least 1")
        for url in self.ice_servers:
            if _parse(url, "--ice-server").username is not None:
                raise ConfigError(
                    f"--ice-server {url!r} carries a password: long-lived TURN passwords must "
                    "not reach clients; use --turn-secret with --turn-url instead"
                )
        for url in self.turn_urls:
            parsed = _parse(url, "--turn-url")
            if not parsed.is_turn or parsed.username is not None:
                raise ConfigError(f"--turn-url {url!r} must be a turn: or turns: URL without credentials")
        if bool(self.turn_secret) != bool(self.turn_urls):
            raise ConfigError("--turn-secret and --turn-url go together")
        if self.turn_ttl <= 0:
            raise ConfigError("--turn-ttl must be positive")
        if bool(self.certfile) != bool(self.keyfile):
            raise ConfigError("--certfile and --keyfile go together")

    def ice_servers_for(self, peer_id: str) -> list[dict[str, Any]]:
        """The RTCIceServer list for one joining peer."""
        servers: list[dict[str, Any]] = [{"urls": list(self.ice_servers)}] if self.ice_servers else []
        if self.turn_secret and self.turn_urls:
            creds = mint(self.turn_secret, peer_id, self.turn_ttl)
            servers.append(
                {"urls": list(self.turn_urls), "username": creds.username, "credential": creds.password}
            )
        return servers


@dataclass
class _Metrics:
    connections: int = 0
    connections_total: int = 0
    errors: collections.Counter[str] = field(default_factory=collections.Counter)

    def render(self, hub: Hub) -> str:
        lines = [
            "# HELP icepeer_signaling_connections Open websocket connections.",
            "# TYPE icepeer_signaling_connections gauge",
            f"icepeer_signaling_connections {self.connections}",
            "# HELP icepeer_signaling_connections_total Websocket connections accepted.",
            "# TYPE icepeer_signaling_connections_total counter",
            f"icepeer_signaling_connections_total {self.connections_total}",
            "# HELP icepeer_signaling_rooms Rooms with at least one peer.",
            "# TYPE icepeer_signaling_rooms gauge",
            f"icepeer_signaling_rooms {hub.room_count}",
            "# HELP icepeer_signaling_messages_relayed_total Signal frames relayed to a peer.",
            "# TYPE icepeer_signaling_messages_relayed_total counter",
            f"icepeer_signaling_messages_relayed_total {hub.relayed}",
            "# HELP icepeer_signaling_errors_total Error frames sent, by code.",
            "# TYPE icepeer_signaling_errors_total counter",
        ]
        for code in ErrorCode:
            lines.append(f'icepeer_signaling_errors_total{{code="{code.value}"}} {self.errors[code.value]}')
        return "\n".join(lines) + "\n"


class SignalingServer:
    """Serve protocol v1. Use as ``async with SignalingServer(config) as server``."""

    def __init__(self, config: ServerConfig | None = None) -> None:
        self.config = config or ServerConfig()
        self.config.validate()
        self.hub = Hub(room_size=self.config.room_size, ice_servers=self.config.ice_servers_for)
        self.metrics = _Metrics()
        self._server: Server | None = None
        self._closers: set[asyncio.Future[None]] = set()

    @property
    def port(self) -> int:
        assert self._server is not None, "server not started"
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    @property
    def url(self) -> str:
        scheme = "wss" if self.config.certfile else "ws"
        host = self.config.host
        host = f"[{host}]" if ":" in host else host
        return f"{scheme}://{host}:{self.port}"

    async def start(self) -> None:
        cfg = self.config
        tls = None
        if cfg.certfile:
            tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            try:
                tls.load_cert_chain(cfg.certfile, cfg.keyfile)
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError(f"cannot load TLS certificate {cfg.certfile}: {exc}") from exc
        origins: list[Origin | None] | None = None
        if cfg.allowed_origins:
            # Browsers always send Origin; other clients send none and are allowed.
            origins = [Origin(o) for o in cfg.allowed_origins] + [None]
        try:
            self._server = await serve(
                self._handle,
                cfg.host,
                cfg.port,
                subprotocols=[Subprotocol(SUBPROTOCOL)],
                select_subprotocol=_select_subprotocol,
                process_request=self._process_request,
                compression=None,  # per-message deflate costs ~64 KiB per connection
                origins=origins,
                ping_interval=cfg.ping_interval,
                ping_timeout=cfg.ping_timeout,
                close_timeout=1.0,
                max_size=cfg.max_message_size,
                max_queue=4,
                ssl=tls,
            )
        except OSError as exc:
            raise ConfigError(f"cannot listen on {cfg.host}:{cfg.port}: {exc.strerror or exc}") from exc
        logger.info("signaling server listening on %s", self.url)

    async def close(self) -> None:
        """Close every client with 1001 (going away) and stop listening."""
        if self._server is not None:
            self._server.close(close_connections=True)
            await self._server.wait_closed()

    async def serve_forever(self) -> None:
        assert self._server is not None
        await self._server.serve_forever()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- HTTP on the same port -------------------------------------------

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path = request.path.partition("?")[0]
        if path == "/healthz":
            return connection.respond(200, "ok\n")
        if path == "/metrics":
            body = self.metrics.render(self.hub).encode()
            headers = Headers(
                [
                    ("Content-Type", "text/plain; version=0.0.4; charset=utf-8"),
                    ("Content-Length", str(len(body))),
                ]
            )
            return Response(200, "OK", headers, body)
        return None

    # -- websocket sessions -------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        cfg = self.config
        session = Session(transport=ws)
        bucket = TokenBucket(cfg.rate, cfg.burst)
        self.metrics.connections += 1
        self.metrics.connections_total += 1
        timer = self._arm_join_timer(ws)
        over_limit = 0
        try:
            async for frame in ws:
                if not bucket.allow():
                    over_limit += 1
                    if over_limit > cfg.burst:
                        await ws.close(CLOSE_POLICY, "rate limit exceeded")
                        break
                    await self._deliver([(session, Error(ErrorCode.RATE_LIMITED.value, "slow down: frame dropped"))])
                    continue
                over_limit = 0
                try:
                    message = parse_client(frame)
                except ProtocolError as exc:
                    await self._deliver([(session, Error(exc.code, exc.message))])
                    continue
                await self._deliver(self.hub.receive(session, message))
                if session.joined and timer is not None:
                    timer.cancel()
                    timer = None
                elif not session.joined and timer is None:
                    timer = self._arm_join_timer(ws)
        except ConnectionClosed:
            pass
        finally:
            if timer is not None:
                timer.cancel()
            self.metrics.connections -= 1
            await self._deliver(self.hub.disconnect(session))

    def _arm_join_timer(self, ws: ServerConnection) -> asyncio.TimerHandle | None:
        if self.config.join_timeout is None:
            return None

        def expire() -> None:
            logger.info("closing %s: no join within %ss", ws.remote_address, self.config.join_timeout)
            task = asyncio.ensure_future(ws.close(CLOSE_POLICY, "join a room first"))
            self._closers.add(task)
            task.add_done_callback(self._closers.discard)

        return asyncio.get_running_loop().call_later(self.config.join_timeout, expire)

    async def _deliver(self, outgoing: list[Outgoing]) -> None:
        for session, message in outgoing:
            if isinstance(message, Error):
                self.metrics.errors[message.code] += 1
            ws: ServerConnection = session.transport
            # A recipient that is gone: its own handler cleans up after it.
            with contextlib.suppress(ConnectionClosed):
                await ws.send(message.to_json())


def _select_subprotocol(
    connection: ServerConnection, offered: Sequence[Subprotocol]
) -> Subprotocol | None:
    # A client that asks for no subprotocol speaks v1.
    if not offered or SUBPROTOCOL in offered:
        return Subprotocol(SUBPROTOCOL) if offered else None
    raise NegotiationError(f"unsupported protocol {', '.join(offered)}; this server speaks {SUBPROTOCOL}")
