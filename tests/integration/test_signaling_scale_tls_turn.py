"""Load, TLS, shutdown and minted TURN credentials against real servers."""

from __future__ import annotations

import asyncio
import os
import signal
import ssl
import sys
import time

import pytest
from aioice import stun
from aioice.turn import create_turn_endpoint
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from icepeer.coturn import Coturn
from signaling.client import SignalingClient, join
from signaling.protocol import PeerJoined, Relayed
from signaling.server import ServerConfig, SignalingServer
from signaling.turn_rest import mint
from tests.certs import make_certificate
from tests.conftest import require_coturn


async def test_200_clients_in_100_rooms_relay_concurrently(signaling_server):
    url = signaling_server.url
    rooms = [f"room-{i}" for i in range(100)]
    firsts = await asyncio.gather(*(SignalingClient.connect(url, r) for r in rooms))
    seconds = await asyncio.gather(*(SignalingClient.connect(url, r) for r in rooms))
    try:
        assert all(s.peers == [f.peer_id] for f, s in zip(firsts, seconds))
        assert all(isinstance(e, PeerJoined) for e in await asyncio.gather(*(f.recv() for f in firsts)))

        async def chat(a, b, n=20):
            for i in range(n):
                await a.signal(b.peer_id, {"i": i, "room": a.room})
                await b.signal(a.peer_id, {"i": i, "room": b.room})
            got_b = [await b.recv() for _ in range(n)]
            got_a = [await a.recv() for _ in range(n)]
            assert got_b == [Relayed(a.peer_id, {"i": i, "room": a.room}) for i in range(n)]
            assert got_a == [Relayed(b.peer_id, {"i": i, "room": b.room}) for i in range(n)]

        async with asyncio.timeout(30):
            await asyncio.gather(*(chat(f, s) for f, s in zip(firsts, seconds)))
        assert signaling_server.metrics.connections == 200
        assert signaling_server.hub.room_count == 100
        assert signaling_server.hub.relayed == 100 * 40
    finally:
        await asyncio.gather(*(c.leave() for c in firsts + seconds))


async def _start_server_process(*args):
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "signaling", "--port", "0", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    line = (await asyncio.wait_for(proc.stdout.readline(), 10)).decode()
    assert line.startswith("listening on "), line
    return proc, line.split()[-1]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_graceful_shutdown(signum):
    proc, url = await _start_server_process()
    try:
        async with join(url, "r") as a:
            ws = await connect(url)
            await ws.send('{"type":"join","room":"r"}')
            await ws.recv()
            started = time.monotonic()
            proc.send_signal(signum)
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 3)
            assert ws.close_code == 1001
            code = await asyncio.wait_for(proc.wait(), 3)
            assert code == 0
            assert time.monotonic() - started < 2.0
            del a
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_usage_errors_exit_2_without_traceback():
    for args in (["--ice-server", "turn:u:secret@h"], ["--turn-secret", "x"], ["--port", "nope"],
                 ["--ice-server", "http://x"]):
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "signaling", *args,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 10)
        assert proc.returncode == 2, (args, err)
        assert b"Traceback" not in err and b"error" in err


async def test_wss(tmp_path):
    certfile, keyfile = make_certificate(tmp_path)
    async with SignalingServer(ServerConfig(host="localhost", port=0, certfile=certfile, keyfile=keyfile)) as server:
        assert server.url.startswith("wss://localhost:")
        trusted = ssl.create_default_context(cafile=certfile)
        async with join(server.url, "tls", ssl_context=trusted) as a, \
                join(server.url, "tls", ssl_context=trusted) as b:
            assert b.peers == [a.peer_id]
        # A client that does not trust the certificate is refused, clearly.
        with pytest.raises(Exception, match="CERTIFICATE_VERIFY_FAILED"):
            await SignalingClient.connect(server.url, "tls", ssl_context=ssl.create_default_context())


class _Sink(asyncio.DatagramProtocol):
    pass


async def _allocate(turn: Coturn, username: str, password: str):
    transport, _ = await create_turn_endpoint(
        _Sink, server_addr=(turn.host, turn.port), username=username, password=password)
    relayed = transport.get_extra_info("sockname")
    transport.close()
    return relayed


async def test_minted_turn_credentials_work_with_real_coturn():
    require_coturn()
    secret = os.urandom(16).hex()
    async with Coturn(secret=secret) as turn:
        config = ServerConfig(port=0, turn_secret=secret, turn_urls=[turn.turn_url("udp")], turn_ttl=300)
        async with SignalingServer(config) as server, join(server.url, "turn") as client:
            (entry,) = client.ice_servers
            relayed = await _allocate(turn, entry["username"], entry["credential"])
            assert relayed[0] == "127.0.0.1"
        # Expired credentials are refused.
        old = mint(secret, "peer", -60)
        with pytest.raises(stun.TransactionFailed) as info:
            await _allocate(turn, old.username, old.password)
        assert info.value.response.error_code == 401
        # Forged ones (another secret) are refused.
        forged = mint("not-the-secret", "peer", 300)
        with pytest.raises(stun.TransactionFailed) as info:
            await _allocate(turn, forged.username, forged.password)
        assert info.value.response.error_code == 401
