"""Two real peers through the real signaling server and a real coturn, on loopback."""

from __future__ import annotations

import asyncio
import random
import socket
import ssl
import struct
import time

import pytest
from aioice import stun

import icepeer
from icecommon.urls import parse_ice_url
from icepeer.candidate_socket import CandidateSocket
from icepeer.coturn import Coturn, free_port
from icepeer.sctp.datachannels import preagreed_stream
from signaling.protocol import Signal
from signaling.rooms import Hub
from tests.certs import make_certificate
from tests.conftest import require_coturn

from .peers import LOOPBACK, channels, room, server_with_hub, two_peers


async def exchange(a, b, label="t", **options):
    ca, cb = await channels(a, b, label, **options)
    await ca.send("ping")
    assert await cb.recv() == "ping"
    await cb.send(b"\x00pong")
    assert await ca.recv() == b"\x00pong"
    return ca, cb


async def test_host_connection(signaling_server):
    async with two_peers(signaling_server.url) as (a, b):
        await exchange(a, b)
        report = a.report()
        assert {a.role.value, b.role.value} == {"offerer", "answerer"}
        assert report.local.type == "host" and report.remote.type == "host"
        assert report.local.address == "127.0.0.1" and report.local.protocol == "udp"
        assert report.remote.port == b.report().local.port
        assert report.checks_answered >= 1 and report.rtt_ms is not None
        assert list(report.timings_ms) == ["joined", "peer_found", "ice_connected", "dtls_connected", "channel_open"]


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_relay_only(signaling_server, coturn, transport):
    servers = [coturn.turn_url(transport, credentials=True)]
    async with two_peers(signaling_server.url, ice_servers=servers, relay_only=True) as (a, b):
        await exchange(a, b)
        for peer in (a, b):
            report = peer.report()
            assert report.local.type == "relay" and report.local.protocol == transport
            assert report.local.server == f"127.0.0.1:{coturn.port}"
            assert report.gathered == {"relay": 1}


async def test_relay_only_over_turns(signaling_server, tmp_path):
    require_coturn()
    certfile, keyfile = make_certificate(tmp_path)
    async with Coturn(users={"u": "p"}, tls=(certfile, keyfile)) as turn:
        servers = [turn.turns_url(credentials=True)]
        trusted = ssl.create_default_context(cafile=certfile)
        async with two_peers(signaling_server.url, ice_servers=servers, relay_only=True, tls_context=trusted) as (a, b):
            await exchange(a, b)
            assert a.report().local.protocol == "tls"
        # Without trusting the certificate, the relay is refused, with the reason.
        with pytest.raises(icepeer.ConnectFailed, match="CERTIFICATE_VERIFY_FAILED"):
            async with two_peers(signaling_server.url, ice_servers=servers, relay_only=True, timeout=5):
                pass


async def test_several_stun_and_turn_servers(signaling_server, coturn):
    require_coturn()
    async with Coturn(users={"x": "y"}) as other:
        servers = [coturn.stun_url(), other.stun_url(), coturn.turn_url("udp", credentials=True),
                   other.turn_url("tcp", credentials=True)]
        async with two_peers(signaling_server.url, ice_servers=servers, relay_only=True) as (a, b):
            await exchange(a, b)
            assert a.report().gathered == {"relay": 2}


async def test_black_holed_stun_server_does_not_delay_the_connection(signaling_server):
    # A UDP socket that never answers: the STUN server is "black-holed".
    hole = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    hole.bind(("127.0.0.1", 0))
    try:
        servers = [f"stun:127.0.0.1:{hole.getsockname()[1]}"]
        async with two_peers(signaling_server.url, ice_servers=servers, gather_timeout=30) as (a, b):
            await exchange(a, b)
            # Connected while the STUN query was still pending: nothing waited for it.
            for peer in (a, b):
                report = peer.report()
                assert report.servers_abandoned == servers, report
                assert report.server_failures == {}
    finally:
        hole.close()


async def test_wrong_turn_password(signaling_server, coturn):
    bad = [coturn.turn_url("udp").replace("turn:", "turn:user:wrong@")]
    # Relay-only: a clear error naming the TURN server and the 401.
    with pytest.raises(icepeer.TurnError, match="401"):
        async with two_peers(signaling_server.url, ice_servers=bad, relay_only=True, timeout=5):
            pass
    # Policy ALL: the host path still connects, and the report says what failed.
    async with two_peers(signaling_server.url, ice_servers=bad) as (a, b):
        await exchange(a, b)
        # The report names the TURN server: refused with 401, or (on a slow
        # machine) abandoned because the host path connected before it answered.
        report = a.report()
        turn = str(parse_ice_url(bad[0]))
        assert turn in report.server_failures or turn in report.servers_abandoned, report
        if turn in report.server_failures:
            assert report.server_failures[turn].startswith("401")


