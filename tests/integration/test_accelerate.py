"""SNAP, SPED and pre-agreed channels between two icepeer peers; the standard sequence otherwise.

Real peers through the real signaling server on loopback. What travels is
checked where it can be seen: the SDP, the DTLS datagrams embedded in STUN
(counted by each agent), the SCTP handshake that does not happen.
"""

from __future__ import annotations

import asyncio
import random

import pytest

import icepeer
from icepeer.agent import Agent
from icepeer.candidate_socket import CandidateSocket
from icepeer.sctp.association import Association
from icepeer.sctp.datachannels import preagreed_stream

from .peers import channels, two_peers

pytestmark = pytest.mark.integration


def negotiation(peer: icepeer.Peer):
    return peer._conn.session.negotiation


async def test_two_icepeer_peers_skip_the_sctp_handshake_and_carry_dtls_in_the_checks(signaling_server, monkeypatch):
    handshakes = []
    original = Association.start
    monkeypatch.setattr(Association, "start", lambda self, now: (handshakes.append(self), original(self, now)))
    async with two_peers(signaling_server.url) as (a, b):
        for peer in (a, b):
            n = negotiation(peer)
            assert n.snap is not None and n.sped and n.preagreed
            assert "a=sctp-init:" in n.local.to_sdp() and "sped" in n.local.ice_options
        speds = [p._conn.monitor.agent.sped.state for p in (a, b)]
        # Which side embeds what depends on who checks first; the ClientHello always rides.
        assert sum(s.embedded for s in speds) > 0 and sum(s.received_count for s in speds) > 0
        assert handshakes == []  # no INIT went out: SNAP
        # The DTLS client (the answerer) sent with its Finished: False Start (RFC 7918).
        assert [p._conn.stack.dtls.false_started for p in (a, b)] == [False, True]
        ca, cb = await channels(a, b, "x")
        assert ca.id == preagreed_stream("x")
        await ca.send("hello")
        assert await asyncio.wait_for(cb.recv(), 5) == "hello"


@pytest.mark.parametrize("which", ["a", "b", "both"])
async def test_a_peer_without_them_gets_the_standard_sequence(signaling_server, which):
    options = {"a": {"accelerate": which == "b"}, "b": {"accelerate": which == "a"}}
    if which == "both":
        options = {"a": {"accelerate": False}, "b": {"accelerate": False}}
    async with two_peers(signaling_server.url, **options) as (a, b):
        for peer in (a, b):
            n = negotiation(peer)
            assert n.snap is None and not n.sped and not n.preagreed
            assert peer._conn.monitor.agent.sped is None
            assert not peer._conn.stack.dtls.false_started
        ca, cb = await channels(a, b, "x")
        await ca.send("hello")
        assert await asyncio.wait_for(cb.recv(), 5) == "hello"


async def test_the_handshake_completes_inside_the_checks_alone(signaling_server, monkeypatch):
    # DTLS sent as is is lost until ICE has selected a pair: only what rides in
    # STUN arrives. The handshake still completes (and then data flows).
    original = Agent.send_dtls

    def embedded_only(self, datagrams):
        if self.selected_pair is not None:
            original(self, datagrams)
        elif self.sped is not None:
            self.sped.flight(datagrams)

    monkeypatch.setattr(Agent, "send_dtls", embedded_only)
    async with two_peers(signaling_server.url) as (a, b):
        ca, cb = await channels(a, b, "x")
        await ca.send("through")
        assert await asyncio.wait_for(cb.recv(), 5) == "through"
        assert any(p._conn.monitor.agent.sped.state.received_count > 0 for p in (a, b))


async def test_accelerated_peers_connect_under_heavy_loss(signaling_server, monkeypatch):
    # 20% of every datagram lost, STUN and DTLS alike: a lost embedded flight
    # is resent with later checks or answers, a lost last flight when the
    # client resends its own; nothing is lost on the channel.
    rng = random.Random(5)
    made = CandidateSocket.connection_made

    def lossy_socket(self, transport):
        sendto = transport.sendto

        def maybe(data, addr=None):
            if rng.random() >= 0.2:
                sendto(data, addr)

        transport.sendto = maybe
        made(self, transport)

    monkeypatch.setattr(CandidateSocket, "connection_made", lossy_socket)
    for _ in range(3):
        async with two_peers(signaling_server.url, timeout=15) as (a, b):
            assert negotiation(a).sped
            ca, cb = await channels(a, b, "x")
            for i in range(20):
                await ca.send(f"m{i}")
            assert [await asyncio.wait_for(cb.recv(), 10) for _ in range(20)] == [f"m{i}" for i in range(20)]
