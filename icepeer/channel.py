"""Message channels over SCTP (RFC 8831), wrapping aiortc's ``RTCDataChannel``.

A :class:`Channel` is reliable and ordered by default; unordered, and
partially reliable (RFC 3758: ``max_retransmits`` or
``max_packet_lifetime``) channels are opened with the options of
:meth:`icepeer.Peer.channel`. ``await send()`` applies backpressure: it
returns at once while less than :data:`HIGH_WATER` bytes wait to be sent, and
otherwise waits until the queue drains below :data:`LOW_WATER`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiortc import RTCDataChannel

from .errors import ChannelClosed, ConfigError, MessageTooLarge

__all__ = ["Channel", "HIGH_WATER", "LOW_WATER", "MAX_MESSAGE_SIZE", "check_reliability"]

logger = logging.getLogger(__name__)

#: The largest message icepeer sends or accepts (RFC 8841 a=max-message-size).
MAX_MESSAGE_SIZE = 64 * 1024
HIGH_WATER = 1024 * 1024
LOW_WATER = 256 * 1024

_CLOSED = object()


class Channel:
    """One message channel. Iterate it with ``async for message in channel``."""

    def __init__(
        self,
        dc: RTCDataChannel,
        *,
        max_message_size: int = MAX_MESSAGE_SIZE,
        on_closed: Callable[[Channel], None] | None = None,
    ) -> None:
        self._dc = dc
        self._on_closed = on_closed
        self._ended = False
        self.max_message_size = min(max_message_size or MAX_MESSAGE_SIZE, MAX_MESSAGE_SIZE)
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._opened = asyncio.get_running_loop().create_future()
        #: Set while less than HIGH_WATER waits to be sent; every blocked sender waits on it.
        self._writable = asyncio.Event()
        self._writable.set()
        self.sent = 0
        self.received = 0
        dc.bufferedAmountLowThreshold = LOW_WATER
        dc.on("message", self._on_message)
        dc.on("open", self._on_open)
        dc.on("close", self._on_close)
        dc.on("bufferedamountlow", self._on_low)
        if dc.readyState == "open":
            self._on_open()

    # -- properties ---------------------------------------------------------

    @property
    def label(self) -> str:
        return self._dc.label

    @property
    def id(self) -> int | None:
        return self._dc.id

    @property
    def ordered(self) -> bool:
        return self._dc.ordered

    @property
    def max_retransmits(self) -> int | None:
        return self._dc.maxRetransmits

    @property
    def max_packet_lifetime(self) -> int | None:
        return self._dc.maxPacketLifeTime

    @property
    def reliable(self) -> bool:
        return self.max_retransmits is None and self.max_packet_lifetime is None

    @property
    def buffered_amount(self) -> int:
        """Bytes accepted by :meth:`send` and not yet handed to SCTP."""
        return self._dc.bufferedAmount

    @property
    def closed(self) -> bool:
        return self._ended or self._dc.readyState in ("closing", "closed")

    @property
    def drained(self) -> bool:
        """Closed, and every message received has been read."""
        return self._ended and self._queue.qsize() <= 1

    def __repr__(self) -> str:
        kind = "reliable" if self.reliable else "partially reliable"
        order = "ordered" if self.ordered else "unordered"
        return f"<Channel {self.label!r} id={self.id} {kind} {order}>"

    # -- sending --------------------------------------------------------------

    async def wait_open(self) -> None:
        await asyncio.shield(self._opened)

    async def send(self, data: str | bytes) -> None:
        """Send one message (text or binary); wait while too much is queued."""
        if not isinstance(data, (str, bytes, bytearray, memoryview)):
            raise TypeError(f"send() takes str or bytes, not {type(data).__name__}")
        size = len(data.encode("utf-8")) if isinstance(data, str) else len(data)
        if size > self.max_message_size:
            raise MessageTooLarge(
                f"message of {size} bytes exceeds the maximum of {self.max_message_size} bytes: "
                "split it, or stream it over several messages"
            )
        if not self._opened.done():
            await self.wait_open()
        if self.closed:
            raise ChannelClosed(f"channel {self.label!r} is closed")
        payload = data if isinstance(data, str) else bytes(data)
        self._dc.send(payload)
        self.sent += 1
        if self._dc.bufferedAmount > HIGH_WATER:
            self._writable.clear()
        # Every sender waits on the same event, so concurrent senders all wake.
        while not self._writable.is_set() and not self.closed:
            await self._writable.wait()

    # -- receiving -------------------------------------------------------------

    async def recv(self) -> str | bytes:
        """The next message; raises :class:`ChannelClosed` once the channel is closed and drained."""
        item = await self._queue.get()
        if item is _CLOSED:
            self._queue.put_nowait(_CLOSED)  # later calls fail too
            raise ChannelClosed(f"channel {self.label!r} is closed")
        return item  # type: ignore[no-any-return]

    def __aiter__(self) -> AsyncIterator[str | bytes]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[str | bytes]:
        while True:
            try:
                yield await self.recv()
            except ChannelClosed:
                return

    async def close(self) -> None:
        """Close the channel (the SCTP stream is reset, RFC 8831 section 6.7)."""
        if not self.closed:
            self._dc.close()

    # -- aiortc events -------------------------------------------------------

    def _on_message(self, message: str | bytes) -> None:
        self.received += 1
        self._queue.put_nowait(message)

    def _on_open(self) -> None:
        if not self._opened.done():
            self._opened.set_result(None)

    def abort(self) -> None:
        """The connection is over: end the channel without closing its SCTP stream."""
        self._on_close()

    def _on_close(self) -> None:
        if self._ended:
            return
        self._ended = True
        if not self._opened.done():
            self._opened.set_exception(ChannelClosed(f"channel {self.label!r} closed before it opened"))
            self._opened.exception()  # mark retrieved
        self._queue.put_nowait(_CLOSED)
        self._on_low()
        if self._on_closed is not None:
            self._on_closed(self)

    def _on_low(self) -> None:
        self._writable.set()


def check_reliability(max_retransmits: int | None, max_packet_lifetime: int | None) -> None:
    """Raise :class:`ConfigError` unless the partial reliability options make sense (RFC 8831 6.1)."""
    if max_retransmits is not None and max_packet_lifetime is not None:
        raise ConfigError("give max_retransmits or max_packet_lifetime, not both (RFC 8831 section 6.1)")
    for name, value in (("max_retransmits", max_retransmits), ("max_packet_lifetime", max_packet_lifetime)):
        if value is not None and not 0 <= value <= 65535:
            raise ConfigError(f"{name} must be between 0 and 65535")
