"""Signaling protocol v1: typed messages and their validation, with no I/O.

Every frame is one JSON object in a websocket text frame (docs/protocol.md).
Clients send :class:`Join`, :class:`Signal`, :class:`Leave` and
:class:`IceServersRequest`; the server sends :class:`Joined`,
:class:`PeerJoined`, :class:`PeerLeft`, :class:`Relayed` (``"type":
"signal"`` with ``from``), :class:`IceServers` and :class:`Error`.

:func:`parse_client` and :func:`parse_server` turn a frame into a message or
raise :class:`~signaling.exceptions.ProtocolError` carrying the error code
the server answers with. Unknown extra fields are ignored, so that a newer
peer can add fields without breaking an older server.
"""

from __future__ import annotations

import enum
import json
import re
from dataclasses import dataclass, field
from typing import Any

from .exceptions import ProtocolError

__all__ = [
    "PROTOCOL_VERSION",
    "SUBPROTOCOL",
    "JOIN_PARAMETER",
    "JOIN_ACCEPTED_HEADER",
    "MAX_DEPTH",
    "ErrorCode",
    "Join",
    "Signal",
    "Leave",
    "IceServersRequest",
    "Joined",
    "PeerJoined",
    "PeerLeft",
    "Relayed",
    "IceServers",
    "Error",
    "ClientMessage",
    "ServerMessage",
    "parse_client",
    "parse_server",
    "valid_room",
]

PROTOCOL_VERSION = 1
#: The websocket subprotocol that names this version (RFC 6455 section 1.9).
SUBPROTOCOL = "icepeer.v1"
#: A client may join in the handshake, ``ws://host/?join=ROOM``: the server
#: says it did with this response header, and the client sends no join frame
#: (an older server ignores the query and waits for the frame).
JOIN_PARAMETER = "join"
JOIN_ACCEPTED_HEADER = "Icepeer-Joined"
#: Deepest nesting of arrays and objects accepted in a frame.
MAX_DEPTH = 32

_ROOM_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")


class ErrorCode(str, enum.Enum):
    """Codes carried by ``{"type": "error"}`` frames."""

    BAD_JSON = "bad-json"
    BAD_MESSAGE = "bad-message"
    TOO_DEEP = "too-deep"
    BINARY_FRAME = "binary-frame"
    BAD_ROOM = "bad-room"
    NOT_JOINED = "not-joined"
    ALREADY_JOINED = "already-joined"
    ROOM_FULL = "room-full"
    UNKNOWN_PEER = "unknown-peer"
    RATE_LIMITED = "rate-limited"
    #: The rooms are out of reach (the server lost its Redis): try again soon.
    UNAVAILABLE = "unavailable"


def valid_room(room: object) -> bool:
    """Room names are 1 to 64 characters of ``[A-Za-z0-9._-]``."""
    return isinstance(room, str) and _ROOM_RE.fullmatch(room) is not None


def _dump(obj: dict[str, Any]) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


# -- client to server -------------------------------------------------------


@dataclass(frozen=True)
class Join:
    room: str

    def to_json(self) -> str:
        return _dump({"type": "join", "room": self.room})


@dataclass(frozen=True)
class Signal:
    to: str
    data: Any

    def to_json(self) -> str:
        return _dump({"type": "signal", "to": self.to, "data": self.data})


@dataclass(frozen=True)
class Leave:
    def to_json(self) -> str:
        return _dump({"type": "leave"})


@dataclass(frozen=True)
class IceServersRequest:
    """Fresh ``ice_servers`` (new TURN credentials) for a joined peer: the answer is :class:`IceServers`."""

    def to_json(self) -> str:
        return _dump({"type": "ice-servers"})


ClientMessage = Join | Signal | Leave | IceServersRequest

# -- server to client -------------------------------------------------------


@dataclass(frozen=True)
class Joined:
    room: str
    peer_id: str
    peers: tuple[str, ...] = ()
    ice_servers: tuple[dict[str, Any], ...] = ()
    #: Seconds the credentials in ``ice_servers`` stay valid, if they expire:
    #: ask for fresh ones (:class:`IceServersRequest`) before then.
    ice_servers_ttl: float | None = None

    def to_json(self) -> str:
        return _dump(
            {
                "type": "joined",
                "room": self.room,
                "peer_id": self.peer_id,
                "peers": list(self.peers),
                "ice_servers": list(self.ice_servers),
                **_ttl(self.ice_servers_ttl),
            }
        )


def _ttl(ttl: float | None) -> dict[str, Any]:
    return {} if ttl is None else {"ice_servers_ttl": ttl}


@dataclass(frozen=True)
class PeerJoined:
    peer_id: str

    def to_json(self) -> str:
        return _dump({"type": "peer-joined", "peer_id": self.peer_id})


@dataclass(frozen=True)
class PeerLeft:
    peer_id: str

    def to_json(self) -> str:
        return _dump({"type": "peer-left", "peer_id": self.peer_id})


@dataclass(frozen=True)
class Relayed:
    """A ``signal`` frame as the server delivers it: ``from`` replaces ``to``."""

    sender: str
    data: Any

    def to_json(self) -> str:
        return _dump({"type": "signal", "from": self.sender, "data": self.data})


