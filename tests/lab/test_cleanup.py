"""Nothing is left behind: on normal exit, on an error, on Ctrl-C, on SIGTERM, after SIGKILL."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest

from icepeer.lab import executor
from icepeer.lab.kinds import NatKind
from icepeer.lab.lab import MARKERS, Lab
from icepeer.lab.topology import PREFIX_PATTERN, Topology, new_prefix
from tests.conftest import require_coturn, require_root_netns

CLI = [sys.executable, "-c", "import sys; from icepeer.cli import main; sys.exit(main())"]


def sh(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=False).stdout


def leftovers(prefix: str) -> list[str]:
    names = sh("ip", "netns", "list").split()
    links = sh("ip", "-o", "link")
    found = [n for n in names if n.startswith(prefix + "-")]
    found += re.findall(rf"\d+: ({re.escape(prefix)}-[^:@]+)", links)
    if (MARKERS / prefix).exists():
        found.append(str(MARKERS / prefix))
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(")")[-1].split()[0] != "Z"


async def test_error_inside_removes_everything() -> None:
    require_root_netns()
    require_coturn()
    topology = Topology.make(new_prefix(), [NatKind.PRC, NatKind.DOUBLE])
    pids: list[int] = []
    with pytest.raises(RuntimeError, match="boom"):
        async with Lab(topology):
            assert (MARKERS / topology.prefix).read_text().strip() == str(os.getpid())
            pids = await executor.netns_pids(topology.pub_ns)
            assert len(pids) >= 2  # signaling and coturn
            # nothing of the lab is visible in the root namespace
            assert not [n for n in await executor.root_links() if n.startswith(topology.prefix)]
            raise RuntimeError("boom")
    assert leftovers(topology.prefix) == []
    assert not any(alive(p) for p in pids)


def peer_pids(prefix: str) -> list[int]:
    """The ``icepeer connect`` processes on the two hosts."""
    pids = []
    for ns in (f"{prefix}-a-h1", f"{prefix}-b-h1"):
        for pid in map(int, sh("ip", "netns", "pids", ns).split()):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    argv = f.read().decode().split("\0")
            except FileNotFoundError:
                continue
            if "connect" in argv and "--room" in argv:
                pids.append(pid)
    return pids


def start_run(*extra: str) -> tuple[subprocess.Popen[str], str, list[int]]:
    """``icepeer lab run`` as a subprocess; returns it, its prefix and its two peers once they run.

    The peers are the real ``icepeer connect`` (the runner's default), in a cell where they
    cannot connect: symmetric NATs on both sides and no TURN. So they keep trying until
    their --timeout, far beyond the test, and whatever ends them is the lab's cleanup.
    """
    proc = subprocess.Popen(
        [*CLI, "lab", "run", "--a", "sym", "--b", "sym", "--mode", "ice-no-turn", "--timeout", "120",
         *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert proc.stderr is not None
    first = proc.stderr.readline()
    m = re.match(r"lab (ipl[0-9a-f]{5}):", first)
    assert m, first
    prefix = m.group(1)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if len(peers := peer_pids(prefix)) == 2:
            break
        time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail("the peers never started")
    time.sleep(1.0)  # under way: joined the room, gathering, checking
    assert all(alive(p) for p in peers), "a peer ended by itself"
    return proc, prefix, peers


def lab_pids(prefix: str) -> list[int]:
    pids = []
    for ns in (n for n in sh("ip", "netns", "list").split() if n.startswith(prefix + "-")):
        pids += [int(p) for p in sh("ip", "netns", "pids", ns).split()]
    return pids


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupted_run_removes_everything(sig: signal.Signals) -> None:
    require_root_netns()
    require_coturn()
    proc, prefix, peers = start_run()
    pids = lab_pids(prefix)
    assert len(pids) >= 4 and set(peers) <= set(pids)  # signaling, coturn, two peers
    started = time.monotonic()
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    assert time.monotonic() - started < 10
    assert leftovers(prefix) == []
    assert not any(alive(p) for p in pids)


def test_killed_run_is_cleaned_by_lab_clean() -> None:
    require_root_netns()
    require_coturn()
    proc, prefix, peers = start_run()
    pids = lab_pids(prefix)
    proc.kill()
    proc.communicate(timeout=10)
    # SIGKILL leaves everything: namespaces, the marker, the servers and peers
    assert f"{prefix}-pub" in leftovers(prefix)
    assert all(alive(p) for p in peers)
    # --stale removes only runs whose process is gone, so other live runs are safe
    out = subprocess.run([*CLI, "lab", "clean", "--stale"], capture_output=True, text=True, timeout=30,
                         check=False)
    assert out.returncode == 0, out.stderr
    assert f"removed {prefix}-pub" in out.stdout
    assert leftovers(prefix) == []
    assert not any(alive(p) for p in pids)


async def test_stale_cleaning_spares_live_runs() -> None:
    require_root_netns()
    topology = Topology.make(new_prefix(), [NatKind.PRC])
    async with Lab(topology, services=False):
        from icepeer.lab.lab import clean_stale

        removed = await clean_stale()
        assert not [n for n in removed if n.startswith(topology.prefix)]
        assert f"{topology.prefix}-pub" in await executor.lab_namespaces(topology.prefix)
    assert leftovers(topology.prefix) == []


def test_names_match_the_clean_pattern() -> None:
    assert PREFIX_PATTERN.match(new_prefix() + "-pub")
    assert not PREFIX_PATTERN.match("iplab-pub") and not PREFIX_PATTERN.match("netns1")
