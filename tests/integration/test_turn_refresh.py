"""TURN credentials that expire during a connection (coturn's REST API, time-limited credentials).

The signaling server mints TURN credentials valid for ``--turn-ttl`` (an hour
by default). coturn checks their time on each new allocation (an existing
one refreshes on them past that time), so an ICE restart late in a
connection (the TURN server restarted, the network changed) must allocate
with fresh credentials, asked from the signaling server, or find no relay.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os

import pytest

import icepeer
from icepeer.coturn import Coturn, free_port
from signaling.server import ServerConfig, SignalingServer
from tests.conftest import require_coturn
from tests.integration.peers import channels, two_peers

pytestmark = pytest.mark.integration


async def _path_changed(peer: icepeer.Peer) -> list[icepeer.PeerEvent]:
    events = []
    async for event in peer.events():
        events.append(event)
        if isinstance(event, (icepeer.PathChanged, icepeer.Closed)):
            return events
    return events


async def test_an_ice_restart_after_the_turn_credentials_expired_allocates_with_fresh_ones():
    require_coturn()
    secret = os.urandom(16).hex()
    async with Coturn(secret=secret, port=free_port()) as turn:
        config = ServerConfig(port=0, turn_secret=secret, turn_urls=[turn.turn_url("udp")], turn_ttl=2)
        async with SignalingServer(config) as server:
            async with two_peers(server.url, relay_only=True, timeout=10, peer_timeout=15) as (a, b):
                ca, cb = await channels(a, b)
                await ca.send("before")
                assert await cb.recv() == "before"
                await asyncio.sleep(3)  # the credentials from the join have expired
                await turn.restart()  # every allocation is gone: both sides restart ICE
                events = await asyncio.wait_for(_path_changed(a), 20)
                assert isinstance(events[-1], icepeer.PathChanged), events
                assert a.report().local.type == "relay" and a.report().ice_restarts >= 1
                await ca.send("after the restart")
                assert await asyncio.wait_for(cb.recv(), 5) == "after the restart"
                await cb.send("and back")
                assert await asyncio.wait_for(ca.recv(), 5) == "and back"


async def test_a_hostile_server_cannot_make_the_peer_ask_without_end():
    # A signaling server that says its credentials last a millisecond, and answers
    # every request the same way: the peer asks at most once a second.
    from websockets.asyncio.server import serve

    requests: list[float] = []

    async def handler(ws) -> None:
        async for frame in ws:
            kind = json.loads(frame).get("type")
            if kind == "join":
                await ws.send(json.dumps({"type": "joined", "room": "r", "peer_id": "p", "peers": [],
                                          "ice_servers": [], "ice_servers_ttl": 0.001}))
            elif kind == "ice-servers":
                requests.append(asyncio.get_running_loop().time())
                await ws.send(json.dumps({"type": "ice-servers", "ice_servers": [], "ice_servers_ttl": 0.001}))

    async with serve(handler, "127.0.0.1", 0, subprotocols=["icepeer.v1"]) as server:
        port = server.sockets[0].getsockname()[1]
        with pytest.raises(icepeer.ConnectFailed, match="no peer joined"):
            await icepeer.connect(f"ws://127.0.0.1:{port}", "r", host_addresses=["127.0.0.1"], timeout=3.5)
    assert 2 <= len(requests) <= 4, requests  # asked, and no more than once a second
    assert all(b - a >= 0.9 for a, b in itertools.pairwise(requests))
