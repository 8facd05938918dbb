"""Bounded memory between two real peers: a reader that stops, and a sender that ignores the window."""

from __future__ import annotations

import asyncio
import struct

import pytest

import icepeer
from icepeer.channel import HIGH_WATER
from icepeer.sctp.association import MAX_PACKET
from icepeer.sctp.receiver import OVERHEAD

from .peers import channels, two_peers

pytestmark = pytest.mark.integration

BUFFER = 512 * 1024


async def test_a_paused_reader_shrinks_the_window_and_loses_nothing(signaling_server):
    async with two_peers(signaling_server.url, receive_buffer=BUFFER) as (a, b):
        ca, cb = await channels(a, b, "flood")
        count = 1024  # 16 MiB of 16 KiB messages: 32 times the receive buffer
        payload = b"f" * (16384 - 4)

        async def flood() -> None:
            for i in range(count):
                await ca.send(struct.pack("!I", i) + payload)

        sender = asyncio.create_task(flood())
        await asyncio.sleep(1.5)  # b reads nothing meanwhile
        receiver = b._conn.stack.sctp.association.receiver
        held = receiver.held + receiver.unread
        assert held <= BUFFER + MAX_PACKET + OVERHEAD, held  # the window bounds what b holds
        assert receiver.a_rwnd == 0 and not sender.done()  # a's send() waits...
        assert ca.buffered_amount <= HIGH_WATER + 16384  # ...with at most its high-water mark queued
        got = [struct.unpack_from("!I", await asyncio.wait_for(cb.recv(), 10))[0] for _ in range(count)]
        await asyncio.wait_for(sender, 10)
        assert got == list(range(count))  # reading resumed the flow: everything, in order
        assert receiver.dropped <= 32  # zero-window probes only


async def test_a_sender_that_ignores_the_window_is_cut_off(signaling_server):
    async with two_peers(signaling_server.url, receive_buffer=BUFFER) as (a, b):
        ca, _ = await channels(a, b, "hostile")
        sender = a._conn.stack.sctp.association.sender

        async def hostile() -> None:
            while True:
                # Pretend the peer's window and the congestion window are always open.
                sender.peer_rwnd = sender.cwnd = 1 << 30
                await ca.send(b"h" * 16384)

        attack = asyncio.create_task(hostile())
        closed = await asyncio.wait_for(b.wait_closed(), 20)
        attack.cancel()
        assert not closed.graceful and "beyond the receive window" in closed.reason, closed
        receiver = b._conn.stack.sctp.association.receiver
        assert receiver.held + receiver.unread <= BUFFER + MAX_PACKET + OVERHEAD
        theirs = await asyncio.wait_for(a.wait_closed(), 5)
        assert not theirs.graceful and "protocol violation" in theirs.reason, theirs
        with pytest.raises(icepeer.ChannelClosed):
            await ca.send(b"after")
