"""The programs in examples/ run as a user runs them: subprocesses against the real servers.

Every peer gathers host candidates on 127.0.0.1 only (``--host-address``) or
is relay-only through a coturn on loopback: no packet leaves the machine.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from pathlib import Path

import pytest

from icepeer.coturn import Coturn, free_port
from signaling.server import ServerConfig, SignalingServer
from tests.conftest import require_coturn

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
LOOPBACK = ["--host-address", "127.0.0.1"]


async def start(example: str, *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLES / example),
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


async def finish(proc: asyncio.subprocess.Process, timeout: float = 30) -> tuple[int, str, str]:
    """Close stdin if still open, wait for the exit; (code, stdout, stderr)."""
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def run(example: str, *args: str, timeout: float = 30) -> tuple[int, str, str]:
    return await finish(await start(example, *args), timeout)


async def read_line(proc: asyncio.subprocess.Process, timeout: float = 15) -> str:
    assert proc.stdout is not None
    return (await asyncio.wait_for(proc.stdout.readline(), timeout)).decode().rstrip("\n")


async def wait_for_stderr(
    proc: asyncio.subprocess.Process, words: str, timeout: float = 15
) -> None:
    assert proc.stderr is not None
    async with asyncio.timeout(timeout):
        while words not in (await proc.stderr.readline()).decode():
            pass


def no_traceback(*texts: str) -> None:
    for text in texts:
        assert "Traceback" not in text, text


@pytest.mark.parametrize("example", ["chat.py", "echo.py", "coturn_rest.py", "reliability.py"])
async def test_help(example):
    code, out, err = await run(example, "--help")
    assert code == 0, err
    assert "--signal" in out and "--ice-server" in out


# -- chat ----------------------------------------------------------------------


async def test_chat_between_two_terminals(signaling_server):
    room = ["--signal", signaling_server.url, "--room", "kitchen", *LOOPBACK]
    a, b = await start("chat.py", *room), await start("chat.py", *room)
    assert a.stdin is not None and b.stdin is not None
    a.stdin.write(b"hello from a\nand more\n")
    b.stdin.write(b"hello from b\n")
    assert await read_line(b) == "hello from a"
    assert await read_line(b) == "and more"
    assert await read_line(a) == "hello from b"
    # a ends (Ctrl-D); b's input is still open, yet b ends too: the peer closed the chat.
    a.stdin.close()
    (code_a, _, err_a), (code_b, _, err_b) = await asyncio.gather(finish(a), finish(b))
    assert (code_a, code_b) == (0, 0), err_a + err_b
    assert "connected: host -> host over udp" in err_a
    assert "closed: closed" in err_a
    # b hears a's "bye" then sees it leave, or sees DTLS close first: both are a graceful end.
    assert re.search(r"closed: peer (left|closed the connection)\n", err_b), err_b
    no_traceback(err_a, err_b)


async def test_chat_without_a_signaling_server_says_so():
    dead = f"ws://127.0.0.1:{free_port()}"
    code, _, err = await run("chat.py", "--signal", dead, "--room", "x", *LOOPBACK)
    assert code == 1
    assert err.startswith("error: ") and "signaling server" in err
    no_traceback(err)


# -- echo ----------------------------------------------------------------------


async def test_echo_serves_clients_one_after_another(signaling_server):
    common = ["--signal", signaling_server.url, "--room", "echo", *LOOPBACK]
    service = await start("echo.py", *common, "-v", "serve", "--clients", "3")
    await wait_for_stderr(service, "waiting for the peer")  # the service is in the room
    # Three clients at once: the room holds two, so they take turns (room-full, retry).
    results = await asyncio.gather(
        *(run("echo.py", *common, "ask", f"hi {i}", f"bye {i}") for i in range(3))
    )
    for i, (code, out, err) in enumerate(results):
        assert code == 0, err
        assert out.splitlines() == [f"hi {i}", f"bye {i}"]
    code, out, err = await finish(service)
    assert code == 0, err
    assert out.splitlines() == ["served client 1", "served client 2", "served client 3"]
    no_traceback(err, *(e for _, _, e in results))


async def test_echo_clients_that_meet_each_other_retry(signaling_server):
    common = ["--signal", signaling_server.url, "--room", "echo", *LOOPBACK]
    # Both clients are in the room before the service: they connect to each other,
    # see no echo channel within --wait, leave, and try again until the service has them.
    clients = [
        await start("echo.py", *common, "-v", "ask", "--wait", "1", f"word {i}") for i in range(2)
    ]
    await asyncio.sleep(1.0)
    service = await start("echo.py", *common, "serve", "--clients", "2")
    results = [await finish(c) for c in clients]
    assert [(code, out) for code, out, _ in results] == [(0, "word 0\n"), (0, "word 1\n")]
    assert any("was not the service" in err for _, _, err in results)
    code, out, err = await finish(service)
    assert code == 0, err
    assert out.splitlines() == ["served client 1", "served client 2"]


async def test_echo_client_gives_up_when_nobody_serves(signaling_server):
    code, out, err = await run(
        "echo.py",
        "--signal",
        signaling_server.url,
        "--room",
        "nobody",
        *LOOPBACK,
        "ask",
        "--timeout",
        "1",
        "hello",
    )
    assert code == 1
    assert out == ""
    assert "error: no echo from room 'nobody' within 1 s" in err
    no_traceback(err)


# -- coturn REST credentials ----------------------------------------------------

USERNAME = re.compile(r"username '(\d{10}):[A-Za-z0-9_-]{22}'")


async def test_coturn_rest_self_contained():
    require_coturn()
    code, out, err = await run("coturn_rest.py", "--ttl", "300")
    assert code == 0, err
    expiry = int(USERNAME.search(out).group(1))
    assert "expires in 300 s" in out or "expires in 299 s" in out, out
    assert expiry > 1_700_000_000
    assert out.count("path relay -> relay over udp") == 2, out
    assert len(re.findall(r"got: hello from ", out)) == 2


async def test_coturn_rest_against_a_running_deployment():
    require_coturn()
    secret = "deployment-secret"
    async with Coturn(secret=secret) as turn:
        config = ServerConfig(
            port=0, turn_secret=secret, turn_urls=[turn.turn_url("udp")], turn_ttl=120
        )
        async with SignalingServer(config) as server:
            args = ["--signal", server.url, "--room", "deployed"]
            (code_a, out_a, err_a), (code_b, out_b, err_b) = await asyncio.gather(
                run("coturn_rest.py", *args), run("coturn_rest.py", *args)
            )
    assert (code_a, code_b) == (0, 0), err_a + err_b
    for out in (out_a, out_b):
        assert "path relay -> relay over udp" in out
        assert f"via 127.0.0.1:{turn.port}" in out


async def test_coturn_rest_wrong_secret_fails_with_a_reason():
    require_coturn()
    async with Coturn(secret="the-real-one") as turn:
        config = ServerConfig(port=0, turn_secret="a-stale-one", turn_urls=[turn.turn_url("udp")])
        async with SignalingServer(config) as server:
            args = ["--signal", server.url, "--room", "stale", "--timeout", "8"]
            results = await asyncio.gather(
                run("coturn_rest.py", *args), run("coturn_rest.py", *args)
            )
    assert [code for code, _, _ in results] == [1, 1]
    errors = [err for _, _, err in results]
    # The first to hear 401 says so and leaves; the other may see it go first.
    assert any(
        "error: relay-only, and every TURN server refused us" in e and "401" in e for e in errors
    ), errors
    assert all(e.startswith("error: ") for e in errors), errors
    no_traceback(*errors)


# -- reliability ----------------------------------------------------------------


async def reliability(*args: str) -> dict:
    code, out, err = await run("reliability.py", *args, "--json", timeout=60)
    assert code == 0, err
    return json.loads(out)


async def test_reliability_without_loss_everything_arrives_in_order(signaling_server):
    result = await reliability(
        "--signal", signaling_server.url, *LOOPBACK, "--count", "60", "--interval", "1"
    )
    assert result["path"] == "host -> host over udp"
    for label, got in result["channels"].items():
        assert (got["arrived"], got["lost"], got["out_of_order"]) == (60, 0, 0), label


async def test_reliability_with_loss_shows_the_difference(signaling_server, coturn):
    result = await reliability(
        "--signal",
        signaling_server.url,
        *LOOPBACK,
        "--ice-server",
        coturn.turn_url("udp", credentials=True),
        "--loss",
        "0.15",
        "--count",
        "150",
        "--interval",
        "2",
        "--grace",
        "0.5",
    )
    assert result["path"].startswith("relay -> ")
    assert result["dropped_by_forwarder"] > 0
    reliable, unordered, unreliable = (
        result["channels"][k] for k in ("reliable", "unordered", "unreliable")
    )
    # Everything arrives on the reliable channels; in order only on the ordered one.
    assert (reliable["arrived"], reliable["out_of_order"]) == (150, 0)
    assert unordered["arrived"] == 150
    assert unordered["out_of_order"] > 0  # messages overtook a retransmitted one
    # What max_retransmits=0 loses stays lost. (15% loss on ~150 single-packet messages:
    # P(no loss at all) is about 0.85**150, 3e-11.)
    assert 0 < unreliable["lost"] < 150
