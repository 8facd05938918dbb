"""The CLI's start: its room is joined while ICE, DTLS and SCTP load in a thread (icepeer.warmup)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading

import pytest

import icepeer
from icepeer.errors import ConfigError
from icepeer.rendezvous import Joined
from icepeer.signaling_link import SignalingLink
from icepeer.warmup import Warmup

HEAVY = ["aioice", "OpenSSL", "cryptography", "dns", "icepeer.sctp", "icepeer.stack", "icepeer.peer"]


def test_the_connect_command_loads_nothing_heavy_before_its_join():
    # What the join does not need stays out until the warm-up imports it.
    code = f"import sys, json, icepeer.cli.connect; print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == []


async def test_a_warmup_imports_in_a_thread_while_the_loop_runs(tmp_path, monkeypatch):
    (tmp_path / "slow_module_for_warmup.py").write_text(
        "import threading, time\nTHREAD = threading.current_thread().name\ntime.sleep(0.3)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.ensure_future(tick())
    warmup = Warmup(["slow_module_for_warmup", "no_such_module_for_warmup"])
    await warmup.wait()
    ticker.cancel()
    module = sys.modules["slow_module_for_warmup"]
    assert module.THREAD == "icepeer-warmup" != threading.current_thread().name
    assert ticks >= 10  # the loop went on during the 300 ms import
    assert "no_such_module_for_warmup" not in sys.modules  # a failed import is left to whoever needs it


async def test_a_room_joined_early_must_be_the_one_asked_for():
    link = SignalingLink("ws://127.0.0.1:9", "room-a", timeout=1, ssl_context=None)
    joined = Joined(link, None, 0.0, 0.0)
    with pytest.raises(ConfigError, match="another room"):
        icepeer.connect("ws://127.0.0.1:9", "room-b", joined=joined)
    with pytest.raises(ConfigError, match="another room"):
        icepeer.connect("ws://127.0.0.1:9", code="7-guitar-ribbon", joined=joined)
    icepeer.connect("ws://127.0.0.1:9", "room-a", joined=joined)  # the same room: accepted
