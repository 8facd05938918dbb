"""A running lab: namespaces built, signaling and coturn started in the public namespace.

::

    async with Lab(Topology.make(new_prefix(), [NatKind.PRC, NatKind.SYM])) as lab:
        proc = await lab.spawn(lab.topology.site("a").hosts[0].netns, ["icepeer", "nat-type", ...])

Everything is removed on exit, whatever the exit: an exception, a
cancellation (Ctrl-C), or SIGTERM turned into one by the CLI. A run killed
outright leaves a marker file naming its process; the next lab that starts
removes the leftovers of runs whose process is gone, and ``icepeer lab
clean`` removes those of every run.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Self

from ..coturn import Coturn
from . import executor
from .errors import LabError
from .topology import GATEWAY_IP, PREFIX_PATTERN, STUN_ALT_IP, STUN_IP, Topology

__all__ = ["SIGNAL_PORT", "TURN_PASSWORD", "TURN_PORT", "TURN_USER", "Lab", "clean_stale"]

logger = logging.getLogger(__name__)

SIGNAL_PORT = 8765
TURN_PORT = 3478
TURN_USER, TURN_PASSWORD = "lab", "lab"
MARKERS = Path("/run/icepeer-lab")


def _owner_alive(marker: Path) -> bool:
    try:
        pid = int(marker.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


async def clean_stale() -> list[str]:
    """Remove the namespaces of runs whose process died without cleaning up."""
    removed: list[str] = []
    names = await executor.lab_namespaces()
    prefixes = sorted({m.group(0)[:-1] for n in names if (m := PREFIX_PATTERN.match(n))})
    for prefix in prefixes:
        marker = MARKERS / prefix
        # A run without a marker may be one starting right now: leave it.
        if marker.exists() and not _owner_alive(marker):
            logger.info("removing leftovers of dead lab run %s", prefix)
            removed += await executor.clean(prefix)
            marker.unlink(missing_ok=True)
    return removed


class Lab:
    """Build ``topology``, start its servers, and remove it all on exit."""

    def __init__(
        self,
        topology: Topology,
        *,
        services: bool = True,
        pcap_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self.topology = topology
        self.services = services
        self.pcap_dir = Path(pcap_dir) if pcap_dir is not None else None
        self.coturn: Coturn | None = None
        self.build_seconds = 0.0
        self._signaling: asyncio.subprocess.Process | None = None
        self._wire: asyncio.subprocess.Process | None = None
        self._captures: list[asyncio.subprocess.Process] = []
        self._children: list[asyncio.subprocess.Process] = []
        self._marker = MARKERS / topology.prefix

    # -- addresses ------------------------------------------------------------

    @property
    def signal_url(self) -> str:
        return f"ws://{GATEWAY_IP}:{SIGNAL_PORT}"

    @property
    def stun_url(self) -> str:
        return f"stun:{STUN_IP}:{TURN_PORT}"

    def turn_url(self, transport: str) -> str:
        return f"turn:{TURN_USER}:{TURN_PASSWORD}@{STUN_IP}:{TURN_PORT}?transport={transport}"

    # -- lifecycle ------------------------------------------------------------

    async def __aenter__(self) -> Self:
        executor.check_environment(tun=bool(self.topology.wires()))
        await clean_stale()
        started = time.monotonic()
        # If the event loop never gets to close() (a second Ctrl-C during
        # teardown, an error in it), the interpreter still removes the lab.
        atexit.register(self._remove_now)
        try:
            MARKERS.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - tiny, before anything runs
            self._marker.write_text(f"{os.getpid()}\n")
            await executor.run_all(self.topology.build())
            if self.topology.wires():
                await self._start_wire()
            if self.pcap_dir is not None:
                await self._start_captures()
            if self.services:
                await asyncio.gather(self._start_signaling(), self._start_coturn())
        except BaseException:
            await self.close()
            raise
        self.build_seconds = time.monotonic() - started
        logger.info("lab %s up in %.2f s", self.topology.prefix, self.build_seconds)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop everything and remove the namespaces; safe to call twice, shielded from cancellation."""
        await asyncio.shield(self._close())

    async def _close(self) -> None:
        for proc in [*self._children, *self._captures]:
            await _stop(proc, signal.SIGTERM if proc in self._captures else signal.SIGKILL)
        self._children.clear()
        self._captures.clear()
        if self.coturn is not None:
            with contextlib.suppress(Exception):
                await self.coturn.__aexit__(None, None, None)
            self.coturn = None
        if self._signaling is not None:
            await _stop(self._signaling, signal.SIGTERM)
            self._signaling = None
        if self._wire is not None:
            await _stop(self._wire, signal.SIGTERM)
            self._wire = None
        await executor.remove_namespaces(self.topology.namespaces)
        self._marker.unlink(missing_ok=True)
        atexit.unregister(self._remove_now)

    def _remove_now(self) -> None:
        executor.remove_namespaces_now(self.topology.namespaces)
        self._marker.unlink(missing_ok=True)

    # -- servers --------------------------------------------------------------

    async def _start_signaling(self) -> None:
        proc = await self.spawn(
            self.topology.pub_ns,
            [sys.executable, "-m", "signaling", "--host", GATEWAY_IP, "--port", str(SIGNAL_PORT),
             "--log-level", "warning", "--join-timeout", "30"],
            stdin=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL, track=False,
        )
        self._signaling = proc
        assert proc.stdout is not None
        try:
            async with asyncio.timeout(15):
                line = (await proc.stdout.readline()).decode(errors="replace")
        except TimeoutError:
            raise LabError("the signaling server did not start within 15 s") from None
        if not line.startswith("listening on"):
            raise LabError(f"the signaling server did not start: {line.strip() or 'no output'}")

    async def _start_wire(self) -> None:
        """The delay line (:mod:`icepeer.lab.wire`): without it, the delayed uplinks carry nothing."""
        specs = json.dumps([w.to_json() for w in self.topology.wires()])
        proc = await self.spawn(
            self.topology.pub_ns, [sys.executable, "-m", "icepeer.lab.wire", specs],
            stdin=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, track=False,
        )
        self._wire = proc
        assert proc.stdout is not None and proc.stderr is not None
        try:
            async with asyncio.timeout(15):
                line = (await proc.stdout.readline()).decode(errors="replace")
        except TimeoutError:
            raise LabError("the delay line did not start within 15 s") from None
        if line.strip() != "ready":
            why = (await proc.stderr.read()).decode(errors="replace").strip().splitlines()
            raise LabError(f"the delay line did not start: {why[-1] if why else 'no output'}")

    async def _start_coturn(self) -> None:
        # Two listening addresses: coturn answers RFC 5780 (OTHER-ADDRESS,
        # CHANGE-REQUEST) only then; the alternate port is the primary + 1.
        self.coturn = Coturn(
            host=STUN_IP, alt_host=STUN_ALT_IP, port=TURN_PORT, relay_ip=STUN_IP,
            users={TURN_USER: TURN_PASSWORD}, allow_loopback_peers=False,
            netns=self.topology.pub_ns,
        )
        await self.coturn.start(timeout=10)

    async def _start_captures(self) -> None:
        assert self.pcap_dir is not None
        self.pcap_dir.mkdir(parents=True, exist_ok=True)
        for site in self.topology.sites:
            ns, dev = site.capture_point
            path = self.pcap_dir / f"{site.name}-{site.kind.value}-wan.pcap"
            proc = await self.spawn(
                ns, ["tcpdump", "-i", dev, "-n", "-U", "--immediate-mode", "-s", "0", "-w", str(path)],
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE, track=False,
            )
            self._captures.append(proc)
            # tcpdump says "listening on ..." once it captures.
            assert proc.stderr is not None
            try:
                async with asyncio.timeout(5):
                    await proc.stderr.readline()
            except TimeoutError:
                raise LabError(f"tcpdump on {dev} did not start") from None

    # -- processes ------------------------------------------------------------

    async def spawn(
        self,
        netns: str,
        argv: Sequence[str],
        *,
        stdin: int = asyncio.subprocess.PIPE,
        stdout: int = asyncio.subprocess.PIPE,
        stderr: int = asyncio.subprocess.PIPE,
        env: dict[str, str] | None = None,
        track: bool = True,
    ) -> asyncio.subprocess.Process:
        """Start ``argv`` inside ``netns`` (killed when the lab closes)."""
        proc = await asyncio.create_subprocess_exec(
            "ip", "netns", "exec", netns, *argv, stdin=stdin, stdout=stdout, stderr=stderr,
            env=env,
        )
        if track:
            self._children.append(proc)
        return proc


async def _stop(proc: asyncio.subprocess.Process, sig: int) -> None:
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        try:
            async with asyncio.timeout(3):
                await proc.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
