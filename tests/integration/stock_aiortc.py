"""A stock aiortc peer (``RTCPeerConnection``) that speaks icepeer's signaling, for interop tests.

It joins the room like icepeer does; the first in the room offers. It sends
its description with every candidate in it (aiortc does not trickle) and
adds the candidates icepeer trickles (``addIceCandidate``), as a browser would.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import aioice.ice
from aiortc import RTCDataChannel, RTCPeerConnection, RTCSessionDescription
from aiortc.sdp import candidate_from_sdp

from signaling.client import SignalingClient
from signaling.protocol import PeerJoined, Relayed


class StockPeer:
    def __init__(self) -> None:
        self.pc = RTCPeerConnection()
        self.channels: asyncio.Queue[RTCDataChannel] = asyncio.Queue()
        self.messages: dict[str, asyncio.Queue[str | bytes]] = {}
        self.sig: SignalingClient | None = None
        self._task: asyncio.Task[None] | None = None

    def watch(self, channel: RTCDataChannel) -> RTCDataChannel:
        queue = self.messages.setdefault(channel.label, asyncio.Queue())
        channel.on("message", queue.put_nowait)
        return channel

    async def run(self, url: str, room: str, *, offer_channel: str | None = None,
                  channel_options: dict[str, Any] | None = None) -> None:
        # Host candidates on loopback only (aioice would take every interface).
        aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]
        self.pc.on("datachannel", lambda c: self.channels.put_nowait(self.watch(c)))
        self.sig = sig = await SignalingClient.connect(url, room)
        if sig.peers:
            other = sig.peers[0]
        else:
            while not isinstance(event := await sig.recv(), PeerJoined):
                pass
            other = event.peer_id
            if offer_channel is not None:
                self.channels.put_nowait(self.watch(self.pc.createDataChannel(offer_channel, **(channel_options or {}))))
            await self.pc.setLocalDescription(await self.pc.createOffer())
            await sig.signal(other, {"type": "offer", "sdp": self.pc.localDescription.sdp})
        while True:
            event = await sig.recv()
            if not isinstance(event, Relayed):
                continue
            data = event.data
            if data.get("type") == "offer":
                await self.pc.setRemoteDescription(RTCSessionDescription(**data))
                await self.pc.setLocalDescription(await self.pc.createAnswer())
                await sig.signal(other, {"type": "answer", "sdp": self.pc.localDescription.sdp})
            elif data.get("type") == "answer":
                await self.pc.setRemoteDescription(RTCSessionDescription(**data))
            elif data.get("candidate"):
                candidate = candidate_from_sdp(data["candidate"].removeprefix("candidate:"))
                candidate.sdpMid, candidate.sdpMLineIndex = data.get("sdpMid"), data.get("sdpMLineIndex")
                with contextlib.suppress(Exception):
                    await self.pc.addIceCandidate(candidate)

    def start(self, url: str, room: str, **options: Any) -> None:
        self._task = asyncio.create_task(self.run(url, room, **options))

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        await self.pc.close()
        if self.sig is not None:
            await self.sig.leave()
