"""The room registry: who is in which room, and who receives what. No I/O.

:class:`Hub` takes client messages already parsed by
:mod:`signaling.protocol` and returns the frames to deliver, as
``(session, message)`` pairs. The websockets layer (:mod:`signaling.server`)
only moves those frames; everything decided about rooms is decided here.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .protocol import (
    ClientMessage,
    Error,
    ErrorCode,
    Join,
    Joined,
    Leave,
    PeerJoined,
    PeerLeft,
    Relayed,
    ServerMessage,
    Signal,
)

__all__ = ["Session", "Hub", "new_peer_id"]


def new_peer_id() -> str:
    """A random, unguessable peer id (128 bits, URL-safe)."""
    return secrets.token_urlsafe(16)


@dataclass(eq=False)
class Session:
    """One client connection as the registry sees it."""

    peer_id: str | None = None
    room: str | None = None
    #: Free for the I/O layer (the websocket connection, for instance).
    transport: Any = field(default=None, repr=False)

    @property
    def joined(self) -> bool:
        return self.room is not None


Outgoing = tuple[Session, ServerMessage]


class Hub:
    """Rooms of at most ``room_size`` peers, and the routing of signals between them."""

    def __init__(
        self,
        *,
        room_size: int = 2,
        ice_servers: Callable[[str], list[dict[str, Any]]] = lambda peer_id: [],
        ice_servers_ttl: float | None = None,
        new_id: Callable[[], str] = new_peer_id,
    ) -> None:
        if room_size < 1:
            raise ValueError("room_size must be at least 1")
        self.room_size = room_size
        self._ice_servers = ice_servers
        self._ice_servers_ttl = ice_servers_ttl
        self._new_id = new_id
        self._rooms: dict[str, dict[str, Session]] = {}
        self.relayed = 0

    @property
    def room_count(self) -> int:
        return len(self._rooms)

    def members(self, room: str) -> list[str]:
        return list(self._rooms.get(room, {}))

    def receive(self, session: Session, message: ClientMessage) -> list[Outgoing]:
        """Apply one client message; return the frames to send."""
        if isinstance(message, Join):
            return self._join(session, message.room)
        if isinstance(message, Signal):
            return self._signal(session, message)
        if isinstance(message, Leave):
            return self.disconnect(session)
        raise TypeError(f"not a client message: {message!r}")  # pragma: no cover

    def disconnect(self, session: Session) -> list[Outgoing]:
        """The session left or its connection closed: tell the others."""
        if session.room is None or session.peer_id is None:
            return []
        room = self._rooms.get(session.room, {})
        room.pop(session.peer_id, None)
        if not room:
            # An empty room is forgotten.
            self._rooms.pop(session.room, None)
        left = PeerLeft(session.peer_id)
        session.room = None
        session.peer_id = None
        return [(other, left) for other in room.values()]

    def _join(self, session: Session, name: str) -> list[Outgoing]:
        if session.joined:
            return [(session, Error(ErrorCode.ALREADY_JOINED.value, f"already in room {session.room!r}"))]
        room = self._rooms.get(name, {})
        if len(room) >= self.room_size:
            return [(session, Error(ErrorCode.ROOM_FULL.value, f"room {name!r} is full"))]
        peer_id = self._new_id()
        while peer_id in room:  # pragma: no cover - 128 random bits
            peer_id = self._new_id()
        others = list(room.values())
        room[peer_id] = session
        self._rooms[name] = room
        session.room, session.peer_id = name, peer_id
        joined = Joined(
            room=name,
            peer_id=peer_id,
            peers=tuple(o.peer_id for o in others if o.peer_id),
            ice_servers=tuple(self._ice_servers(peer_id)),
            ice_servers_ttl=self._ice_servers_ttl,
        )
        arrival = PeerJoined(peer_id)
        return [(session, joined)] + [(other, arrival) for other in others]

    def _signal(self, session: Session, message: Signal) -> list[Outgoing]:
        if session.room is None or session.peer_id is None:
            return [(session, Error(ErrorCode.NOT_JOINED.value, "join a room before signaling"))]
        target = self._rooms.get(session.room, {}).get(message.to)
        if target is None or target is session:
            return [
                (session, Error(ErrorCode.UNKNOWN_PEER.value, f"no peer {message.to[:64]!r} in this room"))
            ]
        self.relayed += 1
        return [(target, Relayed(session.peer_id, message.data))]
