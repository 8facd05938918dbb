"""A bounded queue of frames for one connection, written by its own task.

Whoever delivers a frame (the handler of the peer that sent a ``signal``, or
the Redis subscriber) only appends to the recipient's :class:`Outbox`; it
never awaits the recipient's socket. A recipient that reads more slowly than
frames arrive lets its queue grow to ``limit`` bytes, and the next frame
overflows it: the outbox drops what it holds and calls ``on_overflow``, which
closes that connection. So a slow reader costs at most ``limit`` bytes of
memory and never stalls anybody else.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable, Callable

from websockets.exceptions import ConnectionClosed

__all__ = ["Outbox"]


class Outbox:
    """Frames waiting for one connection: at most ``limit`` bytes, in order."""

    __slots__ = ("_frames", "_on_overflow", "_send", "_writer", "closed", "limit", "queued")

    def __init__(
        self,
        send: Callable[[str], Awaitable[None]],
        *,
        limit: int,
        on_overflow: Callable[[int], None],
    ) -> None:
        self._send = send
        self._on_overflow = on_overflow
        self._frames: collections.deque[str] = collections.deque()
        self._writer: asyncio.Task[None] | None = None
        self.limit = limit
        #: Bytes queued and not yet handed to the socket (UTF-8 length).
        self.queued = 0
        self.closed = False

    def put(self, frame: str) -> bool:
        """Queue ``frame``; False if the outbox is closed or just overflowed."""
        if self.closed:
            return False
        size = len(frame.encode()) if not frame.isascii() else len(frame)
        if self._frames and self.queued + size > self.limit:
            total = self.queued + size
            self.close()
            self._on_overflow(total)
            return False
        self._frames.append(frame)
        self.queued += size
        if self._writer is None:
            # One task drains the queue and ends; the next frame starts another.
            self._writer = asyncio.get_running_loop().create_task(self._drain())
        return True

    def close(self) -> None:
        """Drop what is queued; later frames are refused."""
        self.closed = True
        self._frames.clear()
        self.queued = 0

    async def _drain(self) -> None:
        try:
            while self._frames:
                frame = self._frames.popleft()
                self.queued -= len(frame.encode()) if not frame.isascii() else len(frame)
                # Awaits only when the socket's buffer is full: this task waits,
                # nobody else does.
                await self._send(frame)
        except ConnectionClosed:
            # The connection is gone: its own handler cleans up after it.
            self.close()
        finally:
            self._writer = None
