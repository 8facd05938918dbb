"""What a punched connection received, waiting to be read, and when it counts as lost.

Acknowledged messages and datagrams wait in two queues. When the connection
ends, both get an end marker, and ``lost`` resolves once the messages that
came before the end were read (``chat()`` prints them before it stops at
``lost``), or after :data:`LOST_READ_GRACE` if nobody reads them.
"""

from __future__ import annotations

import asyncio

__all__ = ["DATAGRAM_QUEUE", "LOST_READ_GRACE", "Inbox"]

#: After the end, ``lost`` waits this long for earlier messages to be read.
LOST_READ_GRACE = 1.0

#: At most this many unread datagrams are kept; more are dropped (it is UDP).
DATAGRAM_QUEUE = 4096


class _End:
    """Put in a queue when nothing more will come."""


_END = _End()


class Inbox:
    """The two queues and the ``lost`` future of one connection."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        #: ``(graceful, reason)`` once the connection is over and earlier messages were read.
        self.lost: asyncio.Future[tuple[bool, str]] = self._loop.create_future()
        self._messages: asyncio.Queue[str | bytes | _End] = asyncio.Queue()
        self._datagrams: asyncio.Queue[str | bytes | _End] = asyncio.Queue()
        #: Datagrams dropped because :data:`DATAGRAM_QUEUE` were unread.
        self.dropped_datagrams = 0
        self._ended = False
        self._lost_result: tuple[bool, str] | None = None

    def message(self, data: str | bytes) -> None:
        self._messages.put_nowait(data)

    def datagram(self, data: str | bytes) -> None:
        if self._datagrams.qsize() < DATAGRAM_QUEUE:
            self._datagrams.put_nowait(data)
        else:
            self.dropped_datagrams += 1

    def end(self) -> None:
        """Nothing more will come (idempotent): readers get None once the queues are empty."""
        if not self._ended:
            self._ended = True
            self._messages.put_nowait(_END)
            self._datagrams.put_nowait(_END)

    def closed(self, graceful: bool, reason: str) -> None:
        """The connection ended: ``lost`` resolves once the earlier messages are read."""
        self.end()
        self._lost_result = (graceful, reason)
        if self._messages.qsize() <= 1:
            self._resolve_lost()
        else:
            # Nobody reading: resolve anyway.
            self._loop.call_later(LOST_READ_GRACE, self._resolve_lost)

    def settle(self, reason: str) -> None:
        """We closed: ``lost`` resolves now (as graceful) if nothing ended it before."""
        if not self.lost.done():
            self.lost.set_result((True, reason))
        self.end()

    async def next_message(self) -> str | bytes | None:
        """The next message, None once the connection is over and all were read."""
        item = await self._messages.get()
        if isinstance(item, _End):
            self._messages.put_nowait(item)
            return None
        if self._lost_result is not None and self._messages.qsize() <= 1:
            self._resolve_lost()
        return item

    async def next_datagram(self) -> str | bytes | None:
        """The next datagram, None once the connection is over and all were read."""
        item = await self._datagrams.get()
        if isinstance(item, _End):
            self._datagrams.put_nowait(item)
            return None
        return item

    def _resolve_lost(self) -> None:
        if not self.lost.done() and self._lost_result is not None:
            self.lost.set_result(self._lost_result)
