"""icepeer's own command line, with stock aiortc as its data path: the same transfer, the stock stack.

    benchmarks/aiortc_cli.py forward|send|receive|connect [icepeer's options]

Everything above the data path is icepeer's, unchanged: the argument
parsing, ``icepeer forward``'s tunnel, ``icepeer send``/``receive``'s
protocol, the chat loop. Only :func:`icepeer.cli.connect.open_peer` is
replaced, by one that connects a stock ``RTCPeerConnection`` (offer and
answer over the same signaling, as ``_harness.open_aiortc``) and wraps it
in the few methods of :class:`icepeer.Peer` and :class:`icepeer.Channel`
those commands use. aiortc's ``send()`` never blocks: the wrapper waits
while ``bufferedAmount`` is over 1 MiB, as icepeer's channel does.
Benchmarks only: nothing of icepeer's SCTP or DTLS runs here.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any

from _harness import ROOT, loopback_only
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from icepeer.errors import ChannelClosed, PeerLost
from icepeer.events import Closed
from icepeer.report import ConnectionReport, Endpoint
from signaling.client import SignalingClient
from signaling.protocol import PeerJoined, PeerLeft, Relayed

HIGH_WATER, LOW_WATER = 1024 * 1024, 256 * 1024


class StockChannel:
    def __init__(self, dc: Any) -> None:
        self.dc = dc
        self.max_message_size = 65536
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._low = asyncio.Event()
        self._open = asyncio.Event()
        dc.bufferedAmountLowThreshold = LOW_WATER
        dc.on("message", self._queue.put_nowait)
        dc.on("bufferedamountlow", self._low.set)
        dc.on("open", self._open.set)
        dc.on("close", lambda: self._queue.put_nowait(None))
        if dc.readyState == "open":
            self._open.set()

    label = property(lambda self: self.dc.label)
    ordered = property(lambda self: self.dc.ordered)
    max_retransmits = property(lambda self: self.dc.maxRetransmits)
    max_packet_lifetime = property(lambda self: self.dc.maxPacketLifeTime)
    closed = property(lambda self: self.dc.readyState in ("closing", "closed"))
    buffered_amount = property(lambda self: self.dc.bufferedAmount)

    async def send(self, data: str | bytes) -> None:
        await self._open.wait()
        if self.closed:
            raise ChannelClosed(f"channel {self.label!r} is closed")
        self.dc.send(data)
        while self.dc.bufferedAmount > HIGH_WATER and not self.closed:
            self._low.clear()
            await self._low.wait()

    async def recv(self) -> str | bytes:
        item = await self._queue.get()
        if item is None:
            self._queue.put_nowait(None)
            raise ChannelClosed(f"channel {self.label!r} is closed")
        return item  # type: ignore[no-any-return]

    async def close(self) -> None:
        self.dc.close()


class StockPeer:
    """The methods of :class:`icepeer.Peer` that the CLI's commands use."""

    def __init__(self, room: str) -> None:
        self.room = room
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.role: Any = None
        self.on_progress: Any = None
        self._offered: asyncio.Queue[StockChannel] = asyncio.Queue()
        self._unclaimed: list[StockChannel] = []
        self._channels: list[Any] = []
        self._closed: asyncio.Future[Closed] = asyncio.get_running_loop().create_future()
        self.sig: SignalingClient | None = None

    async def start(self, url: str) -> None:
        loopback_only()
        self.pc.on("datachannel", lambda dc: self._offered.put_nowait(self._wrap(dc)))
        self.sig = sig = await SignalingClient.connect(url, self.room)
        if sig.peers:
            other, self.role = sig.peers[0], type("Role", (), {"value": "answerer"})()
            while not (isinstance(event := await sig.recv(), Relayed) and event.data.get("type") == "offer"):
                pass
            await self.pc.setRemoteDescription(RTCSessionDescription(**event.data))
            await self.pc.setLocalDescription(await self.pc.createAnswer())
            await sig.signal(other, {"type": "answer", "sdp": self.pc.localDescription.sdp})
        else:
            while not isinstance(event := await sig.recv(), PeerJoined):
                pass
            other, self.role = event.peer_id, type("Role", (), {"value": "offerer"})()
            # A first channel so the offer has an application m-line (aiortc needs one).
            self._wrap(self.pc.createDataChannel("_"))
            await self.pc.setLocalDescription(await self.pc.createOffer())
            await sig.signal(other, {"type": "offer", "sdp": self.pc.localDescription.sdp})
            while not (isinstance(event := await sig.recv(), Relayed) and event.data.get("type") == "answer"):
                pass
            await self.pc.setRemoteDescription(RTCSessionDescription(**event.data))
        while self.pc.sctp is None or self.pc.sctp.state != "connected":
            await asyncio.sleep(0.005)
        self._watcher = asyncio.ensure_future(self._watch())

    async def _watch(self) -> None:
        assert self.sig is not None
        try:
            while True:
                if isinstance(await self.sig.recv(), PeerLeft):
                    break
        except Exception:  # noqa: BLE001 - signaling gone: the peer is gone too
            pass
        # Signaling (TCP) outruns aiortc's data path: give what the peer sent
        # before it left a moment to arrive, as icepeer's own bye does.
        await asyncio.sleep(1.0)
        if not self._closed.done():
            self._closed.set_result(Closed(True, "peer left"))

    def _wrap(self, dc: Any) -> StockChannel:
        self._channels.append(dc)
        return StockChannel(dc)

    async def channel(self, label: str, **options: Any) -> StockChannel:
        if self.role.value == "offerer":
            return await self.open_channel(label, **options)
        while True:
            for channel in self._unclaimed:
                if channel.label == label:
                    self._unclaimed.remove(channel)
                    return channel
            channel = await self._offered.get()
            if channel.label == label:
                return channel
            self._unclaimed.append(channel)

    async def open_channel(self, label: str, *, ordered: bool = True, max_retransmits: int | None = None,
                           max_packet_lifetime: int | None = None) -> StockChannel:
        channel = self._wrap(self.pc.createDataChannel(label, ordered=ordered, maxRetransmits=max_retransmits,
                                                       maxPacketLifeTime=max_packet_lifetime))
        await channel._open.wait()
        return channel

    async def accept_channel(self) -> StockChannel:
        while True:
            if self._unclaimed:
                return self._unclaimed.pop(0)
            channel = await self._offered.get()
            if channel.label != "_":
                return channel

    def report(self) -> ConnectionReport:
        report = ConnectionReport(room=self.room, role=self.role.value if self.role else None)
        report.local = report.remote = Endpoint("host", "127.0.0.1", 0)
        return report

    async def wait_closed(self) -> Closed:
        return await asyncio.shield(self._closed)

    async def drain(self, timeout: float | None = 10.0) -> bool:
        sctp = self.pc.sctp
        deadline = time.monotonic() + (timeout or 1e9)
        while time.monotonic() < deadline and sctp is not None and (
            sctp._data_channel_queue or sctp._outbound_queue or sctp._sent_queue
            or any(c.bufferedAmount for c in self._channels)
        ):
            await asyncio.sleep(0.01)
        return True

    async def close(self) -> None:
        if not self._closed.done():
            self._closed.set_result(Closed(True, "closed"))
        await self.pc.close()
        if self.sig is not None:
            await self.sig.leave()

    @property
    def connected(self) -> bool:
        return not self._closed.done()


async def open_stock_peer(args: argparse.Namespace, out: Any) -> tuple[StockPeer, float]:
    started = time.monotonic()
    peer = StockPeer(args.room)
    try:
        await asyncio.wait_for(peer.start(args.signal), args.timeout or None)
    except TimeoutError:
        raise PeerLost("stock aiortc did not connect in time") from None
    return peer, started


def main() -> int:
    import icepeer.cli.connect
    import icepeer.cli.forward
    import icepeer.cli.send

    for module in (icepeer.cli.connect, icepeer.cli.forward, icepeer.cli.send):
        module.open_peer = open_stock_peer  # type: ignore[attr-defined]
    from icepeer.cli import main as icepeer_main

    return icepeer_main(sys.argv[1:])


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