@dataclass(frozen=True)
class IceServers:
    """The answer to :class:`IceServersRequest`: the ``ice_servers`` of ``joined``, minted again."""

    ice_servers: tuple[dict[str, Any], ...] = ()
    ice_servers_ttl: float | None = None

    def to_json(self) -> str:
        return _dump({"type": "ice-servers", "ice_servers": list(self.ice_servers), **_ttl(self.ice_servers_ttl)})


@dataclass(frozen=True)
class Error:
    code: str
    message: str = field(default="")

    def to_json(self) -> str:
        return _dump({"type": "error", "code": self.code, "message": self.message})


ServerMessage = Joined | PeerJoined | PeerLeft | Relayed | IceServers | Error

# -- parsing ------------------------------------------------------------------


def _depth_exceeds(value: Any, limit: int) -> bool:
    """True if ``value`` nests arrays/objects deeper than ``limit`` (iterative)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def _load_object(frame: str | bytes) -> dict[str, Any]:
    if isinstance(frame, (bytes, bytearray, memoryview)):
        raise ProtocolError(ErrorCode.BINARY_FRAME, "binary frames are not part of the protocol")
    try:
        value = json.loads(frame)
    except RecursionError:
        raise ProtocolError(
            ErrorCode.TOO_DEEP, f"JSON nested deeper than {MAX_DEPTH} levels"
        ) from None
    except ValueError as exc:
        raise ProtocolError(ErrorCode.BAD_JSON, f"invalid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ProtocolError(
            ErrorCode.BAD_MESSAGE, f"expected a JSON object, got {type(value).__name__}"
        )
    if _depth_exceeds(value, MAX_DEPTH):
        raise ProtocolError(ErrorCode.TOO_DEEP, f"JSON nested deeper than {MAX_DEPTH} levels")
    return value


def _field(obj: dict[str, Any], name: str, kind: type) -> Any:
    if name not in obj:
        raise ProtocolError(ErrorCode.BAD_MESSAGE, f"{obj['type']!r} needs a {name!r} field")
    value = obj[name]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise ProtocolError(
            ErrorCode.BAD_MESSAGE,
            f"{name!r} must be a {kind.__name__}, got {type(value).__name__}",
        )
    return value


def _type_of(obj: dict[str, Any]) -> str:
    kind = obj.get("type")
    if kind is None:
        raise ProtocolError(ErrorCode.BAD_MESSAGE, "missing 'type' field")
    if not isinstance(kind, str):
        raise ProtocolError(ErrorCode.BAD_MESSAGE, "'type' must be a string")
    return kind


def parse_client(frame: str | bytes) -> ClientMessage:
    """Parse and validate one frame sent by a client."""
    obj = _load_object(frame)
    kind = _type_of(obj)
    if kind == "join":
        room = _field(obj, "room", str)
        if not valid_room(room):
            raise ProtocolError(
                ErrorCode.BAD_ROOM, "room names are 1 to 64 characters of A-Z a-z 0-9 . _ -"
            )
        return Join(room)
    if kind == "signal":
        to = _field(obj, "to", str)
        if "data" not in obj:
            raise ProtocolError(ErrorCode.BAD_MESSAGE, "'signal' needs a 'data' field")
        return Signal(to, obj["data"])
    if kind == "leave":
        return Leave()
    if kind == "ice-servers":
        return IceServersRequest()
    raise ProtocolError(ErrorCode.BAD_MESSAGE, f"unknown message type {kind[:40]!r}")


def _ice_servers(obj: dict[str, Any]) -> tuple[tuple[dict[str, Any], ...], float | None]:
    servers = obj.get("ice_servers", [])
    ttl = obj.get("ice_servers_ttl")
    if not isinstance(servers, list):
        raise ProtocolError(ErrorCode.BAD_MESSAGE, f"malformed {obj['type']!r} frame: 'ice_servers' is not a list")
    if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not 0 < ttl < 1e9):
        raise ProtocolError(ErrorCode.BAD_MESSAGE, f"malformed {obj['type']!r} frame: bad 'ice_servers_ttl'")
    return tuple(s for s in servers if isinstance(s, dict)), None if ttl is None else float(ttl)


def parse_server(frame: str | bytes) -> ServerMessage:
    """Parse and validate one frame sent by the server (used by the client)."""
    obj = _load_object(frame)
    kind = _type_of(obj)
    if kind == "joined":
        peers = _field(obj, "peers", list)
        if not all(isinstance(p, str) for p in peers):
            raise ProtocolError(ErrorCode.BAD_MESSAGE, "malformed 'joined' frame")
        servers, ttl = _ice_servers(obj)
        return Joined(
            room=_field(obj, "room", str),
            peer_id=_field(obj, "peer_id", str),
            peers=tuple(peers),
            ice_servers=servers,
            ice_servers_ttl=ttl,
        )
    if kind == "ice-servers":
        servers, ttl = _ice_servers(obj)
        return IceServers(servers, ttl)
    if kind == "peer-joined":
        return PeerJoined(_field(obj, "peer_id", str))
    if kind == "peer-left":
        return PeerLeft(_field(obj, "peer_id", str))
    if kind == "signal":
        if "data" not in obj:
            raise ProtocolError(ErrorCode.BAD_MESSAGE, "'signal' needs a 'data' field")
        return Relayed(_field(obj, "from", str), obj["data"])
    if kind == "error":
        return Error(_field(obj, "code", str), str(obj.get("message", "")))
    raise ProtocolError(ErrorCode.BAD_MESSAGE, f"unknown message type {kind[:40]!r}")
