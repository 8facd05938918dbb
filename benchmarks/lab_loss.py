"""Connecting under packet loss in the NAT lab: icepeer beside stock aiortc, in one run.

    sudo .venv/bin/python benchmarks/lab_loss.py [--runs 7] [--loss 5] [--cells prc:prc,prc:sym] [--json]

For each cell, the lab is built once with ``--loss`` percent random loss at
each router (each direction); then both programs run ``--runs`` times each,
alternating, with the same flags (mode ``ice``: STUN + TURN over UDP and
TCP): ``icepeer connect`` and ``benchmarks/aiortc_peer.py`` (stock aiortc
behind the same command line). Reported: connections made, the median and
worst time to connect (the slower peer's ``elapsed_ms``), and messages lost.
Root and network namespaces, as the lab tier (docs/lab.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
from pathlib import Path

from icepeer.lab.cell import Mode
from icepeer.lab.kinds import NatKind
from icepeer.lab.lab import Lab
from icepeer.lab.runner import cell_topology, default_peer_command, peer_namespaces, run_cell
from icepeer.lab.topology import Options

AIORTC = [sys.executable, str(Path(__file__).with_name("aiortc_peer.py"))]


async def measure(cells: list[tuple[NatKind, NatKind]], runs: int, loss: float) -> dict:
    programs = {"icepeer": default_peer_command(), "aiortc": AIORTC}
    results: dict = {}
    for a, b in cells:
        name = f"{a.value} x {b.value}"
        samples: dict[str, list] = {p: [] for p in programs}
        topology = cell_topology(a, b, Options(loss_percent=loss))
        a_ns, b_ns = peer_namespaces(topology)
        async with Lab(topology) as lab:
            for i in range(runs):
                for program, command in programs.items():
                    cell = await run_cell(lab, a_ns, b_ns, Mode.ICE, labels=(a.value, b.value),
                                          peer_command=command, timeout=20)
                    samples[program].append(cell)
                    shown = f"{cell.connect_ms:.0f} ms" if cell.connect_ms else cell.error
                    print(f"{name} {program:8} run {i + 1}: {shown}", file=sys.stderr, flush=True)
        results[name] = {}
        for program, cellz in samples.items():
            times = [c.connect_ms for c in cellz if c.connected and c.connect_ms is not None]
            results[name][program] = {
                "connected": sum(c.connected for c in cellz),
                "runs": len(cellz),
                "median_ms": statistics.median(times) if times else None,
                "max_ms": max(times) if times else None,
                "times_ms": times,
                "lost": sum(c.lost for c in cellz),
                "sent": sum(c.sent for c in cellz) * 2,
            }
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--loss", type=float, default=5.0)
    parser.add_argument("--cells", default="prc:prc,prc:sym,sym:sym")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    cells = [tuple(NatKind(k) for k in pair.split(":")) for pair in args.cells.split(",")]
    results = asyncio.run(measure(cells, args.runs, args.loss))  # type: ignore[arg-type]
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"| cell ({args.loss:g}% loss per router) | icepeer median | icepeer max | aiortc median | aiortc max "
          "| aiortc/icepeer | connected (icepeer, aiortc) | messages lost |")
    print("|---|---|---|---|---|---|---|---|")
    for name, r in results.items():
        i, s = r["icepeer"], r["aiortc"]
        ms = lambda v: f"{v:.0f} ms" if v is not None else "-"  # noqa: E731
        ratio = f"{s['median_ms'] / i['median_ms']:.1f}x" if i["median_ms"] and s["median_ms"] else "-"
        print(f"| {name} | {ms(i['median_ms'])} | {ms(i['max_ms'])} | {ms(s['median_ms'])} | {ms(s['max_ms'])} "
              f"| {ratio} | {i['connected']}/{i['runs']}, {s['connected']}/{s['runs']} | {i['lost']}, {s['lost']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
