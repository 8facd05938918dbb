"""The CLI's one place for errors: exception -> ``error: ...``, JSON event, exit code.

Each test runs ``main()`` as ``python -m icepeer`` does, with the command's
network call replaced by one that raises: no sockets.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from icecommon.urls import BadUrl
from icepeer.cli import main
from icepeer.errors import ConfigError, ConnectFailed, IcepeerError, SignalingFailed

PUNCH = ["punch", "--room", "r", "--signal", "ws://127.0.0.1:9"]


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # ICEPEER_JSON and friends would change the defaults the parser is built with.
    for name in list(os.environ):
        if name.startswith("ICEPEER_"):
            monkeypatch.delenv(name)


def _raising(monkeypatch: pytest.MonkeyPatch, exc: BaseException) -> None:
    def punch_connect(*args: Any, **kwargs: Any) -> Any:
        raise exc

    monkeypatch.setattr("icepeer.cli.punch.punch_connect", punch_connect)


CASES = [
    (ConfigError("bad option"), 2),
    (BadUrl("not a STUN/TURN URL: 'x'"), 2),
    (IcepeerError("it failed"), 1),
    (ConnectFailed("no peer joined room 'r' within 1 s"), 1),
    (SignalingFailed("signaling server unreachable"), 1),
]
IDS = [type(exc).__name__ for exc, _ in CASES]


@pytest.mark.parametrize(("exc", "code"), CASES, ids=IDS)
def test_errors_are_words_on_stderr_and_an_exit_code(monkeypatch, capsys, exc, code):
    _raising(monkeypatch, exc)
    assert main(PUNCH) == code
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"error: {exc}\n"


@pytest.mark.parametrize(("exc", "code"), CASES, ids=IDS)
def test_with_json_an_error_is_also_an_event_on_stdout(monkeypatch, capsys, exc, code):
    _raising(monkeypatch, exc)
    assert main([*PUNCH, "--json"]) == code
    out, err = capsys.readouterr()
    event = json.dumps({"event": "error", "message": str(exc)}, separators=(",", ":"))
    assert out.splitlines() == [event]
    assert err == f"error: {exc}\n"


def test_a_usage_error_raised_by_the_command_itself(capsys):
    assert main([*PUNCH, "--relay-only", "--json"]) == 2
    out, err = capsys.readouterr()
    message = "the puncher has no relay: --relay-only belongs to 'icepeer connect'"
    assert [json.loads(line) for line in out.splitlines()] == [{"event": "error",
                                                                "message": message}]
    assert err == f"error: {message}\n"


def test_a_command_without_events_reports_on_stderr_only(capsys):
    # nat-type --json prints one result object, never events: its error stays on stderr.
    assert main(["nat-type", "--json"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == "error: --ice-server stun:HOST[:PORT] is required\n"


def test_ctrl_c_exits_130_quietly(monkeypatch, capsys):
    _raising(monkeypatch, KeyboardInterrupt())
    assert main([*PUNCH, "--json"]) == 130
    assert capsys.readouterr() == ("", "")


@pytest.mark.parametrize("exc", [RuntimeError("a bug"), ValueError("also a bug")])
def test_a_bug_is_not_swallowed(monkeypatch, capsys, exc):
    _raising(monkeypatch, exc)
    with pytest.raises(type(exc), match="bug"):
        main([*PUNCH, "--json"])
    out, err = capsys.readouterr()
    assert "error" not in out and "error:" not in err
