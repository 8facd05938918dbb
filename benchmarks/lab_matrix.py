"""The NAT lab matrix as a benchmark: run it (or read a previous run) and summarise it.

    sudo .venv/bin/python benchmarks/lab_matrix.py [--out DIR] [--kinds prc,sym] [--modes ice,punch]
    .venv/bin/python benchmarks/lab_matrix.py --summarize DIR/matrix.json

Runs ``icepeer lab matrix`` (root, network namespaces; see docs/lab.md), then
prints per mode how many cells connected directly, through the relay, or not
at all, and the median and worst time to connect. Extra arguments after
``--`` go to ``icepeer lab matrix`` (``-- --loss 5 --timeout 20``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

from icepeer.cli import main as icepeer
from icepeer.lab.matrix import Matrix


def summarize(doc: dict[str, Any]) -> str:
    matrix = Matrix.from_json(doc)
    header = (f"{'mode':<12} {'cells':>5} {'direct':>6} {'relay':>6} {'failed':>6} "
              f"{'median ms':>9} {'max ms':>7}")
    lines = [header]
    for mode in matrix.modes:
        cells = [r for r in matrix.results.values() if r.mode == mode.value]
        times = [r.connect_ms for r in cells if r.connected and r.connect_ms is not None]
        count = {o: sum(1 for r in cells if r.outcome == o) for o in ("direct", "relay", "failed")}
        median = f"{statistics.median(times):.0f}" if times else "-"
        worst = f"{max(times):.0f}" if times else "-"
        lines.append(f"{mode.value:<12} {len(cells):>5} {count['direct']:>6} {count['relay']:>6} "
                     f"{count['failed']:>6} {median:>9} {worst:>7}")
    slow = sorted((r for r in matrix.results.values() if r.connected and r.connect_ms),
                  key=lambda r: -(r.connect_ms or 0))[:5]
    if slow:
        lines.append("slowest: " + "; ".join(
            f"{r.a} x {r.b} {r.mode} {r.connect_ms:.0f} ms" for r in slow))
    lines.append(f"whole matrix: {doc.get('seconds', '?')} s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        extra = argv[argv.index("--") + 1:]
        argv = argv[:argv.index("--")]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="lab-matrix", help="results directory (default: lab-matrix)")
    parser.add_argument("--kinds", help="kinds to pair (default: all)")
    parser.add_argument("--modes", help="modes (default: all)")
    parser.add_argument("--summarize", metavar="JSON", help="only summarise a previous matrix.json")
    args = parser.parse_args(argv)
    if args.summarize:
        print(summarize(json.loads(Path(args.summarize).read_text())))
        return 0
    cmd = ["lab", "matrix", "--out", args.out]
    if args.kinds:
        cmd += ["--kinds", args.kinds]
    if args.modes:
        cmd += ["--modes", args.modes]
    code = icepeer(cmd + extra)
    path = Path(args.out) / "matrix.json"
    if path.exists():
        print(summarize(json.loads(path.read_text())))
    return code


if __name__ == "__main__":
    sys.exit(main())
