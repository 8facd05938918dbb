"""``icepeer punch`` run as a user runs it: two processes, stdin lines, JSON events, exit codes.

The signaling server and coturn (the STUN server) run in the test process on
free loopback ports; the CLIs bind to 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
from pathlib import Path

import pytest

ICEPEER = Path(sys.executable).with_name("icepeer")
LOOPBACK = "127.0.0.1"


def env() -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ICEPEER_")}
    clean["PYTHONUNBUFFERED"] = "1"
    return clean


class Cli:
    """One ``icepeer punch`` process."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []

    @classmethod
    async def start(cls, *args: str) -> Cli:
        assert ICEPEER.exists(), f"the icepeer entry point is missing: {ICEPEER}"
        proc = await asyncio.create_subprocess_exec(
            str(ICEPEER), "punch", *args, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env())
        return cls(proc)

    async def event(self, timeout: float = 10.0) -> dict:
        assert self.proc.stdout is not None
        raw = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        assert raw, "stdout closed"
        line = raw.decode()
        self.lines.append(line)
        return json.loads(line)  # every stdout line is one JSON object

    def say(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text.encode() + b"\n")

    def eof(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()

    async def finish(self, timeout: float = 10.0) -> tuple[int, list[dict], str]:
        """Exit code, the remaining stdout events, all of stderr."""
        out, err = await asyncio.wait_for(self.proc.communicate(), timeout)
        events = [json.loads(line) for line in out.decode().splitlines()]
        return self.proc.returncode or 0, events, err.decode()

    def kill(self) -> None:
        with __import__("contextlib").suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGKILL)


def punch_args(server, turn, room: str, *extra: str) -> list[str]:
    return ["--json", "--room", room, "--signal", server.url, "--ice-server", turn.stun_url(),
            "--ice-server", turn.turn_url(), "--bind", LOOPBACK, "--timeout", "10", *extra]


def check_connected(event: dict) -> None:
    assert event["event"] == "connected"
    assert set(event) == {"event", "local", "remote", "elapsed_ms"}
    for end in (event["local"], event["remote"]):
        assert end["type"] in ("host", "srflx", "prflx")
        assert end["address"] == LOOPBACK and end["protocol"] == "udp"
        assert isinstance(end["port"], int) and 0 < end["port"] < 65536
    assert isinstance(event["elapsed_ms"], int) and 0 <= event["elapsed_ms"] < 10000


async def test_two_clis_chat_and_exit_0(signaling_server, coturn):
    a = await Cli.start(*punch_args(signaling_server, coturn, "e2e-chat"))
    b = await Cli.start(*punch_args(signaling_server, coturn, "e2e-chat"))
    try:
        a_conn, b_conn = await a.event(), await b.event()
        check_connected(a_conn)
        check_connected(b_conn)
        assert a_conn["local"] == b_conn["remote"] and a_conn["remote"] == b_conn["local"]
        a.say("hello from a")
        b.say("hello from b")
        b.say("¿qué tal? 你好")
        assert await b.event() == {"event": "message", "data": "hello from a"}
        assert await a.event() == {"event": "message", "data": "hello from b"}
        assert await a.event() == {"event": "message", "data": "¿qué tal? 你好"}
        # A's last line and its end of input at once: the line still arrives, then A leaves.
        a.say("bye")
        a.eof()
        code_a, rest_a, err_a = await a.finish()
        assert (code_a, rest_a) == (0, [{"event": "closed", "reason": "stdin closed"}])
        assert re.search(r"connected via host -> host over udp in \d+ ms", err_a)
        assert "Traceback" not in err_a
        b.eof()
        code_b, rest_b, err_b = await b.finish()
        assert code_b == 0, err_b
        assert rest_b == [{"event": "message", "data": "bye"},
                          {"event": "closed", "reason": "the peer closed the connection"}]
        assert "Traceback" not in err_b
    finally:
        a.kill()
        b.kill()


async def test_plain_mode_prints_lines(signaling_server, coturn):
    args = punch_args(signaling_server, coturn, "e2e-plain")
    args.remove("--json")
    a = await Cli.start(*args)
    b = await Cli.start(*punch_args(signaling_server, coturn, "e2e-plain"))
    try:
        check_connected(await b.event())
        b.say("plain text please")
        b.eof()
        assert (await b.finish())[0] == 0
        a.eof()
        out, err = await asyncio.wait_for(a.proc.communicate(), 10)
        assert out.decode() == "plain text please\n", err.decode()
        assert "connected via host -> host over udp" in err.decode()
        assert a.proc.returncode == 0
    finally:
        a.kill()
        b.kill()


async def test_a_killed_peer_means_exit_1(signaling_server, coturn):
    a = await Cli.start(*punch_args(signaling_server, coturn, "e2e-kill"))
    b = await Cli.start(*punch_args(signaling_server, coturn, "e2e-kill"))
    try:
        check_connected(await a.event())
        check_connected(await b.event())
        b.kill()
        await b.proc.wait()
        code, events, err = await a.finish(timeout=8)
        assert code == 1
        assert len(events) == 1 and events[0]["event"] == "closed"
        assert "left the room" in events[0]["reason"]
        assert "Traceback" not in err
    finally:
        a.kill()
        b.kill()


async def test_nobody_comes_exit_1_with_an_error_event(signaling_server):
    cli = await Cli.start("--json", "--signal", signaling_server.url, "--bind", LOOPBACK,
                          "--timeout", "1")
    code, events, err = await cli.finish()
    assert code == 1
    assert events == [{"event": "error", "message": events[0]["message"]}]
    assert "nobody joined room" in events[0]["message"]
    # Without --room a fresh code is made and shown on stderr.
    assert re.search(r"room code: [0-9a-f]{4}(-[0-9a-f]{4}){4}\n", err)
    assert "joined room" in err and "waiting for the peer" in err
    assert "Traceback" not in err


async def test_unreachable_signaling_exit_1(signaling_server):
    from icepeer.coturn import free_port

    cli = await Cli.start("--json", "--room", "x", "--signal", f"ws://{LOOPBACK}:{free_port()}",
                          "--bind", LOOPBACK, "--timeout", "2")
    code, events, err = await cli.finish()
    assert code == 1 and events[0]["event"] == "error"
    assert "cannot reach signaling server" in events[0]["message"]
    assert "Traceback" not in err


@pytest.mark.parametrize("args, words", [
    (["--ice-server", "stun:"], "missing host"),
    (["--room", "no spaces allowed"], "bad room name"),
    (["--dead-timeout", "0"], "must be more than 0"),
    (["--relay-only"], "the puncher has no relay"),
    (["--bind", "::1"], "IPv4 only"),
])
async def test_usage_errors_exit_2_without_traceback(args, words):
    cli = await Cli.start("--room", "x", "--signal", "ws://127.0.0.1:9", *args)
    code, _, err = await cli.finish()
    assert code == 2, err
    assert words in err
    assert "Traceback" not in err
