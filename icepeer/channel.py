"""Message channels over SCTP (RFC 8831): what the application sends and reads.

A :class:`Channel` is reliable and ordered by default; unordered, and
partially reliable (RFC 3758: ``max_retransmits`` or
``max_packet_lifetime``) channels are opened with the options of
:meth:`icepeer.Peer.channel`.

- ``await send()`` applies backpressure: it returns at once while less than
  :data:`HIGH_WATER` bytes of the channel wait to be sent, and otherwise
  waits until they drain below :data:`LOW_WATER`.
- ``await recv()`` hands messages over in order. A message counts against
  the connection's receive buffer until it is read: a reader that stops
  shrinks the SCTP window the peer sees, the peer's ``send()`` waits, and
  nothing is lost (:mod:`icepeer.sctp.receiver`).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

from .errors import ChannelClosed, ConfigError, MessageTooLarge
from .sctp.datachannels import ChannelParameters

if TYPE_CHECKING:
    from .stack import Stack

__all__ = ["Channel", "HIGH_WATER", "LOW_WATER", "MAX_MESSAGE_SIZE", "check_reliability"]

logger = logging.getLogger(__name__)

#: The largest message icepeer sends or accepts (RFC 8841 a=max-message-size).
MAX_MESSAGE_SIZE = 64 * 1024
HIGH_WATER = 1024 * 1024
LOW_WATER = 256 * 1024


class Channel:
    """One message channel. Iterate it with ``async for message in channel``."""

    def __init__(
        self,
        stack: Stack,
        stream: int,
        parameters: ChannelParameters,
        *,
        max_message_size: int = MAX_MESSAGE_SIZE,
        opened: bool = False,
        on_closed: Callable[[Channel], None] | None = None,
    ) -> None:
        self._stack = stack
        self._stream = stream
        self._parameters = parameters
        self.max_message_size = min(max_message_size or MAX_MESSAGE_SIZE, MAX_MESSAGE_SIZE)
        self._on_closed = on_closed
        self._messages: deque[tuple[str | bytes, int]] = deque()
        self._readable = asyncio.Event()
        self._opened = asyncio.get_running_loop().create_future()
        #: Set while less than HIGH_WATER waits to be sent; every blocked sender waits on it.
        self._writable = asyncio.Event()
        self._writable.set()
        self._ended = False
        self.sent = 0
        self.received = 0
        if opened:
            self._opened.set_result(None)

    # -- properties ---------------------------------------------------------

    @property
    def label(self) -> str:
        return self._parameters.label

    @property
    def protocol(self) -> str:
        return self._parameters.protocol

    @property
    def id(self) -> int:
        return self._stream

    @property
    def ordered(self) -> bool:
        return self._parameters.ordered

    @property
    def max_retransmits(self) -> int | None:
        return self._parameters.max_retransmits

    @property
    def max_packet_lifetime(self) -> int | None:
        return self._parameters.max_packet_lifetime

    @property
    def reliable(self) -> bool:
        return self.max_retransmits is None and self.max_packet_lifetime is None

    @property
    def buffered_amount(self) -> int:
        """Bytes accepted by :meth:`send` and not yet sent (WebRTC's bufferedAmount)."""
        return 0 if self._ended else self._stack.buffered(self._stream)

    @property
    def closed(self) -> bool:
        return self._ended

    @property
    def drained(self) -> bool:
        """Closed, and every message received has been read."""
        return self._ended and not self._messages

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
        payload = data if isinstance(data, str) else bytes(data)
        size = len(payload.encode("utf-8")) if isinstance(payload, str) else len(payload)
        if size > self.max_message_size:
            raise MessageTooLarge(
                f"message of {size} bytes exceeds the maximum of {self.max_message_size} bytes: "
                "split it, or stream it over several messages"
            )
        if self._ended:
            raise ChannelClosed(f"channel {self.label!r} is closed")
        self._stack.send(self._stream, payload)
        self.sent += 1
        if self._stack.buffered(self._stream) > HIGH_WATER:
            self._writable.clear()
            self._stack.wait_writable(self)
        # Every sender waits on the same event, so concurrent senders all wake.
        while not self._writable.is_set() and not self._ended:
            await self._writable.wait()

    # -- receiving -------------------------------------------------------------

    async def recv(self) -> str | bytes:
        """The next message; raises :class:`ChannelClosed` once the channel is closed and drained."""
        while not self._messages:
            if self._ended:
                raise ChannelClosed(f"channel {self.label!r} is closed")
            self._readable.clear()
            await self._readable.wait()
        data, size = self._messages.popleft()
        self._stack.consumed(size)
        return data

    def __aiter__(self) -> AsyncIterator[str | bytes]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[str | bytes]:
        while True:
            try:
                yield await self.recv()
            except ChannelClosed:
                return

    async def close(self) -> None:
        """Close the channel (its SCTP stream is reset, RFC 8831 section 6.7)."""
        if not self._ended:
            self._stack.close_channel(self._stream)

    # -- from the stack -------------------------------------------------------

    def _on_open(self) -> None:
        if not self._opened.done():
            self._opened.set_result(None)

    def _on_message(self, data: str | bytes, size: int) -> None:
        self.received += 1
        self._messages.append((data, size))
        self._readable.set()

    def _on_writable(self) -> None:
        self._writable.set()

    def abort(self) -> None:
        """The channel is over (closed by either side, or the connection ended)."""
        if self._ended:
            return
        self._ended = True
        if not self._opened.done():
            self._opened.set_exception(ChannelClosed(f"channel {self.label!r} closed before it opened"))
            self._opened.exception()  # mark retrieved
        self._readable.set()
        self._writable.set()
        if self._on_closed is not None:
            self._on_closed(self)


def check_reliability(max_retransmits: int | None, max_packet_lifetime: int | None) -> None:
    """Raise :class:`ConfigError` unless the partial reliability options make sense (RFC 8831 6.1)."""
    if max_retransmits is not None and max_packet_lifetime is not None:
        raise ConfigError("give max_retransmits or max_packet_lifetime, not both (RFC 8831 section 6.1)")
    for name, value in (("max_retransmits", max_retransmits), ("max_packet_lifetime", max_packet_lifetime)):
        if value is not None and not 0 <= value <= 65535:
            raise ConfigError(f"{name} must be between 0 and 65535")
