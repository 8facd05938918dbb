"""A small asyncio client for protocol v1, used by the peer.

::

    async with join("ws://127.0.0.1:8765", "room") as client:
        print(client.peer_id, client.peers, client.ice_servers)
        await client.signal(other_id, {"any": "json"})
        async for event in client:      # PeerJoined | PeerLeft | Relayed | IceServers | Error
            ...

A lost TCP SYN costs the kernel's initial retransmission timeout, 1 s
(RFC 6298 section 2.1; Linux ``TCP_TIMEOUT_INIT``), then 3 s: on a lossy
link that was most of a slow connection's time. So the TCP connection is
raced the way Happy Eyeballs races addresses (RFC 8305 section 5): a new
attempt starts every ``attempt_delay`` seconds (250 ms, the RFC's
recommended Connection Attempt Delay) while none has connected, or at once
when one fails, up to :data:`ATTEMPTS`; the first to connect carries the
WebSocket handshake and the join, and the others are closed. Only the TCP
connection is raced: a room is joined once. With a proxy configured for
the URL, websockets connects through it as before, unraced.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from typing import Any, Self, TypeVar
from urllib.parse import urlencode, urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
from websockets.proxy import get_proxy
from websockets.typing import Subprotocol
from websockets.uri import parse_uri

from .exceptions import ProtocolError, ServerRefused, SignalingUnavailable
from .protocol import (
    JOIN_ACCEPTED_HEADER,
    JOIN_PARAMETER,
    SUBPROTOCOL,
    Error,
    IceServers,
    IceServersRequest,
    Join,
    Joined,
    Leave,
    PeerJoined,
    PeerLeft,
    Relayed,
    ServerMessage,
    Signal,
    parse_server,
)

# The errors the client raises belong to its API (icepeer imports them from here).
__all__ = [
    "ATTEMPT_DELAY",
    "SignalingClient",
    "Event",
    "join",
    "race",
    "ServerRefused",
    "SignalingUnavailable",
]

logger = logging.getLogger(__name__)

Event = PeerJoined | PeerLeft | Relayed | IceServers | Error
T = TypeVar("T")

#: Seconds before another TCP connection attempt starts (RFC 8305 section 5).
ATTEMPT_DELAY = 0.25
#: TCP connection attempts at most, each ``attempt_delay`` after the last.
ATTEMPTS = 3


async def race(attempt: Callable[[int], Awaitable[T]], *, delay: float, attempts: int,
               discard: Callable[[T], None]) -> T:
    """The first of ``attempt(0)``, ``attempt(1)``, ... to succeed, started ``delay`` s apart.

    The next attempt starts early when every running one has failed. Losers
    are cancelled, and any that succeeded anyway are passed to ``discard``.
    Raises the last attempt's error when all of them fail.
    """
    pending: set[asyncio.Future[T]] = set()
    errors: list[BaseException] = []
    winner: list[T] = []
    started = 0
    try:
        while not winner and (pending or started < attempts):
            if started < attempts:
                pending.add(asyncio.ensure_future(attempt(started)))
                started += 1
            wait = delay if started < attempts else None
            done, _ = await asyncio.wait(pending, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                pending.discard(task)
                error = task.exception()
                if error is not None:
                    errors.append(error)
                elif winner:
                    discard(task.result())
                else:
                    winner.append(task.result())
    finally:
        for task in pending:
            task.cancel()
        for outcome in await asyncio.gather(*pending, return_exceptions=True):
            if not isinstance(outcome, BaseException):
                discard(outcome)
    if winner:
        return winner[0]
    raise errors[-1]


async def _open_socket(url: str, attempt_delay: float | None) -> socket.socket | None:
    """A TCP socket connected to ``url``'s server, raced; ``None`` when a proxy is configured."""
    uri = parse_uri(url)
    if get_proxy(uri) is not None:
        return None
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(uri.host, uri.port, type=socket.SOCK_STREAM)

    async def attempt(n: int) -> socket.socket:
        family, kind, proto, _, address = infos[n % len(infos)]
        sock = socket.socket(family, kind, proto)
        try:
            sock.setblocking(False)
            await loop.sock_connect(sock, address)
        except BaseException:
            sock.close()
            raise
        if n:
            logger.info("TCP connection attempt %d to %s won", n + 1, url)
        return sock

    attempts = ATTEMPTS if attempt_delay is not None else 1
    return await race(attempt, delay=attempt_delay or 0.0, attempts=attempts,
                      discard=lambda sock: sock.close())


def _with_join(url: str, room: str) -> str:
    """``url`` with the join in its query (docs/protocol.md: joining in the handshake)."""
    parts = urlsplit(url)
    query = "&".join(q for q in (parts.query, urlencode({JOIN_PARAMETER: room})) if q)
    return urlunsplit(parts._replace(path=parts.path or "/", query=query))


async def _open(url: str, ssl_context: ssl.SSLContext | None,
                attempt_delay: float | None) -> ClientConnection:
    """The WebSocket connection, over the TCP connection that won the race."""
    sock = await _open_socket(url, attempt_delay)
    try:
        return await connect(
            url,
            subprotocols=[Subprotocol(SUBPROTOCOL)],
            compression=None,
            open_timeout=None,
            ssl=ssl_context if url.startswith("wss:") else None,
            max_size=1 << 20,
            sock=sock,
        )
    except BaseException:
        if sock is not None:
            sock.close()
        raise


