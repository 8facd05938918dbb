"""One TCP connection through one channel: asyncio glue around :mod:`.framing` and :mod:`.window`.

Three tasks per connection:

- *outbound*: reads the TCP socket only while there is send credit, and sends
  DATA frames; at end of file it sends EOF (the socket's read side is done,
  its write side stays open: half-close);
- *inbound*: reads the channel at once, whatever the socket does, so that a
  WINDOW frame is never stuck behind DATA; DATA goes to a local buffer that
  the window bounds;
- *writer*: writes the buffer to the socket, waits for the kernel to take it
  (``drain``), returns the credit, and after the peer's EOF shuts the
  socket's write side (``write_eof``).

The connection ends well when both directions saw EOF, and is aborted
(RESET frame, TCP reset) on any error on either side.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from dataclasses import dataclass

from ..channel import Channel
from ..errors import ChannelClosed
from .errors import ProtocolViolation
from .framing import Data, Eof, Frame, Reset, Window, parse, serialize
from .window import ReceiveWindow, SendCredit

__all__ = ["StreamStats", "TcpStream"]

logger = logging.getLogger(__name__)


@dataclass
class StreamStats:
    """What one forwarded connection did."""

    id: int
    bytes_sent: int = 0  # read from the local socket, sent to the peer
    bytes_received: int = 0  # received from the peer, written to the local socket
    peak_buffered: int = 0  # most bytes of the peer's held here at once (bounded by the window)
    reason: str = ""
    clean: bool = False


class TcpStream:
    """Pump one TCP connection (``reader``/``writer``) through ``channel``.

    ``credit`` is the window the peer announced (what we may send before it
    returns credit); ``window`` is ours (what we accept).
    """

    def __init__(
        self,
        stream_id: int,
        channel: Channel,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        credit: int,
        window: int,
    ) -> None:
        self.stats = StreamStats(stream_id)
        self._channel = channel
        self._reader = reader
        self._writer = writer
        self._credit = SendCredit(credit)
        self._window = ReceiveWindow(window)
        self._chunk = max(1, channel.max_message_size - 1)
        self._has_credit = asyncio.Event()
        self._has_credit.set()
        self._buffer: deque[bytes] = deque()
        self._wake_writer = asyncio.Event()
        self._peer_eof = False
        self._send_lock = asyncio.Lock()  # frames from the reader and the writer task go out whole, in turn
        self._reset: Reset | None = None  # to send once the tasks are stopped
        self._finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def run(self) -> StreamStats:
        """Forward until both directions end or something fails; close everything."""
        outbound = asyncio.create_task(self._outbound())
        inbound = asyncio.create_task(self._inbound())
        writer = asyncio.create_task(self._write())
        directions: set[asyncio.Future[None]] = {outbound, writer}
        try:
            while directions and not self._finished.done():
                done, _ = await asyncio.wait(directions | {self._finished},
                                             return_when=asyncio.FIRST_COMPLETED)
                directions -= done
            if not self._finished.done():
                self.stats.clean = True
                self.stats.reason = "closed"
        finally:
            for task in (outbound, inbound, writer):
                task.cancel()
            for result in await asyncio.gather(outbound, inbound, writer, return_exceptions=True):
                if isinstance(result, Exception):
                    logger.error("stream %d: unexpected failure", self.stats.id, exc_info=result)
            if self._reset is not None and not self._channel.closed:
                # The other tasks are done: nobody else sends. Never wait long for a peer that may be gone.
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._channel.send(serialize(self._reset)), 1.0)
            with contextlib.suppress(Exception):
                await self._channel.close()
            if self.stats.clean:
                self._writer.close()
                with contextlib.suppress(Exception):
                    await self._writer.wait_closed()
            else:
                self._writer.transport.abort()
        self.stats.peak_buffered = self._window.peak
        return self.stats

    def _abort(self, reason: str, *, tell_peer: bool) -> None:
        if self._finished.done():
            return
        logger.info("stream %d aborted: %s", self.stats.id, reason)
        self.stats.reason = reason
        if tell_peer:
            self._reset = Reset(reason)
        self._finished.set_result(None)

    async def _send(self, frame: Frame) -> None:
        async with self._send_lock:
            await self._channel.send(serialize(frame))

    async def _outbound(self) -> None:
        try:
            while True:
                await self._has_credit.wait()
                data = await self._reader.read(min(self._chunk, self._credit.available))
                if not data:
                    await self._send(Eof())
                    return
                self._credit.take(len(data))
                if not self._credit.available:
                    self._has_credit.clear()
                await self._send(Data(data))
                self.stats.bytes_sent += len(data)
        except (ConnectionError, OSError) as exc:
            self._abort(f"local connection failed: {exc}", tell_peer=True)
        except ChannelClosed:
            self._abort("the peer closed the stream", tell_peer=False)

    async def _inbound(self) -> None:
        try:
            while True:
                frame = parse(await self._channel.recv())
                if isinstance(frame, Data):
                    if self._peer_eof:
                        raise ProtocolViolation("DATA after EOF")
                    self._window.received(len(frame.payload))
                    self._buffer.append(frame.payload)
                    self._wake_writer.set()
                elif isinstance(frame, Window):
                    self._credit.grant(frame.increment)
                    self._has_credit.set()
                elif isinstance(frame, Eof):
                    self._peer_eof = True
                    self._wake_writer.set()
                else:
                    self._abort(f"reset by the peer: {frame.reason}", tell_peer=False)
                    return
        except ChannelClosed:
            if not self._peer_eof:
                self._abort("the peer closed the stream without EOF", tell_peer=False)
        except ProtocolViolation as exc:
            self._abort(f"protocol violation: {exc}", tell_peer=True)

    async def _write(self) -> None:
        try:
            while True:
                await self._wake_writer.wait()
                self._wake_writer.clear()
                while self._buffer:
                    data = self._buffer.popleft()
                    self._writer.write(data)
                    await self._writer.drain()
                    self.stats.bytes_received += len(data)
                    increment = self._window.consumed(len(data))
                    if increment:
                        with contextlib.suppress(ChannelClosed):
                            await self._send(Window(increment))
                if self._peer_eof:
                    if self._writer.can_write_eof():
                        self._writer.write_eof()
                    return
        except (ConnectionError, OSError) as exc:
            self._abort(f"local connection failed: {exc}", tell_peer=True)
