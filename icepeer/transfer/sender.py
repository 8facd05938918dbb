"""Sending files over a channel: asyncio glue around :mod:`.protocol`."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable

from ..channel import Channel
from ..errors import ChannelClosed
from .errors import IntegrityError, Refused, TransferError, TransferProtocolError
from .files import SourceFile
from .manifest import Manifest
from .protocol import WINDOW, Abort, Accept, Ack, Done, Offer, Reject, parse

__all__ = ["send_files"]

logger = logging.getLogger(__name__)

Progress = Callable[[int], None]


class _Acks:
    """The receiver's side of the conversation while we send: acks, then done."""

    def __init__(self, channel: Channel, on_progress: Progress | None) -> None:
        self.channel = channel
        self.acked = 0
        self.changed = asyncio.Event()
        self.on_progress = on_progress
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> Done:
        try:
            while True:
                message = parse(await self.channel.recv())
                if isinstance(message, Ack):
                    self.acked = max(self.acked, message.bytes)
                    self.changed.set()
                    if self.on_progress is not None:
                        self.on_progress(self.acked)
                elif isinstance(message, Done):
                    return message
                else:
                    raise TransferProtocolError(f"unexpected {type(message).__name__.lower()} message")
        except ChannelClosed:
            raise TransferError("the connection closed before the receiver confirmed the files") from None
        finally:
            self.changed.set()

    async def wait_below(self, sent: int, window: int) -> None:
        """Wait until at most ``window`` bytes are unacknowledged (or the receiver is done/failed)."""
        while sent - self.acked > window and not self.task.done():
            self.changed.clear()
            await self.changed.wait()
        if self.task.done() and self.task.exception() is not None:
            raise self.task.exception()  # type: ignore[misc]


async def send_files(
    channel: Channel,
    files: list[SourceFile],
    *,
    on_accepted: Callable[[], None] | None = None,
    on_progress: Progress | None = None,
    window: int = WINDOW,
) -> Done:
    """Offer ``files``, send them if accepted, and return the receiver's verdict.

    Raises :class:`Refused` if the receiver says no, :class:`IntegrityError`
    if a file changed while it was sent.
    """
    manifest = Manifest(tuple(f.entry for f in files))
    await channel.send(Offer(manifest).to_json())
    try:
        reply = parse(await channel.recv())
    except ChannelClosed:
        raise TransferError("the connection closed before the receiver answered") from None
    if isinstance(reply, Reject):
        raise Refused(f"the receiver refused: {reply.reason}")
    if isinstance(reply, Offer):
        raise TransferProtocolError("the peer is sending too: run 'icepeer receive' on the other side")
    if not isinstance(reply, Accept):
        raise TransferProtocolError(f"expected accept or reject, got {type(reply).__name__.lower()}")
    if on_accepted is not None:
        on_accepted()
    acks = _Acks(channel, on_progress)
    chunk = channel.max_message_size
    sent = 0
    try:
        for source in files:
            entry = source.entry
            digest, left = hashlib.sha256(), entry.size
            with source.path.open("rb") as f:
                while left:
                    data = f.read(min(chunk, left))
                    if not data:
                        break
                    digest.update(data)
                    left -= len(data)
                    await acks.wait_below(sent, window)
                    await channel.send(data)
                    sent += len(data)
            if left or digest.hexdigest() != entry.sha256:
                reason = f"{entry.name!r} changed while it was being sent"
                await channel.send(Abort(reason).to_json())
                raise IntegrityError(reason)
        return await acks.task
    except ChannelClosed:
        raise TransferError("the connection closed during the transfer") from None
    finally:
        if not acks.task.done():
            acks.task.cancel()
        await asyncio.gather(acks.task, return_exceptions=True)
