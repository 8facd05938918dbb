"""Run the real CLI on two lab hosts and turn what it prints into a :class:`CellResult`.

Both peers start at once inside their host namespaces (``ip netns exec``),
join one fresh room on the lab's signaling server, and say ``connected``;
then each sends a few lines, and the run checks that every line arrived on
the other side. Then A's stdin is closed, A leaves, and B's after it: closing
both at the same instant races the two goodbyes, which is a test of shutdown,
not of the path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..agent import DIRECT_SEARCH
from .cell import CellResult, Mode, PeerReport, Transcript, ice_server_args
from .kinds import NatKind
from .lab import Lab
from .topology import Options, Topology, new_prefix

__all__ = ["cell_topology", "default_peer_command", "run_cell", "run_pair"]

logger = logging.getLogger(__name__)


def default_peer_command() -> list[str]:
    """The ``icepeer`` next to this interpreter, or the same through ``-c``."""
    script = Path(sys.executable).with_name("icepeer")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from icepeer.cli import main; sys.exit(main())"]


@dataclass
class _Peer:
    name: str
    proc: asyncio.subprocess.Process
    transcript: Transcript = field(default_factory=Transcript)
    stderr: deque[str] = field(default_factory=lambda: deque(maxlen=20))
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    received: asyncio.Event = field(default_factory=asyncio.Event)
    direct: asyncio.Event = field(default_factory=asyncio.Event)
    expect: int = 0
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def read_stdout(self) -> None:
        assert self.proc.stdout is not None
        async for raw in self.proc.stdout:
            event = self.transcript.feed(raw.decode(errors="replace"))
            logger.debug("%s: %s", self.name, raw.decode(errors="replace").rstrip())
            if event == "connected":
                self.connected.set()
            if event in ("connected", "path") and not self.transcript.relayed:
                self.direct.set()
            if self.expect and len(self.transcript.messages) >= self.expect:
                self.received.set()

    async def read_stderr(self) -> None:
        assert self.proc.stderr is not None
        async for raw in self.proc.stderr:
            self.stderr.append(raw.decode(errors="replace").rstrip())

    def start(self) -> None:
        self.tasks = [asyncio.create_task(self.read_stdout()), asyncio.create_task(self.read_stderr())]

    async def send(self, lines: Sequence[str]) -> None:
        assert self.proc.stdin is not None
        with contextlib.suppress(ConnectionError):
            self.proc.stdin.write("".join(f"{line}\n" for line in lines).encode())
            await self.proc.stdin.drain()

    def close_stdin(self) -> None:
        if self.proc.stdin is not None:
            with contextlib.suppress(ConnectionError, RuntimeError):
                self.proc.stdin.close()

    async def finish(self, grace: float) -> int | None:
        try:
            async with asyncio.timeout(grace):
                await self.proc.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            await self.proc.wait()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(1):
                await asyncio.gather(*self.tasks, return_exceptions=True)
        return self.proc.returncode


async def _first(*aws: asyncio.Future[Any], timeout: float) -> None:
    _, pending = await asyncio.wait(aws, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    for p in pending:
        p.cancel()
    # Collect the cancellations, or asyncio logs "exception was never retrieved".
    await asyncio.gather(*pending, return_exceptions=True)


async def run_cell(
    lab: Lab,
    a_netns: str,
    b_netns: str,
    mode: Mode,
    *,
    labels: tuple[str, str] = ("a", "b"),
    peer_command: Sequence[str] | None = None,
    timeout: float = 15.0,
    messages: int = 3,
) -> CellResult:
    """Run one cell between the hosts in ``a_netns`` and ``b_netns``."""
    started = time.monotonic()
    room = "lab-" + secrets.token_hex(4)
    argv = [*(peer_command or default_peer_command()), mode.verb, "--room", room,
            "--signal", lab.signal_url, *ice_server_args(mode), "--json", "--timeout", f"{timeout:g}"]
    logger.info("cell %s x %s %s: %s", *labels, mode.value, " ".join(argv))
    peers = [_Peer(labels[0], await lab.spawn(a_netns, argv)),
             _Peer(labels[1], await lab.spawn(b_netns, argv))]
    for p in peers:
        p.start()
    a, b = peers
    wall_ms: float | None = None
    sent = [0, 0]
    grace = 5.0
    try:
        both = asyncio.ensure_future(asyncio.gather(a.connected.wait(), b.connected.wait()))
        exits = [asyncio.ensure_future(p.proc.wait()) for p in peers]
        await _first(both, *exits, timeout=timeout + 5)
        if a.connected.is_set() and b.connected.is_set():
            wall_ms = (time.monotonic() - started) * 1000
            a.expect = b.expect = messages
            lines = [[f"{'ab'[i]}->{'ba'[i]} {n} {secrets.token_hex(4)}"
                      for n in range(1, messages + 1)] for i in range(2)]
            await asyncio.gather(a.send(lines[0]), b.send(lines[1]))
            sent = [messages, messages]
            got = asyncio.ensure_future(asyncio.gather(a.received.wait(), b.received.wait()))
            await _first(got, *(asyncio.ensure_future(p.proc.wait()) for p in peers), timeout=10)
            if mode is Mode.ICE and not (a.direct.is_set() and b.direct.is_set()):
                # A relayed pair won: give the search for a direct one its time.
                moved = asyncio.ensure_future(asyncio.gather(a.direct.wait(), b.direct.wait()))
                await _first(moved, *(asyncio.ensure_future(p.proc.wait()) for p in peers),
                             timeout=DIRECT_SEARCH + 1)
    except asyncio.CancelledError:
        grace = 0.0  # Ctrl-C: no goodbyes
        raise
    finally:
        codes = []
        for p in peers:
            p.close_stdin()
            codes.append(await p.finish(grace))
    reports = [PeerReport.from_transcript(p.transcript, sent=sent[i], exit_code=codes[i],
                                          stderr_tail="\n".join(p.stderr))
               for i, p in enumerate(peers)]
    if any(p.transcript.other for p in peers):
        logger.warning("non-JSON lines on stdout: %s", [p.transcript.other[:3] for p in peers])
    return CellResult.from_peers(
        labels[0], labels[1], mode, reports[0], reports[1], a.transcript,
        wall_ms=wall_ms, seconds=time.monotonic() - started, options=lab.topology.options.to_json(),
    )


def cell_topology(a: NatKind, b: NatKind, options: Options | None = None,
                  prefix: str | None = None) -> Topology:
    """The lab for one pair: two sites, or one site with two hosts for the shared-LAN kinds."""
    if a.shared_lan or b.shared_lan:
        if a is not b:
            raise ValueError(f"{a.value!r} puts both hosts behind one router: "
                             f"pair it with itself, not with {b.value!r}")
        kinds = [a]
    else:
        kinds = [a, b]
    return Topology.make(prefix or new_prefix(), kinds, options or Options())


def peer_namespaces(topology: Topology) -> tuple[str, str]:
    """The host namespaces the two peers of a cell run in."""
    if len(topology.sites) == 1:
        h = topology.sites[0].hosts
        return h[0].netns, h[1].netns
    return topology.sites[0].hosts[0].netns, topology.sites[1].hosts[0].netns


async def run_pair(
    a: NatKind,
    b: NatKind,
    modes: Sequence[Mode],
    *,
    options: Options | None = None,
    pcap_dir: str | None = None,
    peer_command: Sequence[str] | None = None,
    timeout: float = 15.0,
    messages: int = 3,
    on_result: Callable[[CellResult], object] | None = None,
    prefix: str | None = None,
) -> list[CellResult]:
    """Build the lab for ``a`` x ``b`` once and run every mode in it."""
    topology = cell_topology(a, b, options, prefix)
    a_ns, b_ns = peer_namespaces(topology)
    results = []
    async with Lab(topology, pcap_dir=pcap_dir) as lab:
        for mode in modes:
            result = await run_cell(lab, a_ns, b_ns, mode, labels=(a.value, b.value),
                                    peer_command=peer_command, timeout=timeout, messages=messages)
            results.append(result)
            if on_result is not None:
                on_result(result)
    return results