class TamperingHub(Hub):
    """A man in the middle of signaling: swaps one byte of every fingerprint."""

    def _signal(self, session, message: Signal):
        data = message.data
        if isinstance(data, dict) and data.get("type") == "offer":
            lines = [
                line[:-2] + ("00" if not line.endswith("00") else "11") if line.startswith("a=fingerprint:") else line
                for line in data["sdp"].split("\r\n")
            ]
            message = Signal(message.to, {**data, "sdp": "\r\n".join(lines)})
        return super()._signal(session, message)


async def test_tampered_fingerprint_is_refused():
    server = server_with_hub(TamperingHub(room_size=2))
    async with server:
        name = room()
        results = await asyncio.gather(
            icepeer.connect(server.url, name, host_addresses=LOOPBACK, timeout=5),
            icepeer.connect(server.url, name, host_addresses=LOOPBACK, timeout=5),
            return_exceptions=True,
        )
    errors = [r for r in results if isinstance(r, Exception)]
    assert any(isinstance(e, icepeer.FingerprintMismatch) for e in errors), results
    for r in results:
        if isinstance(r, icepeer.Peer):
            await r.close()


async def test_10000_ordered_messages_arrive_intact_and_in_order(signaling_server):
    async with two_peers(signaling_server.url) as (a, b):
        ca, cb = await channels(a, b, "bulk")
        count = 10_000

        async def send():
            for i in range(count):
                await ca.send(f"{i}:" + "x" * (i % 100))

        sender = asyncio.create_task(send())
        received = [await cb.recv() for _ in range(count)]
        await sender
        assert received == [f"{i}:" + "x" * (i % 100) for i in range(count)]
        assert await a.drain()


async def test_message_size_limit(signaling_server):
    async with two_peers(signaling_server.url) as (a, b):
        ca, cb = await channels(a, b)
        await ca.send(b"y" * 65536)
        assert await cb.recv() == b"y" * 65536
        with pytest.raises(icepeer.MessageTooLarge, match="65537 bytes"):
            await ca.send(b"y" * 65537)
        with pytest.raises(icepeer.MessageTooLarge):
            await ca.send("é" * 40000)  # 80000 bytes of UTF-8
        await ca.send("still fine")
        assert await cb.recv() == "still fine"


async def test_a_channel_opened_in_band_with_other_options_is_refused(signaling_server):
    # The standard way (a browser, stock WebRTC): the offerer opens it, the answerer checks it.
    async with two_peers(signaling_server.url, accelerate=False) as (a, b):
        assert not a._conn.preagreed
        opener, other = (a, b) if a.role.value == "offerer" else (b, a)
        opened = asyncio.ensure_future(opener.open_channel("mismatch", ordered=False))
        with pytest.raises(icepeer.ConfigError, match="ordered"):
            await other.channel("mismatch", ordered=True)
        await opened


async def test_icepeer_peers_preagree_channels_by_label(signaling_server):
    # No DCEP: both sides open the same stream, and what one sends before the
    # other asked for the channel waits for it.
    async with two_peers(signaling_server.url) as (a, b):
        assert a._conn.preagreed and b._conn.preagreed
        first = await a.channel("early")
        for i in range(3):
            await first.send(f"m{i}")
        await asyncio.sleep(0.2)  # delivered to b before b asks for the channel
        second = await b.channel("early")
        assert second.id == first.id == preagreed_stream("early")
        assert [await asyncio.wait_for(second.recv(), 5) for _ in range(3)] == ["m0", "m1", "m2"]
        await second.send("back")
        assert await asyncio.wait_for(first.recv(), 5) == "back"
        with pytest.raises(icepeer.ConfigError, match="open already"):
            await a.channel("early")
        assert b._conn.channels.unclaimed == []  # nothing opened in-band


def make_lossy(peer, loss=0.2, seed=7):
    """Make the peer's outgoing path lose a fraction of its datagrams, below DTLS."""
    agent = peer._conn.monitor.agent
    original = agent.send_dtls
    rng = random.Random(seed)

    def lossy(datagrams):
        original([d for d in datagrams if rng.random() >= loss])

    agent.send_dtls = lossy


