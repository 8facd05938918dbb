"""Channel throughput for 1 KiB and 16 KiB messages, each method side by side in one run.

    .venv/bin/python benchmarks/throughput.py [--runs 5] [--megabytes 16] [--methods ...] [--json]

Two peers in two processes on loopback: one sends ``--megabytes`` of
messages as fast as the method's backpressure allows, the other measures
from the first message received to the last. The methods alternate, run by
run, so that the machine's noise falls on all of them alike; the figure is
the median. ``icepeer`` runs on asyncio's own loop, ``icepeer+uvloop`` on
uvloop (as the icepeer CLI does on Linux), ``aiortc`` is stock aiortc (a
reliable ordered ``RTCDataChannel``), ``udp`` raw UDP datagrams,
unacknowledged: the ceiling (its loss is reported). The machine is shared
and noisy: compare the ratios, not the absolute figures. ``--before DIR``
adds the method ``before+uvloop``: icepeer+uvloop importing the icepeer of
another checkout (``git worktree add DIR OLD``), for a before/after in the
same run.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
import time

from _harness import BEFORE, OPENERS, child_parser, entry, median, run_pair, servers, wait_start

DONE = b"done"


async def child(args) -> None:
    await wait_start()
    try:
        link = await asyncio.wait_for(OPENERS[args.child](args), 40)
        size, total = args.size, args.megabytes * 1024 * 1024
        count = max(1, total // size)
        if args.index == 0:
            payload = b"x" * size
            started = time.monotonic()
            for _ in range(count):
                await link.send(payload)
            drain = getattr(link, "drain", None)
            if drain is not None:
                await drain()
            sent_s = time.monotonic() - started
            await asyncio.wait_for(link.recv(), 120)  # the receiver's "done"
            result = {"ok": True, "role": "sender", "seconds": sent_s}
        else:
            received = 0
            first = last = None
            idle = 1.0 if link.lossy else 120.0
            while received < count:
                try:
                    await asyncio.wait_for(link.recv(), idle)
                except TimeoutError:
                    break
                now = time.monotonic()
                first = first or now
                last = now
                received += 1
            for _ in range(3):
                await link.send(DONE)
            seconds = (last - first) if first and last and last > first else None
            mbps = received * size / seconds / 1e6 if seconds else None
            result = {"ok": True, "role": "receiver", "MBps": mbps, "received": received, "expected": count,
                      "path": link.path}
        await asyncio.sleep(0.3)
        await link.close()
    except Exception as exc:  # noqa: BLE001 - reported as a failed run
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(result), flush=True)


async def main() -> int:
    parser = child_parser(__doc__, runs=5, methods="icepeer,icepeer+uvloop,aiortc,udp")
    parser.add_argument("--size", type=int, default=1024, help=argparse_suppress())
    parser.add_argument("--megabytes", type=int, default=16, help="data sent per run, in MiB")
    args = parser.parse_args()
    if args.child:
        await child(args)
        return 0
    if args.before:
        BEFORE.append(args.before)
    methods = args.methods.split(",")
    rooms = itertools.count()
    results: dict[str, dict[str, dict]] = {}
    async with servers() as env:
        for size in (1024, 16384):
            label = f"{size // 1024} KiB messages"
            cells = results[label] = {m: {"runs": [], "losses": [], "failures": []} for m in methods}
            for _ in range(args.runs):
                for method in methods:  # alternating: the noise of the hour falls on every method
                    cell = cells[method]
                    extra = ["--size", str(size), "--megabytes", str(args.megabytes)]
                    pair = await run_pair(__file__, method, f"tp-{next(rooms)}", env, extra, timeout=180)
                    receiver = next((r for r in pair if r.get("role") == "receiver"), None)
                    if receiver and receiver.get("MBps"):
                        cell["runs"].append(receiver["MBps"])
                        cell["losses"].append(1 - receiver["received"] / receiver["expected"])
                    else:
                        cell["failures"].append(next((r.get("error") for r in pair if not r.get("ok")), "no rate"))
            for method, cell in cells.items():
                cell["median_MBps"] = median(cell["runs"])
                cell["loss"] = median(cell.pop("losses"))
                shown = f"{cell['median_MBps']:.2f} MB/s" if cell["runs"] else "-"
                loss = f"  loss {cell['loss']:.1%}" if cell["loss"] else ""
                failed = f"  ({cell['failures'][0]})" if cell["failures"] else ""
                print(f"{label:18} {method:15} {shown:>12}{loss}{failed}", file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    ours = [m for m in methods if m.startswith("icepeer")]
    others = [m for m in methods if m not in ours]
    ratio_names = [f"{o}/{t}" for o in ours for t in others]
    print("| messages | " + " | ".join(methods) + " | " + " | ".join(ratio_names) + " |")
    print("|---|" + "---|" * (len(methods) + len(ratio_names)))
    for label, cells in results.items():
        row = [f"{cells[m]['median_MBps']:.2f} MB/s" if cells[m]["median_MBps"] else "-" for m in methods]
        ratios = []
        for o in ours:
            for t in others:
                a, b = cells[o]["median_MBps"], cells[t]["median_MBps"]
                ratios.append(f"{a / b:.2f}x" if a and b else "-")
        print(f"| {label} | " + " | ".join(row) + " | " + " | ".join(ratios) + " |")
    return 0


def argparse_suppress() -> str:
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    sys.exit(entry(main))
