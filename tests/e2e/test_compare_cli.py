"""``icepeer compare`` run on both sides, as subprocesses against the real servers."""

from __future__ import annotations

import asyncio
import json

from icepeer.cli.compare import COUNT, Result, table

from .cli import finish, start


async def test_compare_on_loopback(signaling_server, coturn):
    args = ["compare", "--room", "cmp", "--signal", signaling_server.url, "--host-address", "127.0.0.1",
            "--ice-server", coturn.stun_url(), "--timeout", "20"]
    a = await start(*args, "--json")
    b = await start(*args)
    ra, rb = await asyncio.gather(finish(a, timeout=60), finish(b, timeout=60))
    assert ra.code == 0, ra.stderr
    assert rb.code == 0, rb.stderr
    results = json.loads(ra.stdout)
    assert set(results) == {"ice", "punch"}
    for method, r in results.items():
        assert r["connected"] and r["error"] is None, (method, r)
        assert r["path"] == "host -> host over udp"
        assert r["lost"] is not None and 0 <= r["lost"] <= COUNT
        assert r["first_message_ms"] > 0 and r["rtt_ms"] is not None
    lines = rb.stdout.splitlines()
    assert lines[0].split() == ["ice", "punch"]
    assert lines[1].split()[-2:] == ["yes", "yes"]


def test_table_shows_failures():
    text = table([Result("ice", connected=True, first_message_ms=80.4, path="relay -> host over udp", rtt_ms=1.25, lost=3),
                  Result("punch", error="no path after 30 tries")])
    assert "81 ms" not in text and "80 ms" in text
    assert "punch: no path after 30 tries" in text
    row = next(line for line in text.splitlines() if line.startswith("connected"))
    assert row.split()[1:] == ["yes", "no"]
