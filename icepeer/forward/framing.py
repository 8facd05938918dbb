"""The forward wire format, without I/O: hello, stream frames, and datagrams.

Three kinds of channel carry a forward (see ``docs/transfer.md``):

- ``forward``: the control channel. Each side sends one text message, a
  :class:`Hello` (JSON), and checks the other's.
- ``tcp/<id>``: one reliable, ordered channel per TCP connection, opened by
  the listening side. Each message is one binary *frame*: a type byte, then
  the body::

      0x00 DATA    bytes of the stream (1 .. max message size - 1)
      0x01 EOF     no body: the sender will send no more DATA (TCP half-close)
      0x02 WINDOW  u32 big-endian: the receiver consumed that many more bytes
      0x03 RESET   UTF-8 reason: the connection is aborted (RST, refused, error)

- ``udp``: one unordered channel without retransmissions. Each message is
  one datagram: a u32 big-endian flow id, then the payload, unchanged.
"""

from __future__ import annotations

import enum
import json
import struct
from dataclasses import dataclass
from typing import Any

from .errors import HandshakeFailed, ProtocolViolation

__all__ = [
    "CONTROL_LABEL",
    "FLOW_HEADER",
    "MAX_FLOW_ID",
    "UDP_LABEL",
    "VERSION",
    "Data",
    "Eof",
    "Frame",
    "Hello",
    "Kind",
    "Mode",
    "Reset",
    "Transport",
    "Window",
    "decode_datagram",
    "encode_datagram",
    "parse",
    "serialize",
    "stream_id",
    "stream_label",
]

VERSION = 1
CONTROL_LABEL = "forward"
UDP_LABEL = "udp"
_STREAM_PREFIX = "tcp/"
MAX_FLOW_ID = 0xFFFFFFFF
FLOW_HEADER = 4
_U32 = struct.Struct("!I")


class Mode(enum.Enum):
    LISTEN = "listen"
    CONNECT = "connect"


class Transport(enum.Enum):
    TCP = "tcp"
    UDP = "udp"


# -- the handshake --------------------------------------------------------------


@dataclass(frozen=True)
class Hello:
    """What one side announces on the control channel."""

    mode: Mode
    transport: Transport
    #: Bytes this side buffers per TCP stream: the peer's initial send credit.
    window: int
    version: int = VERSION

    def to_json(self) -> str:
        return json.dumps({"type": "hello", "version": self.version, "mode": self.mode.value,
                           "protocol": self.transport.value, "window": self.window})

    @classmethod
    def from_json(cls, text: str | bytes) -> Hello:
        try:
            data: Any = json.loads(text)
            if not isinstance(data, dict) or data.get("type") != "hello":
                raise TypeError("not a hello")
            version, window = data["version"], data["window"]
            if not isinstance(version, int) or not isinstance(window, int) or isinstance(window, bool):
                raise TypeError("version and window must be integers")
            if not 1 <= window <= MAX_FLOW_ID:
                raise ValueError(f"window {window} out of range")
            return cls(Mode(data["mode"]), Transport(data["protocol"]), window, version)
        except (ValueError, KeyError, TypeError) as exc:
            raise HandshakeFailed(f"the peer is not an icepeer forward (bad hello: {exc})") from None

    def check(self, theirs: Hello) -> None:
        """Raise :class:`HandshakeFailed` unless ``theirs`` fits this side."""
        if theirs.version != self.version:
            raise HandshakeFailed(
                f"the peer speaks forward protocol version {theirs.version}, this side {self.version}")
        if theirs.mode is self.mode:
            flag = "--listen" if self.mode is Mode.LISTEN else "--connect"
            raise HandshakeFailed(
                f"both sides use {flag}: one side must --listen, the other --connect")
        if theirs.transport is not self.transport:
            raise HandshakeFailed(f"this side forwards {self.transport.value}, the peer "
                                  f"{theirs.transport.value}: use the same --protocol on both")


# -- stream frames ----------------------------------------------------------------


class Kind(enum.IntEnum):
    DATA = 0
    EOF = 1
    WINDOW = 2
    RESET = 3


@dataclass(frozen=True)
class Data:
    payload: bytes


@dataclass(frozen=True)
class Eof:
    pass


@dataclass(frozen=True)
class Window:
    increment: int


@dataclass(frozen=True)
class Reset:
    reason: str


Frame = Data | Eof | Window | Reset


def serialize(frame: Frame) -> bytes:
    if isinstance(frame, Data):
        return bytes((Kind.DATA,)) + frame.payload
    if isinstance(frame, Eof):
        return bytes((Kind.EOF,))
    if isinstance(frame, Window):
        return bytes((Kind.WINDOW,)) + _U32.pack(frame.increment)
    return bytes((Kind.RESET,)) + frame.reason.encode("utf-8", "replace")[:1024]


def parse(message: str | bytes) -> Frame:
    """One frame from one channel message; :class:`ProtocolViolation` if it is not one."""
    if isinstance(message, str):
        raise ProtocolViolation("text message on a stream channel (frames are binary)")
    if not message:
        raise ProtocolViolation("empty message on a stream channel")
    kind, body = message[0], message[1:]
    if kind == Kind.DATA:
        if not body:
            raise ProtocolViolation("empty DATA frame")
        return Data(bytes(body))
    if kind == Kind.EOF:
        if body:
            raise ProtocolViolation("EOF frame with a body")
        return Eof()
    if kind == Kind.WINDOW:
        if len(body) != _U32.size:
            raise ProtocolViolation(f"WINDOW frame with a {len(body)}-byte body (expected 4)")
        (increment,) = _U32.unpack(body)
        if increment == 0:
            raise ProtocolViolation("WINDOW frame of 0 bytes")
        return Window(increment)
    if kind == Kind.RESET:
        return Reset(bytes(body).decode("utf-8", "replace"))
    raise ProtocolViolation(f"unknown frame type {kind}")


def stream_label(connection_id: int) -> str:
    return f"{_STREAM_PREFIX}{connection_id}"


def stream_id(label: str) -> int | None:
    """The connection id in a ``tcp/<id>`` label, or None if it is not one."""
    if not label.startswith(_STREAM_PREFIX):
        return None
    digits = label[len(_STREAM_PREFIX):]
    if not digits.isdigit() or len(digits) > 10:
        return None
    return int(digits)


# -- datagrams ---------------------------------------------------------------------


def encode_datagram(flow_id: int, payload: bytes) -> bytes:
    return _U32.pack(flow_id) + payload


def decode_datagram(message: str | bytes) -> tuple[int, bytes]:
    if isinstance(message, str) or len(message) < FLOW_HEADER:
        raise ProtocolViolation("a message on the udp channel without a flow id")
    (flow_id,) = _U32.unpack_from(message)
    return flow_id, bytes(message[FLOW_HEADER:])
