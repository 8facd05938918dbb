"""Two punchers on loopback through the real signaling server, with coturn as STUN server.

Every socket is bound to 127.0.0.1 and every candidate is a loopback one:
nothing is sent anywhere else.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import socket
import time

import pytest
from aioice import stun as codec

from icepeer.coturn import free_port
from icepeer.errors import ChannelClosed, ConnectFailed, PeerLost, SignalingFailed
from icepeer.punch import CandidateType, PunchConfig
from icepeer.punch.link import PunchLink, punch_connect
from signaling.client import join

LOOPBACK = "127.0.0.1"


async def pair(url: str, room: str, stun: list[str], **kwargs) -> tuple[PunchLink, PunchLink]:
    a, b = await asyncio.gather(
        punch_connect(url, room, stun=stun, bind=LOOPBACK, timeout=5, **kwargs),
        punch_connect(url, room, stun=stun, bind=LOOPBACK, timeout=5, **kwargs),
    )
    return a, b


async def test_two_punchers_connect_through_signaling_and_coturn(signaling_server, coturn):
    started = time.monotonic()
    # The TURN URL is accepted and ignored: the puncher does not relay.
    stun = [coturn.stun_url(), coturn.turn_url("udp", credentials=True)]
    a, b = await pair(signaling_server.url, "punch-basic", stun)
    async with a, b:
        assert time.monotonic() - started < 2.0
        for me, peer in ((a, b), (b, a)):
            assert me.local.addr == me.local_address
            assert me.remote.addr == peer.local_address
            # On loopback the STUN answer equals the host address: one candidate, host.
            assert me.local.type is CandidateType.HOST and me.remote.type is CandidateType.HOST
            report = me.report()
            assert report.stun_mapped == [me.local_address], "coturn answered the Binding request"
            assert report.stun_errors == []
            assert report.rtt is not None and report.rtt < 0.5
            assert 0 < report.timings["connected"] == me.elapsed
        await a.send("hello b")
        await a.send(b"\x00binary\xff")
        await b.send("hello a")
        assert await b.recv() == "hello b"
        assert await b.recv() == b"\x00binary\xff"
        assert await a.recv() == "hello a"
        await a.send_datagram("a datagram")
        assert await asyncio.wait_for(b.recv_datagram(), 2) == "a datagram"
        assert await a.drain() and await b.drain()
        await a.close()
        assert await asyncio.wait_for(b.lost, 2) == (True, "the peer closed the connection")
        with pytest.raises(PeerLost):
            await b.recv()
        with pytest.raises(PeerLost):
            await b.send("too late")
        with pytest.raises(ChannelClosed):
            await a.send("after close")
    for link in (a, b):
        # Nothing foreign here: at most probes that came before the offer, or after the end.
        assert set(link.report().ignored) <= {"early", "closed"}


async def test_many_messages_arrive_in_order_with_backpressure(signaling_server, coturn):
    a, b = await pair(signaling_server.url, "punch-many", [coturn.stun_url()],
                      config=PunchConfig(window=8))
    async with a, b:
        count = 300

        async def sender() -> None:
            for i in range(count):
                await a.send(f"line {i} " + "x" * 200)

        task = asyncio.create_task(sender())
        got = [await asyncio.wait_for(b.recv(), 5) for _ in range(count)]
        await task
        assert got == [f"line {i} " + "x" * 200 for i in range(count)]
        assert await asyncio.wait_for(a.drain(), 5)
        assert a.report().messages_sent == count == b.report().messages_received


def garbage(port: int) -> list[bytes]:
    """Datagrams a stranger might throw at a puncher's socket."""
    bad_stun = bytearray(bytes(codec.Message(codec.Method.BINDING, codec.Class.REQUEST)))
    attr = b"\x00\x24\x00\x02\x00\x01\x00\x00"  # PRIORITY of the wrong length: struct.error in aioice
    bad_stun[2:4] = len(attr).to_bytes(2, "big")
    stray_response = codec.Message(codec.Method.BINDING, codec.Class.RESPONSE)
    stray_response.attributes["XOR-MAPPED-ADDRESS"] = (LOOPBACK, port)
    head = b"IPUN" + bytes([1, 1, 0, 0]) + b"\x00" * 8 + b"\x00\x00\x00\x01"
    return [
        b"",
        b"hello?",
        b"\x16\xfe\xfd" + bytes(60),
        b"IPUN\x01",
        head + hmac.new(b"guess", head, hashlib.sha256).digest()[:16],
        bytes(bad_stun),
        bytes(stray_response),
        bytes(range(256)) * 4,
    ]


async def test_foreign_and_malformed_packets_do_no_harm(signaling_server, coturn):
    """A stranger sprays the socket before, during and after the punch: nothing breaks."""
    port = free_port(LOOPBACK, tcp=False)
    stop = asyncio.Event()
    sent = 0

    async def spray() -> None:
        nonlocal sent
        junk = garbage(port)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)
            while not stop.is_set():
                for data in junk:
                    with contextlib.suppress(OSError):  # port unreachable until A binds
                        sock.sendto(data, (LOOPBACK, port))
                        sent += 1
                await asyncio.sleep(0.005)

    sprayer = asyncio.create_task(spray())
    try:
        a, b = await asyncio.gather(
            punch_connect(signaling_server.url, "punch-junk", stun=[coturn.stun_url()],
                          bind=LOOPBACK, port=port, timeout=5),
            punch_connect(signaling_server.url, "punch-junk", stun=[coturn.stun_url()],
                          bind=LOOPBACK, timeout=5),
        )
        async with a, b:
            assert a.local_address == (LOOPBACK, port)
            for i in range(20):
                await b.send(f"message {i}")
                await asyncio.sleep(0.005)
            assert [await asyncio.wait_for(a.recv(), 2) for _ in range(20)] == \
                [f"message {i}" for i in range(20)]
            await a.send("still fine")
            assert await asyncio.wait_for(b.recv(), 2) == "still fine"
            report = a.report()
            assert report.packets_ignored > 20
            assert {"foreign", "malformed", "token", "stun"} <= set(report.ignored)
            assert not a.lost.done() and not b.lost.done()
            # B saw no stranger; at most A's first probes, before A's offer reached it.
            assert set(b.report().ignored) <= {"early"}
    finally:
        stop.set()
        await sprayer
    assert sent > 0


