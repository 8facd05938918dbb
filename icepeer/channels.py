"""The channels the peer opens, waiting for the application to claim them.

A channel the peer opens (RFC 8832) waits, unclaimed, until the application
asks for it by label (:meth:`ChannelSet.take`); at most :data:`MAX_UNCLAIMED`
wait at a time, so a peer that opens channels in a loop is refused (each new
one is closed) instead of filling memory. Closed channels are forgotten as
soon as nothing in them is left to read.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from .channel import Channel

__all__ = ["ChannelSet", "MAX_UNCLAIMED"]

logger = logging.getLogger(__name__)

#: Channels the peer opened and nobody claimed yet; more are refused (closed).
MAX_UNCLAIMED = 256


class ChannelSet:
    def __init__(self) -> None:
        self.unclaimed: list[Channel] = []
        self._arrivals = asyncio.Event()

    def arrived(self, channel: Channel) -> bool:
        """The peer opened ``channel``; False if it was refused (too many unclaimed)."""
        if len(self.unclaimed) >= MAX_UNCLAIMED:
            logger.warning("the peer opened more than %d channels nobody claimed: closing %r",
                           MAX_UNCLAIMED, channel.label)
            self.unclaimed = [c for c in self.unclaimed if not c.drained]
            if len(self.unclaimed) >= MAX_UNCLAIMED:
                channel._stack.close_channel(channel.id)
                return False
        self.unclaimed.append(channel)
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

    def forget(self, channel: Channel) -> None:
        """A channel closed: if nobody claimed it and nothing is left to read, drop it."""
        if channel in self.unclaimed and channel.drained:
            self.unclaimed.remove(channel)
