"""Rooms shared by many server processes: one process's decisions, with no I/O.

With ``--redis``, every server process (a *node*, with a random id) keeps
its own connections and Redis keeps who is in which room
(:mod:`signaling.redis_rooms` runs the atomic scripts and moves the bytes).
This module decides what each event means for the peers of *this* node:

- which frames go to local connections, as ``(session, message)`` pairs;
- which *envelopes* go to other nodes, as ``(node id, envelope)`` pairs, each
  node reading its own channel.

An envelope is one line of text (JSON never holds a raw newline or tab):

==========================  =========================================
``S<TAB>to<TAB>frame``      deliver ``frame`` (a relayed ``signal``) as is
``J<TAB>to<TAB>peer<TAB>node``  ``peer-joined``, and the node the newcomer is on
``L<TAB>to<TAB>peer``       ``peer-left``
==========================  =========================================

Order per sender holds because a sender's node sends everything, frames and
membership news alike, through one ordered publisher, and each recipient
has one queue. The node caches the membership of every room one of its
peers is in (seeded by the join script's answer, kept up to date by the
envelopes), so relaying a ``signal`` costs no Redis round trip.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .protocol import (
    Error,
    ErrorCode,
    Joined,
    PeerJoined,
    PeerLeft,
    Relayed,
    ServerMessage,
    Signal,
)
from .rooms import Session, new_peer_id

__all__ = ["Effects", "Departure", "ClusterRooms", "UNAVAILABLE_MESSAGE"]

UNAVAILABLE_MESSAGE = "rooms are unreachable right now (the server lost its Redis); try again shortly"

Delivery = tuple[Session, ServerMessage | str]


@dataclass
class Effects:
    """What one event asks the I/O layer to do."""

    #: Frames for connections of this node.
    local: list[Delivery] = field(default_factory=list)
    #: Envelopes for other nodes: ``(node id, envelope)``.
    remote: list[tuple[str, str]] = field(default_factory=list)

    def extend(self, other: Effects) -> None:
        self.local += other.local
        self.remote += other.remote


@dataclass(frozen=True)
class Departure:
    """A local peer left ``room``; ``others`` is the room as this node knew it."""

    room: str
    peer_id: str
    others: dict[str, str]


class ClusterRooms:
    """The state one node keeps: its connections and the rooms they are in."""

    def __init__(
        self,
        node_id: str,
        *,
        room_size: int = 2,
        ice_servers: Callable[[str], list[dict[str, Any]]] = lambda peer_id: [],
        ice_servers_ttl: float | None = None,
        new_id: Callable[[], str] = new_peer_id,
    ) -> None:
        if room_size < 1:
            raise ValueError("room_size must be at least 1")
        self.node_id = node_id
        self.room_size = room_size
        self._ice_servers = ice_servers
        self._ice_servers_ttl = ice_servers_ttl
        self._new_id = new_id
        #: Joined peers of this node, by peer id.
        self.local: dict[str, Session] = {}
        #: Peers whose join script is running: envelopes for them wait here.
        self._pending: dict[str, list[str]] = {}
        #: Every room with a local peer: ``{peer id: node id}`` of all its members.
        self.rooms: dict[str, dict[str, str]] = {}
        #: A counter per room, bumped on every change to its view (see reconcile).
        self._versions: dict[str, int] = {}
        self.relayed = 0
        #: Envelopes for peers that are not (or no longer) here.
        self.stray = 0

    @property
    def room_count(self) -> int:
        return len(self.rooms)

    # -- joining ------------------------------------------------------------

    def begin_join(self, session: Session) -> str | Error:
        """A new peer id to claim a seat with, or the error to answer."""
        if session.joined:
            return Error(ErrorCode.ALREADY_JOINED.value, f"already in room {session.room!r}")
        peer_id = self._new_id()
        self._pending[peer_id] = []
        return peer_id

    def finish_join(
        self, session: Session, room: str, peer_id: str, members: dict[str, str] | None
    ) -> Effects:
        """The join script answered: ``members`` were there before, or None if the room was full."""
        buffered = self._pending.pop(peer_id, [])
        if members is None:
            return Effects(local=[(session, Error(ErrorCode.ROOM_FULL.value, f"room {room!r} is full"))])
        members.pop(peer_id, None)
        session.room, session.peer_id = room, peer_id
        self.local[peer_id] = session
        view = self.rooms.setdefault(room, {})
        view.update(members)
        view[peer_id] = self.node_id
        self._bump(room)
        joined = Joined(
            room=room,
            peer_id=peer_id,
            peers=tuple(members),
            ice_servers=tuple(self._ice_servers(peer_id)),
            ice_servers_ttl=self._ice_servers_ttl,
        )
        effects = Effects(local=[(session, joined)])
        for other, node in members.items():
            if node == self.node_id:
                target = self.local.get(other)
                if target is not None:
                    effects.local.append((target, PeerJoined(peer_id)))
            else:
                effects.remote.append((node, f"J\t{other}\t{peer_id}\t{self.node_id}"))
        # News that arrived while the script ran comes after `joined`.
        for envelope in buffered:
            effects.extend(self.receive(envelope))
        return effects

    def abort_join(self, session: Session, peer_id: str, message: str = UNAVAILABLE_MESSAGE) -> Effects:
        """The join script could not run (Redis is unreachable)."""
        self._pending.pop(peer_id, None)
        return Effects(local=[(session, Error(ErrorCode.UNAVAILABLE.value, message))])

    # -- leaving ------------------------------------------------------------

    def begin_leave(self, session: Session) -> Departure | None:
        """Forget a local peer at once; the script and the news follow."""
        if session.room is None or session.peer_id is None:
            return None
        room, peer_id = session.room, session.peer_id
        session.room = session.peer_id = None
        self.local.pop(peer_id, None)
        view = self.rooms.get(room, {})
        view.pop(peer_id, None)
        self._bump(room)
        others = dict(view)
        if not any(node == self.node_id for node in view.values()):
            self.rooms.pop(room, None)
            self._versions.pop(room, None)
        return Departure(room, peer_id, others)

    def leave_locally(self, departure: Departure) -> Effects:
        """``peer-left`` for the departed peer's room mates on this node."""
        effects = Effects()
        for other, node in departure.others.items():
            if node == self.node_id:
                target = self.local.get(other)
                if target is not None and target.room == departure.room:
                    effects.local.append((target, PeerLeft(departure.peer_id)))
        return effects

    def leave_remotely(self, departure: Departure, remaining: dict[str, str] | None) -> Effects:
        """``peer-left`` for room mates on other nodes: those Redis still lists
        (``remaining``, None if unknown) and those this node knew of."""
        targets = dict(departure.others)
        targets.update(remaining or {})
        return Effects(
            remote=[
                (node, f"L\t{other}\t{departure.peer_id}")
                for other, node in targets.items()
                if node != self.node_id
            ]
        )

    def reaped(self, room: str, peer_id: str, remaining: dict[str, str]) -> Effects:
        """A dead node's peer was removed from ``room`` (by this node's reap script)."""
        effects = Effects()
        for other, node in remaining.items():
            envelope = f"L\t{other}\t{peer_id}"
            if node == self.node_id:
                effects.extend(self.receive(envelope))
            else:
                effects.remote.append((node, envelope))
        return effects

    # -- signals ------------------------------------------------------------

    def signal(self, session: Session, message: Signal, *, remote_ok: bool = True) -> Effects:
        """Route one ``signal``; ``remote_ok`` False while Redis is unreachable."""
        if session.room is None or session.peer_id is None:
            return Effects(local=[(session, Error(ErrorCode.NOT_JOINED.value, "join a room before signaling"))])
        node = self.rooms.get(session.room, {}).get(message.to)
        if node is None or message.to == session.peer_id:
            return Effects(
                local=[(session, Error(ErrorCode.UNKNOWN_PEER.value, f"no peer {message.to[:64]!r} in this room"))]
            )
        frame = Relayed(session.peer_id, message.data)
        if node == self.node_id:
            target = self.local.get(message.to)
            if target is None:  # pragma: no cover - the cache lists only joined local peers
                return Effects()
            self.relayed += 1
            return Effects(local=[(target, frame)])
        if not remote_ok:
            return Effects(
                local=[(session, Error(ErrorCode.UNAVAILABLE.value,
                                       "the peer is on another server process and Redis is "
                                       "unreachable: signal dropped"))]
            )
        self.relayed += 1
        return Effects(remote=[(node, f"S\t{message.to}\t{frame.to_json()}")])

    # -- envelopes from other nodes ------------------------------------------

    def receive(self, envelope: str) -> Effects:
        """Apply one envelope addressed to a peer of this node."""
        kind, _, rest = envelope.partition("\t")
        to, _, rest = rest.partition("\t")
        if to in self._pending:
            self._pending[to].append(envelope)
            return Effects()
        session = self.local.get(to)
        if session is None or session.room is None:
            self.stray += 1
            return Effects()
        if kind == "S":
            return Effects(local=[(session, rest)])
        view = self.rooms.setdefault(session.room, {})
        if kind == "J":
            peer, _, node = rest.partition("\t")
            if not peer or not node or peer in view:
                return Effects()
            view[peer] = node
            self._bump(session.room)
            return Effects(local=[(session, PeerJoined(peer))])
        if kind == "L":
            if view.pop(rest, None) is None:
                return Effects()  # already heard, or never known
            self._bump(session.room)
            return Effects(local=[(session, PeerLeft(rest))])
        self.stray += 1
        return Effects()

    def receive_batch(self, lines: Iterable[str]) -> Effects:
        effects = Effects()
        for line in lines:
            if line:
                effects.extend(self.receive(line))
        return effects

    # -- after Redis came back -----------------------------------------------

    def memberships(self) -> list[tuple[str, str]]:
        """``(room, peer id)`` of every joined local peer, to write back into Redis."""
        return [(s.room, pid) for pid, s in self.local.items() if s.room is not None]

    def _bump(self, room: str) -> None:
        self._versions[room] = self._versions.get(room, 0) + 1

    def version(self, room: str) -> int:
        """Changes to ``room``'s view so far: take it when asking Redis for the room."""
        return self._versions.get(room, 0)

    def reconcile(
        self, room: str, members: dict[str, str], version: int, *, additions_only: bool = False
    ) -> Effects:
        """Bring a room's cached view in line with Redis (news lost while cut off).

        ``members`` is what Redis listed when the view was at ``version``. If
        the view changed since (news arrived while Redis was being asked), the
        answer may be older than the view: the room is left alone, since the
        news that changed it keeps it current anyway. ``additions_only``:
        Redis may not list every member yet (it restarted empty and other
        nodes are writing theirs back), so forget nobody.
        """
        view = self.rooms.get(room)
        if view is None or self.version(room) != version:
            return Effects()
        effects = Effects()
        locals_ = [self.local[p] for p, n in view.items() if n == self.node_id and p in self.local]
        gone = [] if additions_only else [p for p, n in view.items() if n != self.node_id and p not in members]
        for peer in gone:
            del view[peer]
            effects.local += [(s, PeerLeft(peer)) for s in locals_]
        for peer, node in members.items():
            if node != self.node_id and peer not in view:
                view[peer] = node
                effects.local += [(s, PeerJoined(peer)) for s in locals_]
        if effects.local:
            self._bump(room)
        return effects

    def forget_all(self) -> list[Session]:
        """Drop every local peer (this node was declared dead); return their sessions."""
        sessions = list(self.local.values())
        for session in sessions:
            session.room = session.peer_id = None
        self.local.clear()
        self.rooms.clear()
        self._versions.clear()
        return sessions