async def test_channels_of_each_reliability(signaling_server):
    async with two_peers(signaling_server.url) as (a, b):
        reliable = await channels(a, b, "reliable")
        unordered = await channels(a, b, "unordered", ordered=False)
        rexmit = await channels(a, b, "rexmit", ordered=False, max_retransmits=0)
        timed = await channels(a, b, "timed", max_packet_lifetime=1)
        for ca, cb in (reliable, unordered, rexmit, timed):
            assert (cb.ordered, cb.max_retransmits, cb.max_packet_lifetime) == (
                ca.ordered, ca.max_retransmits, ca.max_packet_lifetime)
        assert rexmit[1].max_retransmits == 0 and not rexmit[1].reliable

        # Now lose 20% of a's datagrams: the reliable channel still delivers
        # everything, in order; max_retransmits=0 loses messages but never stalls.
        make_lossy(a)
        n = 100
        for i in range(n):
            await reliable[0].send(f"r{i}")
            await rexmit[0].send(f"x{i}")
        got = [await asyncio.wait_for(reliable[1].recv(), 20) for _ in range(n)]
        assert got == [f"r{i}" for i in range(n)]
        await asyncio.sleep(0.5)
        partial = []
        while rexmit[1]._messages:
            partial.append(await rexmit[1].recv())
        assert 0 < len(partial) < n, len(partial)
        assert set(partial) <= {f"x{i}" for i in range(n)}


async def test_either_side_opens_channels(signaling_server):
    async with two_peers(signaling_server.url) as (a, b):
        for opener, acceptor in ((a, b), (b, a)):
            channel = await opener.open_channel(f"from-{opener.role.value}")
            accepted = await acceptor.accept_channel()
            assert accepted.label == channel.label
            await channel.send("hi")
            assert await accepted.recv() == "hi"


async def test_graceful_close_is_seen_by_the_peer(signaling_server):
    async with two_peers(signaling_server.url) as (a, b):
        await a.close()
        closed = await asyncio.wait_for(b.wait_closed(), 5)
        # Either DTLS's close_notify or the signaling bye arrives first: both are graceful.
        assert closed.graceful, closed
        assert closed.reason in ("peer closed the connection", "peer left"), closed


async def test_cut_network_is_detected(signaling_server, monkeypatch):
    async with two_peers(signaling_server.url, peer_timeout=2.0) as (a, b):
        await exchange(a, b)
        # Cut the network both ways below ICE: every datagram to any socket of
        # either peer is dropped, those of the ICE restart this causes too.
        monkeypatch.setattr(CandidateSocket, "datagram_received", lambda self, data, addr: None)
        closed = await asyncio.wait_for(b.wait_closed(), 6)
        assert not closed.graceful and "consent expired" in closed.reason, closed
        events = [e async for e in b.events()]
        assert isinstance(events[-1], icepeer.Closed)


MALFORMED = [
    # A STUN Binding request whose PRIORITY attribute has the wrong length:
    # aioice 0.13's stun.parse_message raises struct.error on it, not ValueError.
    struct.pack("!HHI12s", 0x0001, 8, stun.COOKIE, b"\x01" * 12) + struct.pack("!HH", 0x0024, 4)[:4] + b"\x00\x00",
    struct.pack("!HHI12s", 0x0001, 8, stun.COOKIE, b"\x02" * 12) + struct.pack("!HHH", 0x0024, 2, 7) + b"\x00\x00",
    struct.pack("!HHI12s", 0x0001, 8, stun.COOKIE, b"\x03" * 12) + struct.pack("!HHH", 0x802A, 2, 1) + b"\x00\x00",
    b"",
    b"\x00",
    b"\x17\xfe\xfd" + b"\x00" * 20,  # looks like DTLS, from a stranger
    b"random junk that is not a protocol",
]


def test_the_malformed_datagrams_do_break_aioice_parsing():
    # The fault: aioice's parser raises struct.error, which it does not catch.
    with pytest.raises(struct.error):
        stun.parse_message(MALFORMED[1])


async def test_malformed_datagrams_do_no_harm(signaling_server, coturn):
    servers = [coturn.turn_url("udp", credentials=True)]
    async with two_peers(signaling_server.url, ice_servers=servers) as (a, b):
        ca, cb = await exchange(a, b)
        target = a.report().local
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for _ in range(5):
                for datagram in MALFORMED:
                    s.sendto(datagram, (target.address, target.port))
        await asyncio.sleep(0.3)
        for i in range(20):
            await cb.send(f"after {i}")
        assert [await ca.recv() for _ in range(20)] == [f"after {i}" for i in range(20)]
        report = a.report()
        assert report.malformed_stun >= 10 and report.foreign_packets >= 10
        assert a.connected and b.connected


async def test_relay_survives_stale_nonces(signaling_server):
    require_coturn()
    async with Coturn(users={"u": "p"}, extra_args=["--stale-nonce=1"]) as turn:
        servers = [turn.turn_url("udp", credentials=True)]
        async with two_peers(signaling_server.url, ice_servers=servers, relay_only=True) as (a, b):
            ca, cb = await exchange(a, b)
            for round_ in range(3):
                await asyncio.sleep(1.5)  # every nonce is stale by now
                agent = a._conn.monitor.agent
                client = agent.turn_client_of(agent.selected)
                assert await client.probe(), client.lost_reason  # a Refresh gets 438, then succeeds
                await ca.send(f"round {round_}")
                assert await cb.recv() == f"round {round_}"
            assert client.lost_reason is None


