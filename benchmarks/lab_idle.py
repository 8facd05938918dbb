"""A connection idle for 90 s behind routers with a 30 s UDP timeout: still alive?

    sudo .venv/bin/python benchmarks/lab_idle.py [--idle 90] [--conntrack 30] [--cells prc:prc,prc:sym]

For ICE and for the puncher (where it connects), in the NAT lab (docs/lab.md).
The test tier runs the same cell scaled down (16 s behind 5 s).
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from icepeer.lab.cell import Mode
from icepeer.lab.idle import idle_cell
from icepeer.lab.kinds import NatKind


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--idle", type=float, default=90)
    parser.add_argument("--conntrack", type=int, default=30)
    parser.add_argument("--cells", default="prc:prc,prc:sym")
    parser.add_argument("--modes", default="ice,punch")
    args = parser.parse_args()
    print("| cell | mode | idle | conntrack UDP timeout | alive after | path | ICE restart |")
    print("|---|---|---|---|---|---|---|")
    for pair in args.cells.split(","):
        a, b = (NatKind(k) for k in pair.split(":"))
        for mode in (Mode(m) for m in args.modes.split(",")):
            r = await idle_cell(a, b, mode, conntrack=args.conntrack, idle=args.idle)
            path = " -> ".join(c["local"]["type"] for c in r.connected[:1]) + (
                f" -> {r.connected[0]['remote']['type']}" if r.connected else "not connected")
            print(f"| {a.value} x {b.value} | {mode.value} | {r.idle_s:.0f} s | {args.conntrack} s "
                  f"| {'yes' if r.alive else 'no: ' + str(r.error)} | {path} | {'yes' if r.restarted else 'no'} |",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
