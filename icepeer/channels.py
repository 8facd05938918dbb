"""The channels of one connection: those we open, and those the peer opens for us to claim.

A channel the peer opens (RFC 8832) waits, unclaimed, until the application
asks for it by label (:meth:`ChannelSet.claim`); at most
:data:`MAX_UNCLAIMED` wait at a time, so a peer that opens channels in a
loop is refused (each new one is closed) instead of filling memory. Closed
channels are forgotten as soon as nothing in them is left to read.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from aiortc import RTCDataChannel

from .channel import MAX_MESSAGE_SIZE, Channel

__all__ = ["ChannelSet", "MAX_UNCLAIMED"]

logger = logging.getLogger(__name__)

#: Channels the peer opened and nobody claimed yet; more are refused (closed).
MAX_UNCLAIMED = 256


class ChannelSet:
    def __init__(self) -> None:
        self.open: set[Channel] = set()
        self.unclaimed: list[Channel] = []
        self.max_message_size = MAX_MESSAGE_SIZE
        self._arrivals = asyncio.Event()

    def adopt(self, dc: RTCDataChannel) -> Channel:
        """Wrap ``dc`` (ours or the peer's) as a :class:`Channel`."""
        channel = Channel(dc, max_message_size=self.max_message_size, on_closed=self._forget)
        self.open.add(channel)
        return channel

    def arrived(self, dc: RTCDataChannel) -> bool:
        """The peer opened ``dc``; False if it was refused (too many unclaimed)."""
        if len(self.unclaimed) >= MAX_UNCLAIMED:
            logger.warning("the peer opened more than %d channels nobody claimed: closing %r",
                           MAX_UNCLAIMED, dc.label)
            dc.close()
            return False
        self.unclaimed.append(self.adopt(dc))
        self._arrivals.set()
        return True

    def take(self, match: Callable[[Channel], bool]) -> Channel | None:
        """The first unclaimed channel that ``match``es, now claimed; ``None`` if there is none yet."""
        for channel in self.unclaimed:
            if match(channel):
                self.unclaimed.remove(channel)
                return channel
        self._arrivals.clear()
        return None

    async def arrival(self) -> None:
        """Wait until the peer opens another channel."""
        await self._arrivals.wait()

    def buffered(self) -> bool:
        """Whether any channel has messages not yet handed to SCTP."""
        return any(c.buffered_amount for c in self.open)

    def abort_all(self) -> None:
        for channel in list(self.open):
            channel.abort()

    def _forget(self, channel: Channel) -> None:
        self.open.discard(channel)
        if channel in self.unclaimed and channel.drained:
            self.unclaimed.remove(channel)
