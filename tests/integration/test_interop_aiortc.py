"""icepeer's own DTLS and SCTP against a stock aiortc peer, both ways round: the standard wire."""

from __future__ import annotations

import asyncio

import pytest

import icepeer

from .peers import LOOPBACK, room
from .stock_aiortc import StockPeer

pytestmark = pytest.mark.integration


async def wait_open(channel) -> None:
    for _ in range(200):
        if channel.readyState == "open":
            return
        await asyncio.sleep(0.025)
    raise AssertionError(f"channel {channel.label} never opened: {channel.readyState}")


async def test_icepeer_offers_to_stock_aiortc(signaling_server):
    name = room()
    stock = StockPeer()
    attempt = icepeer.connect(signaling_server.url, name, host_addresses=LOOPBACK, timeout=10)
    task = asyncio.ensure_future(attempt)
    await asyncio.sleep(0.2)  # icepeer joins first: it offers
    stock.start(signaling_server.url, name)
    peer = await task
    try:
        assert peer.role.value == "offerer"
        chat = await peer.channel("chat")
        theirs = await asyncio.wait_for(stock.channels.get(), 5)
        await wait_open(theirs)
        assert theirs.label == "chat" and theirs.ordered
        await chat.send("hello aiortc")
        assert await asyncio.wait_for(stock.messages["chat"].get(), 5) == "hello aiortc"
        big = bytes(range(256)) * 200  # 51,200 bytes: fragmented both ways
        theirs.send(big)
        theirs.send("")
        theirs.send(b"")
        assert await asyncio.wait_for(chat.recv(), 5) == big
        assert await asyncio.wait_for(chat.recv(), 5) == ""
        assert await asyncio.wait_for(chat.recv(), 5) == b""
        for i in range(300):
            await chat.send(f"n{i}")
        got = [await asyncio.wait_for(stock.messages["chat"].get(), 5) for _ in range(300)]
        assert got == [f"n{i}" for i in range(300)]
        assert await peer.drain()
        # A channel the stock peer opens, unordered and partially reliable.
        lossy = stock.watch(stock.pc.createDataChannel("lossy", ordered=False, maxRetransmits=0))
        accepted = await asyncio.wait_for(peer.accept_channel(), 5)
        assert (accepted.label, accepted.ordered, accepted.max_retransmits) == ("lossy", False, 0)
        await wait_open(lossy)
        lossy.send(b"x")
        assert await asyncio.wait_for(accepted.recv(), 5) == b"x"
        # Closing a channel resets its stream on both sides (RFC 8831 6.7).
        await chat.close()
        for _ in range(100):
            if theirs.readyState == "closed":
                break
            await asyncio.sleep(0.05)
        assert theirs.readyState == "closed"
    finally:
        await stock.close()
    closed = await asyncio.wait_for(peer.wait_closed(), 10)
    assert closed.graceful, closed
    await peer.close()


async def test_stock_aiortc_offers_to_icepeer(signaling_server):
    name = room()
    stock = StockPeer()
    stock.start(signaling_server.url, name, offer_channel="chat")
    await asyncio.sleep(0.3)  # aiortc joins first: it offers
    async with icepeer.connect(signaling_server.url, name, host_addresses=LOOPBACK, timeout=10) as peer:
        assert peer.role.value == "answerer"
        chat = await asyncio.wait_for(peer.channel("chat"), 5)
        theirs = await stock.channels.get()
        await wait_open(theirs)
        theirs.send("from aiortc")
        assert await asyncio.wait_for(chat.recv(), 5) == "from aiortc"
        await chat.send(b"\x00from icepeer")
        assert await asyncio.wait_for(stock.messages["chat"].get(), 5) == b"\x00from icepeer"
        mine = await peer.open_channel("from-icepeer", ordered=False, max_packet_lifetime=500)
        opened = await asyncio.wait_for(stock.channels.get(), 5)
        assert (opened.label, opened.ordered, opened.maxPacketLifeTime) == ("from-icepeer", False, 500)
        await mine.send("timed")
        assert await asyncio.wait_for(stock.messages["from-icepeer"].get(), 5) == "timed"
        await stock.close()
        closed = await asyncio.wait_for(peer.wait_closed(), 10)
        assert closed.graceful, closed
