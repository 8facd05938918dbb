"""Faults a review found in the peer core, each shown with real peers (and, where said, an attacker)."""

from __future__ import annotations

import asyncio
import random
import socket

import pytest
from aioice import stun

import icepeer
from icepeer import sdp
from icepeer.agent import Agent
from icepeer.channels import MAX_UNCLAIMED
from signaling.protocol import Signal
from signaling.rooms import Hub

from .peers import LOOPBACK, channels, room, server_with_hub, two_peers

pytestmark = pytest.mark.integration


async def exchange(a: icepeer.Peer, b: icepeer.Peer, label: str = "t") -> tuple[icepeer.Channel, icepeer.Channel]:
    ca, cb = await channels(a, b, label)
    await ca.send("ping")
    assert await asyncio.wait_for(cb.recv(), 5) == "ping"
    await cb.send("pong")
    assert await asyncio.wait_for(ca.recv(), 5) == "pong"
    return ca, cb


async def eventually(condition, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.05)


# -- the connect future ------------------------------------------------------------


async def test_after_a_connect_timeout_the_peer_can_still_be_asked_and_closed(signaling_server):
    # The established future was cancelled with the timeout, and `connected`
    # and close() then raised CancelledError.
    attempt = icepeer.connect(signaling_server.url, room(), host_addresses=LOOPBACK, timeout=0.3)
    with pytest.raises(icepeer.ConnectFailed, match="no peer joined"):
        await attempt
    peer = attempt.peer
    assert peer.connected is False
    await peer.close()
    assert peer.report().path == "not connected"


async def test_after_connect_is_cancelled_the_peer_can_still_be_asked_and_closed(signaling_server):
    attempt = icepeer.connect(signaling_server.url, room(), host_addresses=LOOPBACK, timeout=10)
    task = asyncio.ensure_future(attempt)
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert attempt.peer.connected is False
    await attempt.peer.close()


# -- the agent -------------------------------------------------------------------------


async def test_agent_connect_without_gathering_fails_at_once():
    agent = Agent(ice_servers=[], host_addresses=LOOPBACK)
    agent.remote_username, agent.remote_password = "abcd", "x" * 22
    with pytest.raises(ConnectionError, match="gather"):
        await asyncio.wait_for(agent.connect(), 2)
    await agent.close()


async def test_agent_connect_fails_when_gathering_failed(monkeypatch):
    agent = Agent(ice_servers=[], host_addresses=LOOPBACK)

    async def broken() -> None:
        raise OSError("no interfaces")

    monkeypatch.setattr(agent, "gather_candidates", broken)
    agent.gather()
    agent.remote_username, agent.remote_password = "abcd", "x" * 22
    with pytest.raises(ConnectionError, match="no interfaces"):
        await asyncio.wait_for(agent.connect(), 2)
    await agent.close()


# -- what reaches DTLS, and what counts as consent ---------------------------------------


async def test_a_strangers_non_stun_datagram_in_the_stun_range_never_reaches_dtls(signaling_server):
    async with two_peers(signaling_server.url) as (a, b):
        ca, cb = await exchange(a, b)
        agent = a._conn.monitor.agent
        reached: list[bytes] = []
        original = agent.on_data

        def spy(data: bytes) -> None:
            reached.append(data)
            original(data)

        agent.on_data = spy
        target = a.report().local
        junk = [b"\x00", b"\x01\x02 not stun at all", b"\x03" + bytes(40), b"\x02" * 19]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for datagram in junk:
                s.sendto(datagram, (target.address, target.port))
        await cb.send("after")
        assert await asyncio.wait_for(ca.recv(), 5) == "after"
        assert reached, "the spy saw nothing: it was not in the path"
        assert all(19 < d[0] < 64 for d in reached), [d[:8] for d in reached]
        assert a.report().malformed_stun >= len(junk)


async def test_only_an_authenticated_answer_is_consent(signaling_server):
    # The peer's data keeps coming, but its answers to our consent checks are
    # lost: consent expires (RFC 7675), however much else arrives.
    async with two_peers(signaling_server.url, peer_timeout=2.0) as (a, b):
        ca, cb = await exchange(a, b)
        for sock in a._conn.monitor.agent.protocols:
            original = sock._stun_received

            def drop_responses(data: bytes, addr: tuple[str, int], original=original) -> None:
                if stun.parse_message(data).message_class != stun.Class.RESPONSE:
                    original(data, addr)

            sock._stun_received = drop_responses

        async def chatter() -> None:
            while True:
                await cb.send("still here")
                await asyncio.sleep(0.05)

        sender = asyncio.create_task(chatter())
        try:
            closed = await asyncio.wait_for(a.wait_closed(), 6)
        finally:
            sender.cancel()
        assert not closed.graceful and "consent expired" in closed.reason, closed
        assert a.report().ice_restarts == 0  # the path was not silent: no restart was tried


