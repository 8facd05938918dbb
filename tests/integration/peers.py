"""Helpers: two peers connected through the real signaling server (and coturn)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator
from typing import Any

import icepeer
from signaling.rooms import Hub
from signaling.server import LocalRooms, ServerConfig, SignalingServer

LOOPBACK = ["127.0.0.1"]
_rooms = itertools.count()


def room() -> str:
    return f"test-{next(_rooms)}"


@contextlib.asynccontextmanager
async def two_peers(
    url: str, *, a: dict[str, Any] | None = None, b: dict[str, Any] | None = None, **common: Any
) -> AsyncIterator[tuple[icepeer.Peer, icepeer.Peer]]:
    """Connect two peers in a fresh room (``a``/``b``: per-peer options); close both afterwards."""
    common.setdefault("host_addresses", LOOPBACK)
    common.setdefault("timeout", 10)
    name = room()
    first, second = await asyncio.gather(
        icepeer.connect(url, name, **{**common, **(a or {})}),
        icepeer.connect(url, name, **{**common, **(b or {})}),
    )
    try:
        yield first, second
    finally:
        await asyncio.gather(first.close(), second.close())


async def channels(a: icepeer.Peer, b: icepeer.Peer, label: str = "t", **options: Any) -> tuple[icepeer.Channel, icepeer.Channel]:
    """The same channel on both sides."""
    return await asyncio.gather(a.channel(label, **options), b.channel(label, **options))


def server_with_hub(hub: Hub) -> SignalingServer:
    """A signaling server whose in-process rooms are ``hub`` (a man in the middle, in tests)."""
    server = SignalingServer(ServerConfig(port=0))
    server.hub = hub
    server.rooms = LocalRooms(hub, server.deliver)
    return server
