"""RESP2, the Redis protocol: commands out, replies in, with no I/O.

Only what :mod:`signaling.redis_publisher` needs: :func:`encode` turns a
command into bytes, :class:`ReplyParser` turns bytes from Redis into replies
(simple strings, errors, integers, bulk strings, arrays), however the bytes
are split. See https://redis.io/docs/latest/develop/reference/protocol-spec/.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

__all__ = ["encode", "ReplyParser", "ReplyError", "RespProtocolError"]


@dataclass(frozen=True)
class ReplyError:
    """An error reply (``-ERR ...``): the command failed, the connection is fine."""

    message: str


class RespProtocolError(Exception):
    """Bytes that are not RESP2: the connection cannot go on."""


def encode(*args: str | bytes | int) -> bytes:
    """One command as a RESP array of bulk strings."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


class ReplyParser:
    """Feed bytes; take complete replies in order."""

    #: Larger bulk strings or arrays are refused (a broken or hostile peer).
    MAX_LENGTH = 512 * 1024 * 1024

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._replies: deque[Any] = deque()

    def feed(self, data: bytes) -> None:
        self._buffer += data
        pos = 0
        try:
            while (parsed := self._parse(pos)) is not None:
                value, pos = parsed
                self._replies.append(value)
        finally:
            del self._buffer[:pos]

    def replies(self) -> list[Any]:
        """Every complete reply so far (and forget them)."""
        out = list(self._replies)
        self._replies.clear()
        return out

    def _line(self, start: int) -> tuple[bytes, int] | None:
        end = self._buffer.find(b"\r\n", start)
        if end < 0:
            if len(self._buffer) - start > 64 * 1024:
                raise RespProtocolError("reply line too long")
            return None
        return bytes(self._buffer[start + 1:end]), end + 2

    def _length(self, text: bytes) -> int:
        try:
            length = int(text)
        except ValueError:
            raise RespProtocolError(f"bad length {text[:20]!r}") from None
        if length > self.MAX_LENGTH:
            raise RespProtocolError(f"length {length} too large")
        return length

    def _parse(self, start: int) -> tuple[Any, int] | None:
        if start >= len(self._buffer):
            return None
        kind = self._buffer[start:start + 1]
        line = self._line(start)
        if line is None:
            return None
        text, pos = line
        if kind == b"+":
            return text.decode(errors="replace"), pos
        if kind == b"-":
            return ReplyError(text.decode(errors="replace")), pos
        if kind == b":":
            try:
                return int(text), pos
            except ValueError:
                raise RespProtocolError(f"bad integer {text[:20]!r}") from None
        if kind == b"$":
            length = self._length(text)
            if length < 0:
                return None, pos
            if len(self._buffer) < pos + length + 2:
                return None
            return bytes(self._buffer[pos:pos + length]), pos + length + 2
        if kind == b"*":
            count = self._length(text)
            if count < 0:
                return None, pos
            items = []
            for _ in range(count):
                item = self._parse(pos)
                if item is None:
                    return None
                value, pos = item
                items.append(value)
            return items, pos
        raise RespProtocolError(f"unknown reply type {bytes(kind)!r}")
