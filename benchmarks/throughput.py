"""Channel throughput for 1 KiB and 16 KiB messages, each method side by side in one run.

    .venv/bin/python benchmarks/throughput.py [--megabytes 8] [--methods icepeer,aiortc,udp] [--json]

Two peers in two processes on loopback: one sends ``--megabytes`` of
messages as fast as the method's backpressure allows, the other measures
from the first message received to the last. ``udp`` is raw UDP datagrams,
unacknowledged: the ceiling (its loss is reported). The machine is shared
and noisy: compare the ratios, not the absolute figures.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
import time

from _harness import OPENERS, child_parser, median, run_pair, servers, wait_start

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
    parser = child_parser(__doc__, runs=3, methods="icepeer,aiortc,udp")
    parser.add_argument("--size", type=int, default=1024, help=argparse_suppress())
    parser.add_argument("--megabytes", type=int, default=8, help="data sent per run, in MiB")
    args = parser.parse_args()
    if args.child:
        await child(args)
        return 0
    methods = args.methods.split(",")
    rooms = itertools.count()
    results: dict[str, dict[str, dict]] = {}
    async with servers() as env:
        for size in (1024, 16384):
            label = f"{size // 1024} KiB messages"
            results[label] = {}
            for method in methods:
                rates, losses, errors = [], [], []
                for _ in range(args.runs):
                    extra = ["--size", str(size), "--megabytes", str(args.megabytes)]
                    pair = await run_pair(__file__, method, f"tp-{next(rooms)}", env, extra, timeout=180)
                    receiver = next((r for r in pair if r.get("role") == "receiver"), None)
                    if receiver and receiver.get("MBps"):
                        rates.append(receiver["MBps"])
                        losses.append(1 - receiver["received"] / receiver["expected"])
                    else:
                        errors.append(next((r.get("error") for r in pair if not r.get("ok")), "no rate"))
                results[label][method] = {"median_MBps": median(rates), "runs": rates,
                                          "loss": median(losses), "failures": errors}
                shown = f"{median(rates):.2f} MB/s" if rates else "-"
                print(f"{label:18} {method:8} {shown:>12}" + (f"  loss {median(losses):.1%}" if losses and median(losses) else "")
                      + (f"  ({errors[0]})" if errors else ""), file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    others = [m for m in methods if m != "icepeer"]
    print("| messages | " + " | ".join(methods) + " | " + " | ".join(f"icepeer/{m}" for m in others) + " |")
    print("|---|" + "---|" * (len(methods) + len(others)))
    for label, cells in results.items():
        base = cells.get("icepeer", {}).get("median_MBps")
        row = [f"{cells[m]['median_MBps']:.2f} MB/s" if cells[m]["median_MBps"] else "-" for m in methods]
        ratios = [f"{base / cells[m]['median_MBps']:.2f}x" if base and cells[m]["median_MBps"] else "-" for m in others]
        print(f"| {label} | " + " | ".join(row) + " | " + " | ".join(ratios) + " |")
    return 0


def argparse_suppress() -> str:
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
