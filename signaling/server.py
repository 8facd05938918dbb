"""The signaling server: thin websockets glue around a room backend.

Decisions about rooms live in :mod:`signaling.rooms` (one process) or
:mod:`signaling.cluster` (many processes sharing Redis, driven by
:mod:`signaling.redis_rooms`), and validation in :mod:`signaling.protocol`.
This module accepts connections within the caps (:mod:`signaling.limits`),
reads frames, applies the per-connection limits (rate, join timeout), hands
what the backend delivers to each recipient's bounded
:class:`~signaling.outbox.Outbox`, and answers ``GET /healthz`` and
``GET /metrics`` (unless metrics live elsewhere, :mod:`signaling.metrics`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, Self
from urllib.parse import parse_qs

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed, NegotiationError
from websockets.http11 import Request, Response
from websockets.typing import Origin, Subprotocol

from .config import ServerConfig
from .exceptions import ConfigError, ProtocolError
from .limits import ConnectionLimiter, Refusal, TokenBucket
from .metrics import CONTENT_TYPE, Metrics, MetricsListener
from .outbox import Outbox
from .protocol import (
    JOIN_ACCEPTED_HEADER,
    JOIN_PARAMETER,
    SUBPROTOCOL,
    ClientMessage,
    Error,
    ErrorCode,
    IceServers,
    IceServersRequest,
    ServerMessage,
    parse_client,
)
from .rooms import Hub, Session

__all__ = ["ServerConfig", "SignalingServer"]

logger = logging.getLogger(__name__)

# RFC 6455 section 7.4.1
CLOSE_POLICY = 1008
# RFC 6455 section 7.4.1, registered in the IANA "WebSocket Close Code Number
# Registry": the server is at a connection cap; the client may come back later.
CLOSE_TRY_AGAIN_LATER = 1013
# The same registry: the server restarts (its peers were reaped while it was
# cut off from Redis); reconnect.
CLOSE_SERVICE_RESTART = 1012
# RFC 6455 section 7.4.2 leaves 4000-4999 to applications: the connection read
# too slowly and its delivery queue (--max-send-queue) overflowed.
CLOSE_TOO_SLOW = 4001

class RoomBackend(Protocol):
    """What the server needs from the rooms: one process (:class:`LocalRooms`) or Redis."""

    @property
    def room_count(self) -> int: ...

    @property
    def relayed(self) -> int: ...

    #: False while the rooms are out of reach (joins get ``unavailable``).
    available: bool

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def receive(self, session: Session, message: ClientMessage) -> None: ...

    async def disconnect(self, session: Session) -> None: ...

    def metrics_lines(self) -> list[str]: ...


class LocalRooms:
    """Rooms in this process: :class:`~signaling.rooms.Hub` plus delivery."""

    available = True

    def __init__(self, hub: Hub, deliver: _Deliver) -> None:
        self.hub = hub
        self._deliver = deliver

    @property
    def room_count(self) -> int:
        return self.hub.room_count

    @property
    def relayed(self) -> int:
        return self.hub.relayed

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def receive(self, session: Session, message: ClientMessage) -> None:
        for recipient, frame in self.hub.receive(session, message):
            self._deliver(recipient, frame)

    async def disconnect(self, session: Session) -> None:
        for recipient, frame in self.hub.disconnect(session):
            self._deliver(recipient, frame)

    def metrics_lines(self) -> list[str]:
        return []


class _Deliver(Protocol):
    def __call__(self, session: Session, message: ServerMessage | str) -> None: ...


@dataclass(eq=False)
class _Conn:
    """What the server keeps in :attr:`Session.transport`."""

    ws: ServerConnection
    outbox: Outbox


class SignalingServer:
    """Serve protocol v1. Use as ``async with SignalingServer(config) as server``."""

    def __init__(self, config: ServerConfig | None = None) -> None:
        self.config = config or ServerConfig()
        self.config.validate()
        self.metrics = Metrics()
        self.limiter = ConnectionLimiter(self.config.max_connections, self.config.max_per_ip)
        #: The in-process registry; None when the rooms live in Redis.
        self.hub: Hub | None = None
        self.rooms: RoomBackend
        if self.config.redis:
            from .redis_rooms import RedisRooms  # the redis package is an extra

            self.rooms = RedisRooms(self.config, self.deliver, on_reaped=self._reaped)
        else:
            self.hub = Hub(room_size=self.config.room_size, ice_servers=self.config.ice_servers_for,
                           ice_servers_ttl=self.config.ice_servers_ttl)
            self.rooms = LocalRooms(self.hub, self.deliver)
        self._metrics_listener: MetricsListener | None = None
        self._server: Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

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
                process_response=_process_response,
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
        try:
            await self.rooms.start()
            address = cfg.metrics_address()
            if address is not None:
                self._metrics_listener = MetricsListener(*address, self.render_metrics)
                try:
                    await self._metrics_listener.start()
                except OSError as exc:
                    raise ConfigError(
                        f"cannot serve metrics on {cfg.metrics}: {exc.strerror or exc}"
                    ) from exc
        except BaseException:
            await self.close()
            raise
        logger.info("signaling server listening on %s", self.url)

    @property
    def metrics_port(self) -> int | None:
        """The port of the separate metrics listener, if there is one."""
        return self._metrics_listener.port if self._metrics_listener else None

    async def close(self) -> None:
        """Close every client with 1001 (going away) and stop listening."""
        if self._server is not None:
            self._server.close(close_connections=True)
            await self._server.wait_closed()
        if self._metrics_listener is not None:
            await self._metrics_listener.close()
        await self.rooms.close()
        for task in list(self._tasks):
            task.cancel()

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
            if not self.rooms.available:
                # Take this process out of the load balancer's rotation.
                return connection.respond(503, "rooms unavailable (Redis)\n")
            return connection.respond(200, "ok\n")
        if path == "/metrics" and self.config.metrics == "main":
            body = self.render_metrics().encode()
            headers = Headers([("Content-Type", CONTENT_TYPE), ("Content-Length", str(len(body)))])
            return Response(200, "OK", headers, body)
        return None

    def render_metrics(self) -> str:
        return self.metrics.render(
            rooms=self.rooms.room_count, relayed=self.rooms.relayed, extra=self.rooms.metrics_lines()
        )

    # -- websocket sessions -------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        cfg = self.config
        host = _remote_host(ws)
        refusal = self.limiter.admit(host)
        if refusal is not None:
            # Joined and idle connections count too: the cap is on sockets held.
            self.metrics.refused[refusal.value] += 1
            reason = (
                "server full: try again later"
                if refusal is Refusal.MAX_CONNECTIONS
                else "too many connections from your address"
            )
            logger.info("refusing %s: %s", host, refusal.value)
            await ws.close(CLOSE_TRY_AGAIN_LATER, reason)
            return
        session = Session()
        session.transport = _Conn(ws, Outbox(ws.send, limit=cfg.max_send_queue,
                                             on_overflow=lambda size: self._too_slow(session, size)))
        bucket = TokenBucket(cfg.rate, cfg.burst)
        self.metrics.connections += 1
        self.metrics.connections_total += 1
        timer = self._arm_join_timer(ws)
        over_limit = 0
        try:
            early = _join_in_url(ws.request)
            if early is not None:
                # The join rode in the handshake (docs/protocol.md): one round trip fewer.
                await self._frame(session, early)
                if session.joined and timer is not None:
                    timer.cancel()
                    timer = None
            async for frame in ws:
                if not bucket.allow():
                    over_limit += 1
                    if over_limit > cfg.burst:
                        await ws.close(CLOSE_POLICY, "rate limit exceeded")
                        break
                    self.deliver(session, Error(ErrorCode.RATE_LIMITED.value, "slow down: frame dropped"))
                    continue
                over_limit = 0
                await self._frame(session, frame)
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
            self.limiter.release(host)
            session.transport.outbox.close()
            await self.rooms.disconnect(session)

    async def _frame(self, session: Session, frame: str | bytes) -> None:
        try:
            message = parse_client(frame)
        except ProtocolError as exc:
            self.deliver(session, Error(exc.code, exc.message))
            return
        if isinstance(message, IceServersRequest):
            # Answered here: fresh credentials need no room, nor Redis.
            if session.peer_id is None:
                self.deliver(session, Error(ErrorCode.NOT_JOINED.value, "join a room first"))
            else:
                servers = tuple(self.config.ice_servers_for(session.peer_id))
                self.deliver(session, IceServers(servers, self.config.ice_servers_ttl))
            return
        await self.rooms.receive(session, message)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _arm_join_timer(self, ws: ServerConnection) -> asyncio.TimerHandle | None:
        if self.config.join_timeout is None:
            return None

        def expire() -> None:
            logger.info("closing %s: no join within %ss", ws.remote_address, self.config.join_timeout)
            self._spawn(ws.close(CLOSE_POLICY, "join a room first"))

        return asyncio.get_running_loop().call_later(self.config.join_timeout, expire)

    def deliver(self, session: Session, message: ServerMessage | str) -> None:
        """Queue one frame for ``session``; never waits for its socket."""
        if isinstance(message, Error):
            self.metrics.errors[message.code] += 1
        conn: _Conn | None = session.transport
        if conn is not None:
            conn.outbox.put(message if isinstance(message, str) else message.to_json())

    def _too_slow(self, session: Session, size: int) -> None:
        conn: _Conn = session.transport
        self.metrics.slow_closed += 1
        logger.info("closing %s: %d bytes waiting, it reads too slowly", conn.ws.remote_address, size)

        async def close() -> None:
            # The others hear peer-left now, not after the close handshake times out.
            await self.rooms.disconnect(session)
            await conn.ws.close(CLOSE_TOO_SLOW, "too slow: delivery queue full")

        self._spawn(close())

    def _reaped(self, session: Session) -> None:
        """Redis-backed rooms forgot ``session`` while this process was cut off: close it."""
        conn: _Conn | None = session.transport
        if conn is not None:
            conn.outbox.close()
            self._spawn(conn.ws.close(CLOSE_SERVICE_RESTART, "server lost its rooms: reconnect"))


def _remote_host(ws: ServerConnection) -> str:
    address = ws.remote_address
    if isinstance(address, tuple) and address:
        return str(address[0])
    return str(address)


def _join_in_url(request: Request | None) -> str | None:
    """The join frame a client put in the handshake's URL (``?join=ROOM``), if any."""
    if request is None or "?" not in request.path:
        return None
    values = parse_qs(request.path.partition("?")[2]).get(JOIN_PARAMETER)
    return json.dumps({"type": "join", "room": values[0]}) if values else None


def _process_response(connection: ServerConnection, request: Request, response: Response) -> Response:
    if response.status_code == 101 and _join_in_url(request) is not None:
        # Tells the client not to send its join again (an older server would not say this).
        response.headers[JOIN_ACCEPTED_HEADER] = "1"
    return response


def _select_subprotocol(
    connection: ServerConnection, offered: Sequence[Subprotocol]
) -> Subprotocol | None:
    # A client that asks for no subprotocol speaks v1.
    if not offered or SUBPROTOCOL in offered:
        return Subprotocol(SUBPROTOCOL) if offered else None
    raise NegotiationError(f"unsupported protocol {', '.join(offered)}; this server speaks {SUBPROTOCOL}")