# -- DTLS failures say why -----------------------------------------------------------------


class Sha1Hub(Hub):
    """Rewrites the offer's fingerprint to SHA-1, a hash aiortc cannot check."""

    def _signal(self, session, message: Signal):
        data = message.data
        if isinstance(data, dict) and data.get("type") == "offer":
            lines = ["a=fingerprint:sha-1 " + ":".join(["AB"] * 20) if line.startswith("a=fingerprint:") else line
                     for line in data["sdp"].split("\r\n")]
            message = Signal(message.to, {**data, "sdp": "\r\n".join(lines)})
        return super()._signal(session, message)


async def test_a_dtls_failure_after_the_handshake_says_its_real_cause():
    # It used to be reported as a fingerprint mismatch ("someone may be tampering").
    server = server_with_hub(Sha1Hub(room_size=2))
    async with server:
        name = room()
        results = await asyncio.gather(
            icepeer.connect(server.url, name, host_addresses=LOOPBACK, timeout=5),
            icepeer.connect(server.url, name, host_addresses=LOOPBACK, timeout=5),
            return_exceptions=True,
        )
    for r in results:
        if isinstance(r, icepeer.Peer):
            await r.close()
    errors = [r for r in results if isinstance(r, Exception)]
    assert not any(isinstance(e, icepeer.FingerprintMismatch) for e in errors), errors
    [dtls] = [e for e in errors if isinstance(e, icepeer.DtlsFailed)]
    assert "sha-1" in str(dtls) and "sha-256" in str(dtls)


# -- bounded state against a hostile peer -------------------------------------------------------


async def test_closed_channels_are_forgotten(signaling_server):
    async with two_peers(signaling_server.url) as (a, b):
        for i in range(20):
            ca, cb = await channels(a, b, f"c{i}")
            await ca.close()
        await eventually(lambda: not a._conn.stack.channels and not b._conn.stack.channels)
        await exchange(a, b, "still-works")


async def test_a_peer_opening_channels_in_a_loop_is_refused_beyond_the_limit(signaling_server):
    async with two_peers(signaling_server.url) as (a, b):
        opener = a if a.role is icepeer.peer.Role.OFFERER else b
        other = b if opener is a else a
        opened = await asyncio.gather(*(opener.open_channel(f"spam{i}") for i in range(MAX_UNCLAIMED + 20)),
                                      return_exceptions=True)
        assert all(isinstance(c, icepeer.Channel) for c in opened)
        await eventually(lambda: len(other._conn.channels.unclaimed) == MAX_UNCLAIMED)
        await asyncio.sleep(0.3)
        assert len(other._conn.channels.unclaimed) == MAX_UNCLAIMED


async def test_a_peer_that_reoffers_in_a_loop_cannot_make_us_open_sockets_without_end(signaling_server):
    async with two_peers(signaling_server.url, peer_timeout=10.0) as (a, b):
        ca, cb = await exchange(a, b)
        peak = 0
        rng = random.Random(1)
        for _ in range(60):
            ufrag = "".join(rng.choice("abcdefgh") for _letter in range(8))
            hostile = sdp.Description(ice_ufrag=ufrag, ice_pwd=ufrag * 3, fingerprints=b._conn.stack.fingerprints(),
                                      setup="active" if a.role is icepeer.peer.Role.OFFERER else "passive")
            b._conn.link.send({"type": "offer", "sdp": hostile.to_sdp()})
            await asyncio.sleep(0.01)
            peak = max(peak, len(a._conn.monitor.agents))
        await asyncio.sleep(0.5)
        peak = max(peak, len(a._conn.monitor.agents))
        assert peak <= 2, peak
        assert len(a._conn.monitor.policy._remote_restarts) <= a._conn.monitor.policy.config.max_remote_restarts
        await cb.send("the connection survived")
        assert await asyncio.wait_for(ca.recv(), 10) == "the connection survived"


# -- freeing candidates under loss ------------------------------------------------------------------


async def test_relays_are_freed_under_loss_once_the_peer_is_heard(signaling_server, coturn, monkeypatch):
    rng = random.Random(5)
    original = Agent.send

    async def lossy(self: Agent, data: bytes) -> None:
        if rng.random() < 0.3:
            return
        await original(self, data)

    monkeypatch.setattr(Agent, "send", lossy)
    servers = [coturn.turn_url("udp", credentials=True)]
    async with two_peers(signaling_server.url, ice_servers=servers, timeout=20) as (a, b):
        await exchange(a, b)
        for peer in (a, b):
            await eventually(lambda peer=peer: peer._conn.monitor.policy.freed, 10)
            agent = peer._conn.monitor.agent
            assert [p.local_candidate.type for p in agent.protocols] == ["host"]
