"""TURN credentials that expire during a connection (coturn's REST API, time-limited credentials).

The signaling server mints TURN credentials valid for ``--turn-ttl`` (an hour
by default). coturn checks their time on each new allocation (an existing
one refreshes on them past that time), so an ICE restart late in a
connection (the TURN server restarted, the network changed) must allocate
with fresh credentials, asked from the signaling server, or find no relay.
"""

from __future__ import annotations

import asyncio
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
