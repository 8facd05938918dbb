"""Run lab commands, and find and remove what lab runs left behind.

The thin I/O layer under :mod:`icepeer.lab.topology`: every function here
runs external tools (``ip``, ``iptables-restore``, ``ip6tables-restore``,
``nft``, ``tc``, ``sysctl``) and does nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shutil
import signal
from collections.abc import Iterable, Sequence

from .command import Command
from .errors import LabError, LabUnavailable
from .topology import PREFIX_PATTERN

__all__ = [
    "check_environment",
    "clean",
    "lab_namespaces",
    "list_netns",
    "netns_pids",
    "remove_namespaces",
    "root_links",
    "run",
    "run_all",
]

logger = logging.getLogger(__name__)

TOOLS = ("ip", "iptables-restore", "ip6tables-restore", "nft", "sysctl", "tc")


def check_environment(*, tun: bool = False) -> None:
    """Raise :class:`LabUnavailable` unless we are root and have the tools (and ``/dev/net/tun``)."""
    if os.geteuid() != 0:
        raise LabUnavailable("the NAT lab needs root (it creates network namespaces)")
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        raise LabUnavailable(f"the NAT lab needs {', '.join(missing)} "
                             "(apt-get install iproute2 iptables nftables)")
    if tun and not os.path.exists("/dev/net/tun"):
        raise LabUnavailable("a delay needs /dev/net/tun (the delay line is two TAP devices "
                             "joined in user space), and this machine has none")


async def run(cmd: Command, *, timeout: float = 20.0) -> tuple[int, str]:
    """Run ``cmd``; return (exit code, stderr). Raise :class:`LabError` if it must succeed."""
    argv = cmd.full_argv()
    logger.debug("$ %s", cmd)
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE if cmd.stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(timeout):
            _, err = await proc.communicate(cmd.stdin.encode() if cmd.stdin is not None else None)
    except BaseException:
        if proc.returncode is None:
            proc.kill()
            await asyncio.shield(proc.wait())
        raise
    text = err.decode(errors="replace").strip()
    if proc.returncode and cmd.check:
        raise LabError(f"lab command failed ({proc.returncode}): {cmd}\n{text}")
    return proc.returncode or 0, text


async def run_all(cmds: Iterable[Command]) -> None:
    for cmd in cmds:
        await run(cmd)


async def _output(*argv: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    out, _ = await proc.communicate()
    return out.decode(errors="replace")


async def list_netns() -> list[str]:
    """Every named network namespace on the machine."""
    text = await _output("ip", "netns", "list")
    # Lines look like "name (id: 3)" or just "name".
    return [line.split()[0] for line in text.splitlines() if line.strip()]


async def lab_namespaces(prefix: str | None = None) -> list[str]:
    """Namespaces of one run (``prefix``) or of any lab run (the ``ipl`` pattern)."""
    names = await list_netns()
    if prefix is not None:
        return [n for n in names if n.startswith(prefix + "-")]
    return [n for n in names if PREFIX_PATTERN.match(n)]


async def netns_pids(netns: str) -> list[int]:
    text = await _output("ip", "netns", "pids", netns)
    return [int(p) for p in text.split() if p.isdigit()]


async def root_links(pattern: re.Pattern[str] = PREFIX_PATTERN) -> list[str]:
    """Interfaces in the root namespace whose names match ``pattern`` (should be none)."""
    text = await _output("ip", "-o", "link", "show")
    names = []
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) >= 2:
            names.append(parts[1].strip().split("@")[0])
    return [n for n in names if pattern.match(n)]


async def remove_namespaces(names: Sequence[str], *, grace: float = 2.0) -> None:
    """Stop every process inside ``names``, then delete the namespaces (and their links)."""
    pids = {pid for ns in names for pid in await netns_pids(ns)}
    pids.discard(os.getpid())
    for pid in pids:
        _kill(pid, signal.SIGTERM)
    deadline = asyncio.get_running_loop().time() + grace
    while pids and asyncio.get_running_loop().time() < deadline:
        pids = {pid for pid in pids if _alive(pid)}
        if pids:
            await asyncio.sleep(0.05)
    for pid in pids:
        _kill(pid, signal.SIGKILL)
    for ns in names:
        await run(Command(("ip", "netns", "del", ns), check=False))
    # Links are made inside the namespaces; one left in the root namespace
    # would come from a build interrupted between two steps.
    prefixes = tuple({m.group(0) for n in names if (m := PREFIX_PATTERN.match(n))})
    if prefixes:
        for link in await root_links():
            if link.startswith(prefixes):
                await run(Command(("ip", "link", "del", link), check=False))


def _kill(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie child of ours counts as gone.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


async def clean(prefix: str | None = None) -> list[str]:
    """Remove the namespaces (and their processes and links) of one run or of every run.

    Returns the names removed. Only names matching the lab's pattern are touched.
    """
    names = await lab_namespaces(prefix)
    await remove_namespaces(names)
    stray = await root_links()
    if prefix is not None:
        stray = [n for n in stray if n.startswith(prefix + "-")]
    for link in stray:
        await run(Command(("ip", "link", "del", link), check=False))
    return names + stray


def remove_namespaces_now(names: Sequence[str]) -> None:
    """:func:`remove_namespaces` without an event loop: the last resort at interpreter exit."""
    import subprocess

    for ns in names:
        out = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True, check=False).stdout
        for pid in (int(p) for p in out.split() if p.isdigit()):
            if pid != os.getpid():
                _kill(pid, signal.SIGKILL)
    for ns in names:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
