"""``icepeer connect`` and ``icepeer demo`` as subprocesses, against real servers."""

from __future__ import annotations

import asyncio
import signal

import pytest

from icepeer.code import parse_code

from .cli import finish, run, start


def connect_args(server, room, *extra):
    return ["connect", "--room", room, "--signal", server.url, "--host-address", "127.0.0.1", "--json", *extra]


async def test_two_peers_chat_with_json_events(signaling_server, coturn):
    turn = coturn.turn_url("udp", credentials=True)
    a = await start(*connect_args(signaling_server, "cli-chat", "--ice-server", turn))
    b = await start(*connect_args(signaling_server, "cli-chat", "--ice-server", coturn.stun_url()))
    # b lingers so that a's lines reach it before it leaves; a ends first.
    ra, rb = await asyncio.gather(
        finish(a, "hello from a\nsecond line\n", linger=1.0),
        finish(b, "hello from b\n", linger=3.0),
    )
    assert ra.code == 0, ra.stderr
    assert rb.code == 0, rb.stderr
    for result, got in ((ra, ["hello from b"]), (rb, ["hello from a", "second line"])):
        events = result.events  # every stdout line is JSON
        connected = events[0]
        assert connected["event"] == "connected"
        assert set(connected) == {"event", "local", "remote", "elapsed_ms", "accelerated", "phases", "rtt_ms"}
        assert connected["accelerated"] == ["snap", "sped", "preagreed"]  # two icepeer peers
        assert [p["phase"] for p in connected["phases"]][:2] == ["ice_connected", "dtls_connected"]
        assert connected["local"]["type"] == "host" and connected["local"]["protocol"] == "udp"
        assert set(connected["local"]) == {"type", "address", "port", "protocol"}
        assert [e["data"] for e in events if e["event"] == "message"] == got
        assert events[-1]["event"] == "closed" and events[-1]["reason"]
        assert "connected via host -> host over udp in" in result.stderr
    assert rb.events[-1]["reason"] == "peer closed the connection"


async def test_words_without_json(signaling_server):
    a = await start("connect", "--room", "words", "--signal", signaling_server.url, "--host-address", "127.0.0.1")
    b = await start("connect", "--room", "words", "--signal", signaling_server.url, "--host-address", "127.0.0.1")
    ra, rb = await asyncio.gather(finish(a, "plain line\n", linger=1.0), finish(b, "", linger=2.5))
    assert ra.code == rb.code == 0
    assert rb.stdout == "plain line\n"
    assert "joined room words, waiting for the peer" in ra.stderr + rb.stderr


async def test_no_peer_in_time_exits_1(signaling_server):
    result = await run(*connect_args(signaling_server, "lonely", "--timeout", "1"))
    assert result.code == 1
    assert result.events == [{"event": "error", "message": "no peer joined room 'lonely' within 1 s"}]
    assert "Traceback" not in result.stderr


async def test_dead_signaling_server_exits_1():
    from icepeer.coturn import free_port

    result = await run("connect", "--room", "x", "--signal", f"ws://127.0.0.1:{free_port()}", "--timeout", "3")
    assert result.code == 1
    assert "cannot reach signaling server" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "args, words",
    [
        (["--ice-server", "http://stun.example"], "unknown scheme"),
        (["--ice-server", "turn:host:99999"], "bad port"),
        (["--room", "no spaces allowed"], "bad room name"),
        (["--timeout", "soon"], "invalid float"),
    ],
)
async def test_usage_errors_exit_2(args, words):
    result = await run("connect", *args)
    assert result.code == 2
    assert words in result.stderr
    assert "Traceback" not in result.stderr


async def test_environment_variables_are_flags(signaling_server, monkeypatch):
    result = await finish(
        await start("connect", "--json", env={"ICEPEER_ROOM": "env-room", "ICEPEER_SIGNAL": signaling_server.url,
                                              "ICEPEER_TIMEOUT": "1"}))
    assert result.code == 1
    assert "env-room" in result.events[0]["message"]
    help_text = (await run("connect", "--help")).stdout
    for var in ("ICEPEER_ROOM", "ICEPEER_SIGNAL", "ICEPEER_ICE_SERVERS", "ICEPEER_RELAY_ONLY", "ICEPEER_JSON",
                "ICEPEER_TIMEOUT"):
        assert var in help_text


async def test_without_room_a_code_is_made(signaling_server):
    result = await run("connect", "--signal", signaling_server.url, "--timeout", "1")
    assert result.code == 1
    line = next(l for l in result.stderr.splitlines() if l.startswith("code: "))
    code = line.split()[1]
    made = parse_code(code)  # a nameplate picked on the server, and two words
    assert made.nameplate is not None and len(made.words) == 2
    assert f"on the other machine: icepeer connect {code} --signal {signaling_server.url}" in result.stderr


async def test_killed_peer_is_detected(signaling_server):
    a = await start(*connect_args(signaling_server, "killed"))
    b = await start(*connect_args(signaling_server, "killed"))
    assert b'"connected"' in await asyncio.wait_for(a.stdout.readline(), 15)
    assert b'"connected"' in await asyncio.wait_for(b.stdout.readline(), 15)
    b.send_signal(signal.SIGKILL)
    await b.wait()
    out, err = await asyncio.wait_for(a.communicate(), 15)
    assert a.returncode == 1, err
    assert b'"closed"' in out and b"without closing" in out


async def test_relay_only_cli(signaling_server, coturn):
    args = ("--relay-only", "--ice-server", coturn.turn_url("tcp", credentials=True))
    a = await start(*connect_args(signaling_server, "cli-relay", *args))
    b = await start(*connect_args(signaling_server, "cli-relay", *args))
    ra, rb = await asyncio.gather(finish(a, "via turn\n", linger=1.0), finish(b, "", linger=2.5))
    assert ra.code == rb.code == 0, ra.stderr + rb.stderr
    assert ra.events[0]["local"]["type"] == "relay" and ra.events[0]["local"]["protocol"] == "tcp"
    assert [e["data"] for e in rb.events if e["event"] == "message"] == ["via turn"]


async def test_demo():
    result = await run("demo", timeout=60)
    assert result.code == 0, result.stderr
    assert "peer A received: hello from peer B" in result.stdout
    assert "peer B received: hello from peer A" in result.stdout
    assert "path host -> host over udp" in result.stdout
    assert "path relay -> relay over udp" in result.stdout
