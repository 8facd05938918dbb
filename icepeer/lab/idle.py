"""An idle cell: connect, stay silent past the routers' UDP timeout, then talk.

RFC 4787 REQ-5 lets NATs forget a UDP mapping after 2 minutes of silence,
and many home routers use 30 s. ICE keeps the selected pair alive with
consent checks (RFC 7675; icepeer sends them every ~2.5 s), the puncher with
its keepalives. This cell shows whether that is enough, for real.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from .cell import Mode, ice_server_args
from .kinds import NatKind
from .lab import Lab
from .runner import cell_topology, peer_namespaces
from .topology import Options

__all__ = ["IdleResult", "idle_cell"]

CLI = [sys.executable, "-m", "icepeer"]


@dataclass
class IdleResult:
    connected: list[dict[str, Any]] = field(default_factory=list)
    #: What each peer received after the silence.
    received: list[str] = field(default_factory=list)
    restarted: bool = False
    idle_s: float = 0.0
    error: str | None = None

    @property
    def alive(self) -> bool:
        return self.error is None and len(self.received) == 2


async def _next_event(proc: asyncio.subprocess.Process, name: str, timeout: float) -> dict[str, Any]:
    assert proc.stdout is not None
    async with asyncio.timeout(timeout):
        while True:
            line = await proc.stdout.readline()
            if not line:
                raise EOFError(f"the peer exited before {name!r}")
            event: dict[str, Any] = json.loads(line)
            if event["event"] == name:
                return event


async def idle_cell(a: NatKind, b: NatKind, mode: Mode, *, conntrack: int, idle: float) -> IdleResult:
    """Connect ``a`` x ``b``, stay silent ``idle`` s behind a ``conntrack`` s UDP timeout, talk."""
    result = IdleResult(idle_s=idle)
    topology = cell_topology(a, b, Options(udp_timeout=conntrack))
    a_ns, b_ns = peer_namespaces(topology)
    async with Lab(topology) as lab:
        argv = [*CLI, mode.verb, "--room", "idle", "--signal", lab.signal_url, *ice_server_args(mode),
                "--json", "--timeout", "15", "-v"]
        peers = [await lab.spawn(a_ns, argv), await lab.spawn(b_ns, argv)]
        try:
            result.connected = [await _next_event(p, "connected", 20) for p in peers]
            started = time.monotonic()
            await asyncio.sleep(idle)
            result.idle_s = time.monotonic() - started
            for i, p in enumerate(peers):
                assert p.stdin is not None
                p.stdin.write(f"after the silence {i}\n".encode())
                await p.stdin.drain()
            for p in peers:
                result.received.append((await _next_event(p, "message", 10))["data"])
        except (TimeoutError, EOFError) as exc:
            result.error = str(exc) or "timed out"
        for p in peers:
            if p.stdin is not None:
                p.stdin.close()
        errors = [(await p.stderr.read()).decode(errors="replace") for p in peers if p.stderr is not None]
        await asyncio.gather(*(p.wait() for p in peers))
    result.restarted = any("restarting ICE" in e for e in errors)
    return result