class SignalingClient:
    """One membership of one room. Create it with :meth:`join`."""

    def __init__(self, ws: ClientConnection, joined: Joined) -> None:
        self._ws = ws
        self.room = joined.room
        self.peer_id = joined.peer_id
        self.peers: list[str] = list(joined.peers)
        self.ice_servers: list[dict[str, Any]] = list(joined.ice_servers)
        #: Seconds ``ice_servers``' credentials stay valid, if they expire (then see :meth:`request_ice_servers`).
        self.ice_servers_ttl: float | None = joined.ice_servers_ttl

    @classmethod
    async def connect(
        cls,
        url: str,
        room: str,
        *,
        timeout: float | None = 10.0,
        ssl_context: ssl.SSLContext | None = None,
        attempt_delay: float | None = ATTEMPT_DELAY,
    ) -> SignalingClient:
        """Connect to ``url`` and join ``room``.

        ``attempt_delay``: seconds before racing another TCP connection
        attempt (see the module's docstring); ``None``: one attempt only.
        Raises :class:`SignalingUnavailable` if the server cannot be reached
        and :class:`ServerRefused` if it refuses the join (``room-full``).
        """
        try:
            async with asyncio.timeout(timeout):
                ws = await _open(_with_join(url, room), ssl_context, attempt_delay)
        except TimeoutError:
            raise SignalingUnavailable(f"signaling server {url} did not answer within {timeout}s") from None
        except InvalidURI as exc:
            raise SignalingUnavailable(f"bad signaling URL {url!r}: {exc}") from None
        except (OSError, InvalidHandshake) as exc:
            raise SignalingUnavailable(f"cannot reach signaling server {url}: {exc}") from exc
        try:
            if ws.response is None or ws.response.headers.get(JOIN_ACCEPTED_HEADER) != "1":
                await ws.send(Join(room).to_json())  # a server that did not take the join from the URL
            async with asyncio.timeout(timeout):
                first = parse_server(await ws.recv())
        except BaseException as exc:
            await ws.close()
            if isinstance(exc, ConnectionClosed):
                raise SignalingUnavailable(f"signaling server closed the connection: {exc}") from None
            if isinstance(exc, TimeoutError):
                raise SignalingUnavailable(f"no answer to join from {url} within {timeout}s") from None
            if isinstance(exc, ProtocolError):
                raise SignalingUnavailable(f"signaling server sent a bad frame: {exc}") from None
            raise
        if isinstance(first, Error):
            await ws.close()
            raise ServerRefused(first.code, first.message)
        if not isinstance(first, Joined):
            await ws.close()
            raise SignalingUnavailable(f"expected 'joined' from the server, got {first!r}")
        logger.debug("joined room %s as %s with peers %s", first.room, first.peer_id, first.peers)
        return cls(ws, first)

    async def signal(self, to: str, data: Any) -> None:
        """Send ``data`` (any JSON value) to peer ``to`` through the server."""
        try:
            await self._ws.send(Signal(to, data).to_json())
        except ConnectionClosed as exc:
            raise SignalingUnavailable(f"signaling connection lost: {exc}") from None

    async def request_ice_servers(self) -> None:
        """Ask for fresh ``ice_servers`` (new TURN credentials): an :class:`IceServers` event brings them."""
        try:
            await self._ws.send(IceServersRequest().to_json())
        except ConnectionClosed as exc:
            raise SignalingUnavailable(f"signaling connection lost: {exc}") from None

    async def recv(self) -> Event:
        """The next event; raises :class:`SignalingUnavailable` once the connection is closed."""
        while True:
            try:
                frame = await self._ws.recv()
            except ConnectionClosed as exc:
                raise SignalingUnavailable(f"signaling connection closed: {exc}") from None
            try:
                message: ServerMessage = parse_server(frame)
            except ProtocolError as exc:
                logger.warning("ignoring a bad frame from the signaling server: %s", exc)
                continue
            if isinstance(message, PeerJoined):
                self.peers.append(message.peer_id)
            elif isinstance(message, PeerLeft) and message.peer_id in self.peers:
                self.peers.remove(message.peer_id)
            elif isinstance(message, IceServers):
                self.ice_servers, self.ice_servers_ttl = list(message.ice_servers), message.ice_servers_ttl
            if isinstance(message, Joined):
                continue
            return message

    async def __aiter__(self) -> AsyncIterator[Event]:
        while True:
            try:
                yield await self.recv()
            except SignalingUnavailable:
                return

    async def leave(self) -> None:
        """Leave the room (the others get ``peer-left``) and close."""
        with contextlib.suppress(ConnectionClosed):
            await self._ws.send(Leave().to_json())
        await self._ws.close()

    close = leave

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.leave()


class join:
    """``await join(url, room)`` or ``async with join(url, room) as client``."""

    def __init__(self, url: str, room: str, **kwargs: Any) -> None:
        self._args = (url, room)
        self._kwargs = kwargs
        self._client: SignalingClient | None = None

    def __await__(self) -> Generator[Any, None, SignalingClient]:
        return SignalingClient.connect(*self._args, **self._kwargs).__await__()

    async def __aenter__(self) -> SignalingClient:
        self._client = await self
        return self._client

    async def __aexit__(self, *exc: object) -> None:
        if self._client is not None:
            await self._client.leave()
