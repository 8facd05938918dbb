"""The peer's conversation with the signaling server: join, one sender, one reader, leave.

It knows rooms and peers, not ICE: what arrives from the other peer is
handed to ``on_signal`` (the :class:`icepeer.session.Negotiation` reads it),
and :meth:`SignalingLink.send` queues what goes to it. Messages are sent in
order by a single task, so a slow server never reorders an offer and its
candidates. Every failure is translated into :class:`SignalingFailed` here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Callable
from typing import Any

from signaling.client import ServerRefused, SignalingClient, SignalingUnavailable
from signaling.protocol import Error, IceServers, PeerJoined, PeerLeft, Relayed

from .errors import SignalingFailed

__all__ = ["SignalingLink"]

logger = logging.getLogger(__name__)


def _ignore(*args: object) -> None:
    pass


class SignalingLink:
    """One membership of one room, talking to the first other peer there."""

    def __init__(self, url: str, room: str, *, timeout: float | None, ssl_context: ssl.SSLContext | None) -> None:
        self.url = url
        self.room = room
        self._timeout = timeout
        self._ssl = ssl_context
        self._client: SignalingClient | None = None
        self._outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.alive = False
        self.peer_id: str | None = None
        self.remote_peer_id: str | None = None
        self.ice_servers: list[dict[str, Any]] = []
        #: Seconds the credentials in ``ice_servers`` stay valid, if the server says they expire.
        self.ice_servers_ttl: float | None = None
        #: The other peers in the room when we joined (the first one is ours).
        self.peers: list[str] = []
        # Set by the owner.
        self.on_peer_joined: Callable[[str], None] = _ignore
        self.on_signal: Callable[[Any], None] = _ignore
        self.on_peer_left: Callable[[], None] = _ignore
        self.on_lost: Callable[[str], None] = _ignore
        #: Fresh ``ice_servers`` arrived (the answer to :meth:`request_ice_servers`).
        self.on_ice_servers: Callable[[], None] = _ignore

    async def join(self) -> None:
        """Join the room; raise :class:`SignalingFailed` if the server is unreachable or refuses."""
        try:
            self._client = await SignalingClient.connect(
                self.url, self.room, timeout=self._timeout or None, ssl_context=self._ssl
            )
        except ServerRefused as exc:
            raise SignalingFailed(str(exc), exc.code) from exc
        except SignalingUnavailable as exc:
            raise SignalingFailed(str(exc)) from exc
        self.alive = True
        self.peer_id = self._client.peer_id
        self.ice_servers = self._client.ice_servers
        self.ice_servers_ttl = self._client.ice_servers_ttl
        self.peers = list(self._client.peers)

    def send(self, data: dict[str, Any]) -> None:
        """Queue ``data`` for the other peer (dropped if there is none yet)."""
        self._outbox.put_nowait(data)

    async def flush(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for everything queued to be sent."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._outbox.join()

    async def sender(self) -> None:
        """Run forever: send what :meth:`send` queued, in order."""
        assert self._client is not None
        while True:
            data = await self._outbox.get()
            try:
                if self.remote_peer_id is not None:
                    await self._client.signal(self.remote_peer_id, data)
            except SignalingUnavailable as exc:
                logger.info("could not signal the peer: %s", exc)
            finally:
                self._outbox.task_done()

    async def request_ice_servers(self) -> None:
        """Ask the server for fresh ``ice_servers``; ``on_ice_servers`` is called when they come."""
        assert self._client is not None
        try:
            await self._client.request_ice_servers()
        except SignalingUnavailable as exc:
            logger.info("could not ask for fresh ICE servers: %s", exc)

    async def reader(self) -> None:
        """Run until the server goes away: hand each event to its callback."""
        assert self._client is not None
        try:
            while True:
                event = await self._client.recv()
                if isinstance(event, PeerJoined) and self.remote_peer_id is None:
                    self.on_peer_joined(event.peer_id)
                elif isinstance(event, Relayed) and event.sender == self.remote_peer_id:
                    self.on_signal(event.data)
                elif isinstance(event, PeerLeft) and event.peer_id == self.remote_peer_id:
                    self.on_peer_left()
                elif isinstance(event, IceServers):
                    self.ice_servers, self.ice_servers_ttl = list(event.ice_servers), event.ice_servers_ttl
                    self.on_ice_servers()
                elif isinstance(event, Error):
                    logger.warning("signaling server: %s (%s)", event.message, event.code)
        except SignalingUnavailable as exc:
            self.alive = False
            self.on_lost(str(exc))

    async def leave(self) -> None:
        self.alive = False
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.leave()
