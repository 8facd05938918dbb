"""A small asyncio client for protocol v1, used by the peer.

::

    async with join("ws://127.0.0.1:8765", "room") as client:
        print(client.peer_id, client.peers, client.ice_servers)
        await client.signal(other_id, {"any": "json"})
        async for event in client:      # PeerJoined | PeerLeft | Relayed | Error
            ...
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import AsyncIterator, Generator
from typing import Any, Self

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
from websockets.typing import Subprotocol

from .exceptions import ProtocolError, ServerRefused, SignalingUnavailable
from .protocol import (
    SUBPROTOCOL,
    Error,
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
__all__ = ["SignalingClient", "Event", "join", "ServerRefused", "SignalingUnavailable"]

logger = logging.getLogger(__name__)

Event = PeerJoined | PeerLeft | Relayed | Error


class SignalingClient:
    """One membership of one room. Create it with :meth:`join`."""

    def __init__(self, ws: ClientConnection, joined: Joined) -> None:
        self._ws = ws
        self.room = joined.room
        self.peer_id = joined.peer_id
        self.peers: list[str] = list(joined.peers)
        self.ice_servers: list[dict[str, Any]] = list(joined.ice_servers)

    @classmethod
    async def connect(
        cls,
        url: str,
        room: str,
        *,
        timeout: float | None = 10.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> SignalingClient:
        """Connect to ``url`` and join ``room``.

        Raises :class:`SignalingUnavailable` if the server cannot be reached
        and :class:`ServerRefused` if it refuses the join (``room-full``).
        """
        try:
            async with asyncio.timeout(timeout):
                ws = await connect(
                    url,
                    subprotocols=[Subprotocol(SUBPROTOCOL)],
                    compression=None,
                    open_timeout=None,
                    ssl=ssl_context if url.startswith("wss:") else None,
                    max_size=1 << 20,
                )
        except TimeoutError:
            raise SignalingUnavailable(f"signaling server {url} did not answer within {timeout}s") from None
        except InvalidURI as exc:
            raise SignalingUnavailable(f"bad signaling URL {url!r}: {exc}") from None
        except (OSError, InvalidHandshake) as exc:
            raise SignalingUnavailable(f"cannot reach signaling server {url}: {exc}") from exc
        try:
            await ws.send(Join(room).to_json())
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
