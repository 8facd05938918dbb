"""The signaling server against an attacker: connection caps, a slow reader,
the TURN secret kept out of argv, /metrics kept off the public port."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import os
import resource
import socket
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from signaling.exceptions import ConfigError
from signaling.server import ServerConfig, SignalingServer


async def recv(ws, timeout=5.0):
    async with asyncio.timeout(timeout):
        return json.loads(await ws.recv())


async def join(url, room, **kw):
    ws = await connect(url, **kw)
    await ws.send(json.dumps({"type": "join", "room": room}))
    reply = await recv(ws)
    assert reply["type"] == "joined", reply
    return ws, reply


async def closed_code(ws, timeout=5.0):
    with pytest.raises(ConnectionClosed):
        async with asyncio.timeout(timeout):
            while True:
                await ws.recv()
    return ws.close_code, ws.close_reason


async def test_per_ip_cap_closes_with_1013_and_counts_idle_joined_peers():
    async with SignalingServer(ServerConfig(port=0, max_per_ip=3)) as server:
        # Three from one address: two joined and idle, one never joins. All count.
        a, _ = await join(server.url, "r1")
        b, _ = await join(server.url, "r2")
        idle = await connect(server.url)
        extra = await connect(server.url)
        code, reason = await closed_code(extra)
        assert code == 1013 and "your address" in reason
        # The others are untouched.
        await a.send('{"type":"signal","to":"x","data":1}')
        assert (await recv(a))["code"] == "unknown-peer"
        # One leaves: a seat for the address again.
        await idle.close()
        await asyncio.sleep(0.1)
        c, _ = await join(server.url, "r3")
        metrics = server.render_metrics()
        assert 'icepeer_signaling_refused_total{cap="max-per-ip"} 1' in metrics
        for ws in (a, b, c):
            await ws.close()


async def test_global_cap_closes_with_1013():
    async with SignalingServer(ServerConfig(port=0, max_connections=2)) as server:
        a = await connect(server.url)
        b = await connect(server.url)
        code, reason = await closed_code(await connect(server.url))
        assert code == 1013 and "server full" in reason
        assert 'icepeer_signaling_refused_total{cap="max-connections"} 1' in server.render_metrics()
        await a.close()
        await b.close()


def _tiny_receive_buffer_socket(port: int) -> socket.socket:
    # A reader with a small kernel buffer fills up after a few frames: the
    # server's own queue for it is what grows, as with a peer on a bad link.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.setblocking(False)
    return sock


async def test_a_slow_reader_is_closed_and_never_stalls_its_partner():
    config = ServerConfig(port=0, rate=10_000, burst=10_000, max_send_queue=64 * 1024)
    async with SignalingServer(config) as server:
        sender, js = await join(server.url, "slow")
        slow, jslow = await join(server.url, "slow", sock=_tiny_receive_buffer_socket(server.port),
                                 max_queue=1)
        assert (await recv(sender))["type"] == "peer-joined"
        # The slow reader now reads nothing. Its partner sends ~12 MB at it.
        chunk = "x" * 60_000
        for _ in range(200):
            await sender.send(json.dumps({"type": "signal", "to": jslow["peer_id"], "data": chunk}))
        # The sender's own handler is not blocked: it answers at once, and the
        # sender hears that the slow reader is gone (signals sent after that
        # are answered unknown-peer).
        await sender.send("{oops")
        seen = []
        async with asyncio.timeout(3):
            while not ({"bad-json", "peer-left"} <= set(seen)):
                reply = await recv(sender)
                seen.append(reply.get("code") or reply["type"])
                if reply["type"] == "peer-left":
                    assert reply["peer_id"] == jslow["peer_id"]
        assert set(seen) <= {"bad-json", "peer-left", "unknown-peer"}, seen
        # The slow reader, reading at last, finds the close code at the end.
        code, reason = await closed_code(slow, timeout=10)
        assert code == 4001 and "too slow" in reason
        assert "icepeer_signaling_slow_closed_total 1" in server.render_metrics()
        # The server goes on: a new partner joins and gets frames.
        other, jo = await join(server.url, "slow")
        await sender.send(json.dumps({"type": "signal", "to": jo["peer_id"], "data": "hi"}))
        assert (await recv(other))["data"] == "hi"
        while (await recv(sender))["type"] != "peer-joined":
            pass  # the unknown-peer answers still queued
        await sender.close()
        await other.close()


async def _run_server(*args, env=None, timeout=10):
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "signaling", "--port", "0", "--log-level", "warning", *args,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("SIGNALING_")}, **(env or {})},
    )
    return proc


async def test_turn_secret_from_a_file_never_in_argv(tmp_path):
    secret = os.urandom(16).hex()
    path = tmp_path / "turn-secret"
    path.write_text(secret + "\n")
    path.chmod(0o600)
    proc = await _run_server("--turn-secret-file", str(path), "--turn-url", "turn:198.51.100.1:3478")
    try:
        line = (await asyncio.wait_for(proc.stdout.readline(), 10)).decode()
        url = line.split()[-1]
        # Nobody on the machine can read the secret from the process's command line.
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes()
        assert secret.encode() not in cmdline
        ws, joined = await join(url, "turn")
        (entry,) = joined["ice_servers"]
        expiry, _, name = entry["username"].partition(":")
        assert name == joined["peer_id"]
        # Minted with the file's secret (newline stripped), short-lived by default.
        digest = hmac.new(secret.encode(), entry["username"].encode(), hashlib.sha1).digest()
        assert entry["credential"] == base64.b64encode(digest).decode()
        assert 0 < int(expiry) - time.time() <= 3600 + 5
        await ws.close()
    finally:
        proc.kill()
        await proc.wait()


async def test_turn_secret_in_argv_is_refused():
    proc = await _run_server("--turn-secret", "hunter2", "--turn-url", "turn:198.51.100.1:3478")
    _, err = await asyncio.wait_for(proc.communicate(), 10)
    assert proc.returncode == 2
    assert b"--turn-secret-file" in err and b"SIGNALING_TURN_SECRET" in err and b"Traceback" not in err


async def test_turn_secret_from_the_environment_and_bad_files(tmp_path):
    proc = await _run_server("--turn-url", "turn:198.51.100.1:3478",
                             env={"SIGNALING_TURN_SECRET": "from-env"})
    try:
        url = (await asyncio.wait_for(proc.stdout.readline(), 10)).decode().split()[-1]
        ws, joined = await join(url, "env")
        entry = joined["ice_servers"][0]
        digest = hmac.new(b"from-env", entry["username"].encode(), hashlib.sha1).digest()
        assert entry["credential"] == base64.b64encode(digest).decode()
        await ws.close()
    finally:
        proc.kill()
        await proc.wait()
    empty = tmp_path / "empty"
    empty.write_text("\n")
    for path, words in ((tmp_path / "missing", b"No such file"), (empty, b"is empty")):
        proc = await _run_server("--turn-secret-file", str(path), "--turn-url", "turn:198.51.100.1:3478")
        _, err = await asyncio.wait_for(proc.communicate(), 10)
        assert proc.returncode == 2 and words in err and b"Traceback" not in err, err


def _get(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""


async def test_metrics_on_a_separate_address_or_off():
    async with SignalingServer(ServerConfig(port=0, metrics="127.0.0.1:0")) as server:
        main = f"http://127.0.0.1:{server.port}"
        side = f"http://127.0.0.1:{server.metrics_port}"
        status, _ = await asyncio.to_thread(_get, main + "/metrics")
        assert status != 200
        status, body = await asyncio.to_thread(_get, side + "/metrics")
        assert status == 200 and "icepeer_signaling_connections 0" in body
        assert await asyncio.to_thread(_get, side + "/healthz") == (200, "ok\n")
        assert (await asyncio.to_thread(_get, side + "/other"))[0] == 404
        assert await asyncio.to_thread(_get, main + "/healthz") == (200, "ok\n")
    async with SignalingServer(ServerConfig(port=0, metrics="off")) as server:
        assert server.metrics_port is None
        status, _ = await asyncio.to_thread(_get, f"http://127.0.0.1:{server.port}/metrics")
        assert status != 200


@pytest.mark.parametrize(
    "options, words",
    [
        ({"turn_ttl": 2 * 86400}, "--turn-ttl"),
        ({"max_per_ip": 0}, "--max-per-ip"),
        ({"max_send_queue": 100}, "--max-send-queue"),
        ({"metrics": "nowhere"}, "--metrics"),
        ({"redis": "http://127.0.0.1:6379"}, "--redis"),
    ],
)
def test_bad_hardening_options_are_clear_errors(options, words):
    with pytest.raises(ConfigError, match=words):
        ServerConfig(**options).validate()


async def test_no_cap_still_stays_under_the_file_descriptor_limit():
    # With RLIMIT_NOFILE at 150 and no --max-connections, the server caps
    # itself at 150 - 64 instead of failing accept() with EMFILE (which
    # asyncio logs once per attempt, and a flood makes that a log flood).
    def low_fd_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (150, 150))

    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "signaling", "--port", "0", "--max-connections", "0",
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, preexec_fn=low_fd_limit,
    )
    conns = []
    try:
        url = (await asyncio.wait_for(proc.stdout.readline(), 10)).decode().split()[-1]
        conns = [await connect(url) for _ in range(100)]
        codes = []
        for ws in conns[80:]:
            with contextlib.suppress(ConnectionClosed, TimeoutError):
                async with asyncio.timeout(0.5):
                    await ws.recv()
            codes.append(ws.close_code)
        assert codes.count(1013) >= 10, codes
        assert all(ws.close_code is None for ws in conns[:80])
    finally:
        for ws in conns:
            await ws.close()
        proc.terminate()
        _, err = await asyncio.wait_for(proc.communicate(), 10)
    assert b"file descriptor limit allows (150): using 86" in err, err
    assert b"Too many open files" not in err and b"Traceback" not in err