async def test_relay_survives_the_loss_of_its_allocation(signaling_server):
    require_coturn()
    port = free_port()
    async with Coturn(users={"u": "p"}, port=port) as turn:
        servers = [turn.turn_url("udp", credentials=True)]
        async with two_peers(signaling_server.url, ice_servers=servers, relay_only=True, peer_timeout=15) as (a, b):
            ca, cb = await exchange(a, b)
            before = a.report().local
            await turn.restart()  # every allocation is gone
            events = []

            async def collect():
                async for event in a.events():
                    events.append(event)
                    if isinstance(event, icepeer.PathChanged):
                        return

            await asyncio.wait_for(collect(), 20)
            assert isinstance(events[0], icepeer.PathLost)
            after = a.report()
            assert after.local.type == "relay" and after.ice_restarts == 1
            assert (after.local.address, after.local.port) != (before.address, before.port)
            await ca.send("after the restart")
            assert await asyncio.wait_for(cb.recv(), 5) == "after the restart"


async def test_lost_handshake_datagrams_are_resent_early(signaling_server, monkeypatch):
    # Drop the first two DTLS handshake datagrams anyone sends: OpenSSL alone
    # would wait 1 s, then 2 s, to resend; icepeer resends the flight itself.
    from icepeer.agent import Agent

    dropped = []
    original = Agent.send_dtls

    def lossy(self, datagrams):
        kept = []
        for data in datagrams:
            if data[:1] == b"\x16" and len(dropped) < 2:
                dropped.append(len(data))
            else:
                kept.append(data)
        original(self, kept)

    monkeypatch.setattr(Agent, "send_dtls", lossy)
    # The standard handshake: with SPED, the flights travel in the ICE checks too.
    async with two_peers(signaling_server.url, accelerate=False) as (a, b):
        await exchange(a, b)
        assert len(dropped) == 2
        assert a._conn.stack.dtls.flights_resent + b._conn.stack.dtls.flights_resent >= 1


async def test_a_lost_data_chunk_is_resent_within_webrtc_timers(signaling_server):
    # aiortc's own timers (RFC 4960: RTO.Min 1 s) would resend a lost DATA
    # chunk after a second at least; dcsctp's (RTO.Min 400 ms) much sooner.
    async with two_peers(signaling_server.url) as (a, b):
        ca, cb = await exchange(a, b)
        agent = a._conn.monitor.agent
        original = agent.send_dtls
        dropped = []

        def drop_first_data(datagrams):
            kept = []
            for data in datagrams:
                # DTLS application data (content type 23) carrying our 1000-byte message.
                if data[:1] == b"\x17" and len(data) > 1000 and not dropped:
                    dropped.append(len(data))
                else:
                    kept.append(data)
            original(kept)

        agent.send_dtls = drop_first_data
        sent = time.monotonic()
        await ca.send(b"m" * 1000)
        assert await asyncio.wait_for(cb.recv(), 5) == b"m" * 1000
        elapsed = time.monotonic() - sent
        assert dropped, "the message was not dropped: the test did not test anything"
        assert elapsed < 0.95, f"resent after {elapsed:.2f} s: RFC 4960's 1 s minimum, not dcsctp's"


async def test_unused_candidates_are_freed_and_the_report_outlives_the_connection(signaling_server, coturn):
    servers = [coturn.turn_url("udp", credentials=True), coturn.turn_url("tcp", credentials=True)]
    async with two_peers(signaling_server.url, ice_servers=servers) as (a, b):
        await exchange(a, b)
        assert a.report().local.type == "host"
        # The direct path won, DTLS is up and the peer's data came through the
        # host candidate: the relays are released (RFC 8445 section 8.3).
        for peer in (a, b):
            agent = peer._conn.monitor.agent
            assert peer._conn.monitor.policy.freed
            assert [p.local_candidate.type for p in agent.protocols] == ["host"]
            assert agent.turn_client_of(agent.selected) is None
        path = a.report().path
    assert a.report().path == path  # still known after close


async def test_concurrent_senders_all_wake_after_backpressure(signaling_server):
    async with two_peers(signaling_server.url) as (a, b):
        ca, cb = await channels(a, b)
        count = 0

        async def drain():
            nonlocal count
            while count < 400:
                await cb.recv()
                count += 1

        async def send200():
            for _ in range(200):
                await ca.send(b"z" * 65536)  # well past the 1 MiB high-water mark

        reader = asyncio.create_task(drain())
        await asyncio.wait_for(asyncio.gather(send200(), send200()), 60)
        await asyncio.wait_for(reader, 60)
        assert count == 400
