"""Direct wherever direct works: a relayed pair that won the first checks is replaced by a direct one.

The two peers bind host candidates on two loopback addresses of their own,
and an iptables rule drops UDP between those addresses while ICE runs: the
only pairs that answer go through coturn (on 127.0.0.1). Once the relayed
pair is selected the rule goes, as a NAT mapping or a lost first check would
let a direct check through a moment later. Stock aioice stays on the relay
for good; icepeer moves both sides to the direct pair without losing a
message, then frees the TURN allocation.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from collections.abc import Iterator

import pytest

import icepeer
from icepeer.agent import Agent
from tests.conftest import require_root_netns
from tests.integration.peers import channels, room

pytestmark = pytest.mark.integration

A, B = "127.87.0.2", "127.87.0.3"
RULES = [["-s", A, "-d", B, "-p", "udp", "-j", "DROP"], ["-s", B, "-d", A, "-p", "udp", "-j", "DROP"]]


@contextlib.contextmanager
def direct_blocked() -> Iterator[contextlib.ExitStack]:
    """Drop UDP between A and B until the returned stack is closed (early, or on exit)."""
    require_root_netns()
    with contextlib.ExitStack() as stack:
        for rule in RULES:
            subprocess.run(["iptables", "-I", "INPUT", *rule], check=True)
            stack.callback(subprocess.run, ["iptables", "-D", "INPUT", *rule], check=False)
        yield stack


def agent_of(peer: icepeer.Peer) -> Agent:
    agent = peer._conn.monitor.agent
    assert agent is not None
    return agent


def path_types(peer: icepeer.Peer) -> tuple[str, str]:
    report = peer.report()
    assert report.local is not None and report.remote is not None
    return report.local.type, report.remote.type


async def next_path_change(peer: icepeer.Peer) -> icepeer.PathChanged:
    async for event in peer.events():
        if isinstance(event, icepeer.PathChanged):
            return event
    raise AssertionError("closed without a path change")


async def connect_blocked(signaling_server, coturn) -> tuple[icepeer.Peer, icepeer.Peer]:
    """A on 127.87.0.2 and B on 127.87.0.3, with TURN; call inside ``direct_blocked()``: the relay wins."""
    servers = [coturn.turn_url("udp", credentials=True)]
    name = room()
    a, b = await asyncio.gather(
        icepeer.connect(signaling_server.url, name, ice_servers=servers, host_addresses=[A], timeout=10),
        icepeer.connect(signaling_server.url, name, ice_servers=servers, host_addresses=[B], timeout=10),
    )
    return a, b


async def test_a_relayed_pair_that_won_is_replaced_by_a_direct_one(signaling_server, coturn):
    with direct_blocked() as blocked:
        first, second = await connect_blocked(signaling_server, coturn)
        try:
            assert "relay" in path_types(first) and "relay" in path_types(second)
            reliable = await channels(first, second, "r")
            unordered = await channels(first, second, "u", ordered=False, max_retransmits=0)
            moves = asyncio.gather(next_path_change(first), next_path_change(second))
            # Messages flow across the move: sent before, during and after it.
            sending = asyncio.ensure_future(_send_numbers(reliable[0], unordered[0], 400, pause=0.005))
            await asyncio.sleep(0.2)
            blocked.close()  # the direct path works from now on
            events = await asyncio.wait_for(moves, 8)
            await sending
            got = [await asyncio.wait_for(reliable[1].recv(), 5) for _ in range(400)]
            assert got == [str(n) for n in range(400)]  # every reliable message, in order

            for peer, event in zip((first, second), events, strict=True):
                assert event.reason == "direct"
                assert (event.local.type, event.remote.type) == path_types(peer)
                assert "relay" not in path_types(peer), path_types(peer)
            assert {path_types(first)[0], path_types(second)[0]} <= {"host", "prflx"}

            # The TURN allocation goes once the peer's data came the new way (and a grace).
            async with asyncio.timeout(5):
                while any(p.local_candidate.type == "relay" for p in agent_of(first).protocols):
                    await asyncio.sleep(0.1)
            # And the direct path carries both ways.
            await reliable[1].send("back")
            assert await asyncio.wait_for(reliable[0].recv(), 5) == "back"
        finally:
            await asyncio.gather(first.close(), second.close())


#: A STUN USE-CANDIDATE attribute (type 0x0025, length 0): only the controlling side's checks carry it.
USE_CANDIDATE = ["-m", "string", "--algo", "bm", "--hex-string", "|00250000|"]


async def test_the_controlled_side_waits_for_the_nomination_of_a_direct_pair_it_checked(signaling_server, coturn):
    # The controlled side's own check of the direct pair succeeds first (the
    # controlling side's checks, which carry USE-CANDIDATE, are dropped for a
    # while). Its search used to end right there: the path policy freed that
    # pair's socket, and the nomination that followed came to a closed port,
    # one side moved and the other did not (seen in CI under load).
    with direct_blocked() as blocked:
        first, second = await connect_blocked(signaling_server, coturn)
        try:
            controlling, controlled = (first, second) if agent_of(first).ice_controlling else (second, first)
            sources = (A, B) if controlling is first else (B, A)
            nominations = ["-s", sources[0], "-d", sources[1], "-p", "udp", *USE_CANDIDATE, "-j", "DROP"]
            subprocess.run(["iptables", "-I", "INPUT", *nominations], check=True)
            blocked.callback(subprocess.run, ["iptables", "-D", "INPUT", *nominations], check=False)
            moves = asyncio.gather(next_path_change(first), next_path_change(second))
            for rule in RULES:  # the direct path works, but for the nominations
                subprocess.run(["iptables", "-D", "INPUT", *rule], check=True)
            agent = agent_of(controlled)
            async with asyncio.timeout(4):
                while not any(p.state.name == "SUCCEEDED" and "relay" not in (p.local_candidate.type,
                              p.remote_candidate.type) for p in agent._check_list):
                    await asyncio.sleep(0.02)
            await asyncio.sleep(0.3)  # long enough for the old search to end and the policy to free
            subprocess.run(["iptables", "-D", "INPUT", *nominations], check=True)
            events = await asyncio.wait_for(moves, 8)
            assert [e.reason for e in events] == ["direct", "direct"]
            reliable = await channels(first, second, "r")
            await reliable[0].send("over the direct path")
            assert await asyncio.wait_for(reliable[1].recv(), 5) == "over the direct path"
            assert "relay" not in path_types(first) and "relay" not in path_types(second)
        finally:
            await asyncio.gather(first.close(), second.close())


async def _send_numbers(reliable: icepeer.Channel, unordered: icepeer.Channel, count: int, *,
                        pause: float) -> None:
    for n in range(count):
        await reliable.send(str(n))
        await unordered.send(str(n))
        await asyncio.sleep(pause)


async def test_without_a_direct_path_the_relay_stays_and_is_kept(signaling_server, coturn):
    # The search ends with nothing better: the relay is the path; its allocation
    # is kept, everything else freed, and the connection keeps working.
    with direct_blocked():
        first, second = await connect_blocked(signaling_server, coturn)
        try:
            reliable = await channels(first, second, "r")
            agent = agent_of(first)
            assert agent.searching
            async with asyncio.timeout(10):
                while agent.searching:
                    await reliable[0].send("ping")
                    assert await reliable[1].recv() == "ping"
                    await asyncio.sleep(0.2)
            assert "relay" in path_types(first)
            selected = agent.selected
            assert selected is not None
            async with asyncio.timeout(5):
                while len(agent.protocols) > 2:  # ours, and the one the peer's data comes through
                    await reliable[1].send("pong")
                    await reliable[0].recv()
                    await asyncio.sleep(0.1)
            assert selected.protocol in agent.protocols
            await reliable[1].send("still here")
            assert await asyncio.wait_for(reliable[0].recv(), 5) == "still here"
        finally:
            await asyncio.gather(first.close(), second.close())
