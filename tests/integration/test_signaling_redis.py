"""Server processes sharing rooms through a real redis-server (``--redis``).

Each server is a separate ``python -m signaling`` process on a free loopback
port; Redis is a real ``redis-server`` started by the test, killed and
started again where the test says so.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator

import pytest
from websockets.asyncio.client import ClientConnection, connect

from signaling.server import ServerConfig, SignalingServer
from tests.certs import make_certificate
from tests.conftest import require_redis
from tests.redis_server import RedisServer


class ServerProcess:
    """``python -m signaling --redis URL`` on a free loopback port."""

    def __init__(self, redis_url: str, *args: str) -> None:
        self.args = ["--redis", redis_url, "--port", "0", "--join-timeout", "0",
                     "--log-level", "warning", *args]
        self.proc: asyncio.subprocess.Process | None = None
        self.url = ""

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "signaling", *self.args,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert self.proc.stdout is not None
        line = (await asyncio.wait_for(self.proc.stdout.readline(), 15)).decode()
        assert line.startswith("listening on "), line
        self.url = line.split()[-1]

    @property
    def http(self) -> str:
        return self.url.replace("ws://", "http://")

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()


@pytest.fixture
async def servers(redis_server: RedisServer) -> AsyncIterator[list[ServerProcess]]:
    """Two server processes on one Redis."""
    procs = [ServerProcess(redis_server.url), ServerProcess(redis_server.url)]
    try:
        await asyncio.gather(*(p.start() for p in procs))
        yield procs
    finally:
        await asyncio.gather(*(p.stop() for p in procs))


async def recv(ws: ClientConnection, timeout: float = 5.0) -> dict:
    async with asyncio.timeout(timeout):
        return json.loads(await ws.recv())


async def join(url: str, room: str) -> tuple[ClientConnection, dict]:
    ws = await connect(url, subprotocols=["icepeer.v1"])
    await ws.send(json.dumps({"type": "join", "room": room}))
    return ws, await recv(ws)


def http_get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


async def test_a_room_spans_two_processes_in_order(servers):
    p1, p2 = servers
    a, ja = await join(p1.url, "span")
    b, jb = await join(p2.url, "span")
    assert ja["type"] == jb["type"] == "joined"
    assert ja["peers"] == [] and jb["peers"] == [ja["peer_id"]]
    assert await recv(a) == {"type": "peer-joined", "peer_id": jb["peer_id"]}
    # Both ways at once, 150 each (within the default burst of 200): every
    # frame arrives, in the order sent.
    n = 150

    async def send_all(ws, to):
        for i in range(n):
            await ws.send(json.dumps({"type": "signal", "to": to, "data": {"i": i}}))

    await asyncio.gather(send_all(a, jb["peer_id"]), send_all(b, ja["peer_id"]))
    got_b = [await recv(b) for _ in range(n)]
    got_a = [await recv(a) for _ in range(n)]
    assert got_b == [{"type": "signal", "from": ja["peer_id"], "data": {"i": i}} for i in range(n)]
    assert got_a == [{"type": "signal", "from": jb["peer_id"], "data": {"i": i}} for i in range(n)]
    # Errors are the same as on one process.
    await b.send(json.dumps({"type": "signal", "to": "nobody", "data": 1}))
    assert (await recv(b))["code"] == "unknown-peer"
    # Leaving on process 2 is peer-left on process 1, after everything B sent.
    await b.send(json.dumps({"type": "signal", "to": ja["peer_id"], "data": "last"}))
    await b.send('{"type":"leave"}')
    assert (await recv(a))["data"] == "last"
    assert await recv(a) == {"type": "peer-left", "peer_id": jb["peer_id"]}
    # The seat is free again, and a third process-crossing join sees A alone.
    c, jc = await join(p2.url, "span")
    assert jc["peers"] == [ja["peer_id"]]
    for ws in (a, b, c):
        await ws.close()


async def test_room_full_holds_across_processes_under_a_race(servers):
    # 30 rooms, 4 peers racing for each (2 per process, all at once): exactly
    # 2 seats per room are handed out, whatever the interleaving.
    p1, p2 = servers
    rooms = [f"race-{i}" for i in range(30)]
    attempts = [join(url, room) for room in rooms for url in (p1.url, p2.url, p1.url, p2.url)]
    results = await asyncio.gather(*attempts)
    try:
        for k, room in enumerate(rooms):
            replies = [r[1] for r in results[4 * k:4 * k + 4]]
            kinds = sorted(r["type"] if r["type"] == "joined" else r["code"] for r in replies)
            assert kinds == ["joined", "joined", "room-full", "room-full"], (room, replies)
            joined = [r for r in replies if r["type"] == "joined"]
            # The second one in was told about the first.
            assert sorted(len(r["peers"]) for r in joined) == [0, 1]
    finally:
        await asyncio.gather(*(ws.close() for ws, _ in results))


async def test_a_killed_process_leaves_no_ghost(redis_server):
    p1, p2 = ServerProcess(redis_server.url), ServerProcess(redis_server.url)
    await asyncio.gather(p1.start(), p2.start())
    try:
        a, ja = await join(p1.url, "ghost")
        b, jb = await join(p2.url, "ghost")
        assert (await recv(a))["type"] == "peer-joined"
        started = time.monotonic()
        p2.proc.send_signal(signal.SIGKILL)
        left = await recv(a, timeout=15)
        took = time.monotonic() - started
        assert left == {"type": "peer-left", "peer_id": jb["peer_id"]}, left
        assert took < 15
        # The seat is free: a newcomer sees only A, and A hears of it.
        c, jc = await join(p1.url, "ghost")
        assert jc["type"] == "joined" and jc["peers"] == [ja["peer_id"]]
        assert await recv(a) == {"type": "peer-joined", "peer_id": jc["peer_id"]}
        status, metrics = await asyncio.to_thread(http_get, p1.http + "/metrics")
        assert "icepeer_signaling_reaped_peers_total 1" in metrics
        for ws in (a, c):
            await ws.close()
    finally:
        await asyncio.gather(p1.stop(), p2.stop())


async def test_redis_down_then_restarted_empty(servers, redis_server):
    p1, p2 = servers
    a, ja = await join(p1.url, "outage")
    b, jb = await join(p2.url, "outage")
    assert (await recv(a))["type"] == "peer-joined"
    c, jc = await join(p2.url, "leaver")
    d, jd = await join(p1.url, "leaver")
    assert (await recv(c))["type"] == "peer-joined"

    await redis_server.stop()
    # A new join gets the new error code (after the servers notice: at most a beat).
    async with asyncio.timeout(10):
        while True:
            ws, reply = await join(p1.url, "newcomer")
            await ws.close()
            if reply["type"] == "error":
                break
            await asyncio.sleep(0.2)
    assert reply["code"] == "unavailable" and "Redis" in reply["message"]
    status, body = await asyncio.to_thread(http_get, p1.http + "/healthz")
    assert status == 503
    # Open connections stay open. A signal to the other process is lost, and
    # the sender is told so; nothing arrives at B for it.
    await a.send(json.dumps({"type": "signal", "to": jb["peer_id"], "data": "lost"}))
    assert (await recv(a))["code"] == "unavailable"
    # C leaves while Redis is down: D must still hear of it later.
    await c.close()

    await redis_server.start()  # empty: no persistence, as after a crash
    # Service resumes by itself: both processes report healthy, and take joins.
    async with asyncio.timeout(10):
        while [(await asyncio.to_thread(http_get, p.http + "/healthz"))[0] for p in (p1, p2)] != [200, 200]:
            await asyncio.sleep(0.1)
    ws, reply = await join(p2.url, "after")
    assert reply["type"] == "joined"
    await ws.close()
    # The servers wrote their peers back: A and B still share a room.
    await a.send(json.dumps({"type": "signal", "to": jb["peer_id"], "data": "back"}))
    got = await recv(b)
    assert got == {"type": "signal", "from": ja["peer_id"], "data": "back"}, got
    await b.send(json.dumps({"type": "signal", "to": ja["peer_id"], "data": "hi"}))
    assert (await recv(a))["data"] == "hi"
    # D heard that C left during the outage, within seconds of Redis being
    # back (not only from the comparison of rooms --redis-node-ttl later).
    assert await recv(d, timeout=4) == {"type": "peer-left", "peer_id": jc["peer_id"]}
    # The room is full again: a third is refused, across processes.
    e, je = await join(p1.url, "outage")
    assert je["code"] == "room-full"
    for ws in (a, b, d, e):
        await ws.close()


async def test_rediss_with_a_private_ca(tmp_path):
    require_redis()
    certfile, keyfile = make_certificate(tmp_path)
    async with RedisServer(tls=(certfile, keyfile)) as redis:
        url = f"{redis.url}?ssl_ca_certs={certfile}"
        async with SignalingServer(ServerConfig(port=0, redis=url)) as s1, \
                SignalingServer(ServerConfig(port=0, redis=url)) as s2:
            assert s1.rooms.available and s2.rooms.available
            a, ja = await join(s1.url, "tls")
            b, jb = await join(s2.url, "tls")
            assert jb["peers"] == [ja["peer_id"]]
            await b.send(json.dumps({"type": "signal", "to": ja["peer_id"], "data": 1}))
            assert (await recv(a))["type"] == "peer-joined"
            assert (await recv(a))["data"] == 1
            await a.close()
            await b.close()


async def test_a_password_protected_redis_and_another_database():
    require_redis()
    async with RedisServer(password="s3cret-pw") as redis:
        url = redis.url.replace("/0", "/3")
        async with SignalingServer(ServerConfig(port=0, redis=url)) as s1, \
                SignalingServer(ServerConfig(port=0, redis=url)) as s2:
            a, ja = await join(s1.url, "auth")
            b, jb = await join(s2.url, "auth")
            await b.send(json.dumps({"type": "signal", "to": ja["peer_id"], "data": "through db 3"}))
            assert (await recv(a))["type"] == "peer-joined"
            assert (await recv(a))["data"] == "through db 3"
            await a.close()
            await b.close()
        # The wrong password: the server runs, says why in its log, answers joins
        # `unavailable`, and /healthz says 503.
        wrong = url.replace("s3cret-pw", "wrong")
        async with SignalingServer(ServerConfig(port=0, redis=wrong)) as s3:
            ws, reply = await join(s3.url, "auth")
            assert reply["code"] == "unavailable"
            status, _ = await asyncio.to_thread(http_get, s3.url.replace("ws://", "http://") + "/healthz")
            assert status == 503
            await ws.close()


async def test_redis_password_only_through_the_environment():
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "signaling", "--redis", "redis://:hunter2@127.0.0.1:1/0",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={k: v for k, v in os.environ.items() if not k.startswith("SIGNALING_")},
    )
    out, err = await asyncio.wait_for(proc.communicate(), 10)
    assert proc.returncode == 2
    assert b"SIGNALING_REDIS" in err and b"Traceback" not in err