async def test_a_crashed_peer_that_left_signaling_is_lost_quickly(signaling_server, coturn):
    a, b = await pair(signaling_server.url, "punch-crash", [coturn.stun_url()])
    async with a:
        await b.abort()  # no goodbye on the path; signaling says peer-left
        started = time.monotonic()
        graceful, reason = await asyncio.wait_for(a.lost, 5)
        assert not graceful and "left the room" in reason
        assert time.monotonic() - started < 3.0


async def test_silence_on_the_path_is_a_dead_peer(signaling_server, coturn):
    config = PunchConfig(dead_timeout=1.0)
    a, b = await pair(signaling_server.url, "punch-silent", [coturn.stun_url()], config=config)
    async with a:
        await b.abort(leave=False)  # the path dies, signaling stays
        started = time.monotonic()
        graceful, reason = await asyncio.wait_for(a.lost, 5)
        assert (graceful, reason) == (False, "no packet from the peer for 1 s")
        assert 0.5 < time.monotonic() - started < 2.0
        # A sent nothing, so nothing is undelivered: drain() says so at once, dead path or not.
        assert await asyncio.wait_for(a.drain(), 1.0) is True
        assert a.session.all_delivered
        await b.close()


async def test_nobody_comes(signaling_server):
    started = time.monotonic()
    with pytest.raises(ConnectFailed, match="nobody joined room 'punch-empty'"):
        await punch_connect(signaling_server.url, "punch-empty", bind=LOOPBACK, timeout=0.5)
    assert time.monotonic() - started < 2.0


async def test_a_peer_that_never_answers_is_given_up_after_the_tries(signaling_server):
    """The peer offers a loopback port where nobody listens: the probes go unanswered."""
    dead_port = free_port(LOOPBACK, tcp=False)
    config = PunchConfig(max_tries=5, final_wait=0.2)
    async with join(signaling_server.url, "punch-deaf") as fake:

        async def offer_nothing() -> None:
            event = await fake.recv()  # peer-joined
            await fake.signal(event.peer_id, {"punch": {
                "v": 1, "token": "ab" * 8, "key": "cd" * 16,
                "candidates": [{"type": "host", "address": LOOPBACK, "port": dead_port}]}})

        task = asyncio.create_task(offer_nothing())
        started = time.monotonic()
        with pytest.raises(ConnectFailed, match="no answer from the peer after 5 punch packets"):
            await punch_connect(signaling_server.url, "punch-deaf", bind=LOOPBACK, timeout=5,
                                config=config)
        assert time.monotonic() - started < 2.0
        await task


@pytest.mark.parametrize("data, match", [
    ({"type": "offer", "sdp": "v=0\r\n"}, "'offer', not a punch offer"),
    ({"punch": {"v": 1, "token": "ab", "key": "cd" * 16, "candidates": []}}, "bad offer"),
])
async def test_a_peer_that_speaks_something_else(signaling_server, data, match):
    async with join(signaling_server.url, "punch-other") as fake:

        async def answer() -> None:
            event = await fake.recv()
            await fake.signal(event.peer_id, data)

        task = asyncio.create_task(answer())
        with pytest.raises(ConnectFailed, match=match):
            await punch_connect(signaling_server.url, "punch-other", bind=LOOPBACK, timeout=1.0)
        await task


async def test_signaling_failures_are_signaling_failed(signaling_server):
    port = free_port(LOOPBACK)
    with pytest.raises(SignalingFailed, match="cannot reach signaling server"):
        await punch_connect(f"ws://{LOOPBACK}:{port}", "r", bind=LOOPBACK, timeout=2)
    async with join(signaling_server.url, "punch-full"), join(signaling_server.url, "punch-full"):
        with pytest.raises(SignalingFailed) as info:
            await punch_connect(signaling_server.url, "punch-full", bind=LOOPBACK, timeout=2)
        assert info.value.code == "room-full"


async def test_lost_waits_until_earlier_messages_are_read(signaling_server):
    """chat() stops at ``lost``: a line that came before the goodbye must be printed first."""
    a, b = await pair(signaling_server.url, "punch-order", [])
    async with a:
        await b.send("last line")
        assert await b.drain()
        await b.close()
        await asyncio.sleep(0.2)  # the goodbye has arrived
        assert a.session.state.value == "closed" and not a.lost.done()
        assert await a.recv() == "last line"
        assert a.lost.done() and a.lost.result() == (True, "the peer closed the connection")


async def test_lost_resolves_anyway_when_nobody_reads(signaling_server):
    a, b = await pair(signaling_server.url, "punch-unread", [])
    async with a:
        await b.send("never read")
        assert await b.drain()
        await b.close()
        started = time.monotonic()
        assert await asyncio.wait_for(a.lost, 3) == (True, "the peer closed the connection")
        assert time.monotonic() - started > 0.5
        assert await a.recv() == "never read"  # still there to read
