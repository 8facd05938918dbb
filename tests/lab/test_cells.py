"""A reduced matrix of real CLI runs across the lab's NATs.

The peers are ``icepeer connect`` and ``icepeer punch`` themselves (the lab
runner's default peer command).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from icepeer.lab.cell import CellResult, Mode
from icepeer.lab.kinds import NatKind
from icepeer.lab.runner import run_pair
from tests.conftest import require_coturn, require_root_netns

CLI = [sys.executable, "-c", "import sys; from icepeer.cli import main; sys.exit(main())"]


async def pair(a: NatKind, b: NatKind, *modes: Mode, timeout: float = 15) -> dict[Mode, CellResult]:
    require_root_netns()
    require_coturn()
    results = {}
    for mode in modes:
        [r] = await run_pair(a, b, [mode], timeout=timeout)
        results[mode] = r
    return results


def assert_ok(r: CellResult, outcome: str) -> None:
    assert r.connected, r.error
    assert r.outcome == outcome, r.path
    assert (r.sent, r.lost) == (6, 0)
    assert r.connect_ms is not None and r.connect_ms < 15000
    assert all(p.exit_code == 0 for p in r.peers), r.peers


async def test_port_restricted_pair_connects_directly() -> None:
    r = await pair(NatKind.PRC, NatKind.PRC, Mode.ICE, Mode.PUNCH)
    assert_ok(r[Mode.ICE], "direct")
    assert_ok(r[Mode.PUNCH], "direct")


async def test_symmetric_pair_needs_the_relay() -> None:
    r = await pair(NatKind.SYM, NatKind.SYM, Mode.ICE, Mode.ICE_NO_TURN, timeout=5)
    assert_ok(r[Mode.ICE], "relay")
    failed = r[Mode.ICE_NO_TURN]
    assert not failed.connected and failed.outcome == "failed"
    assert failed.error and all(p.exit_code == 1 for p in failed.peers)
    assert failed.seconds < 15


async def test_shared_lan_connects_host_to_host() -> None:
    r = await pair(NatKind.SAME_LAN, NatKind.SAME_LAN, Mode.ICE_NO_TURN)
    assert_ok(r[Mode.ICE_NO_TURN], "direct")
    assert r[Mode.ICE_NO_TURN].path == "host -> host (udp)"


async def test_udp_blocked_goes_through_turn_over_tcp() -> None:
    r = (await pair(NatKind.UDPBLOCK, NatKind.PRC, Mode.ICE))[Mode.ICE]
    assert_ok(r, "relay")
    udpblock_side = r.peers[0]
    assert udpblock_side.local is not None and udpblock_side.local.startswith("relay ")
    assert udpblock_side.local.endswith("/tcp")


def test_lab_run_json_and_pcap(tmp_path: Path) -> None:
    require_root_netns()
    require_coturn()
    pcap = tmp_path / "pcap"
    argv = [*CLI, "lab", "run", "--a", "full", "--b", "addr", "--mode", "punch", "--json",
            "--timeout", "15", "--pcap", str(pcap)]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 1
    doc = json.loads(lines[0])
    assert doc["connected"] and doc["mode"] == "punch" and doc["lost"] == 0
    assert (doc["a"], doc["b"]) == ("full", "addr")
    assert "lab removed" in out.stderr
    files = sorted(p.name for p in pcap.iterdir())
    assert files == ["a-full-wan.pcap", "b-addr-wan.pcap"]
    for f in pcap.iterdir():
        data = f.read_bytes()
        assert data[:4] in (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4")  # pcap magic
        assert len(data) > 24 + 100  # header plus captured packets
