"""Time from start to the first message delivered, each method side by side in one run.

    .venv/bin/python benchmarks/connect_time.py [--runs 5] [--methods icepeer,aiortc,punch] [--json]

Two peers in two processes on loopback, through one signaling server and
one coturn started here; both processes start at the same instant and send
a message as soon as they are connected; the figure is the time until both
messages arrived. Scenarios: host candidates only; with coturn as STUN and
TURN server; with a black-holed STUN server; relay-only. The machine is
shared and noisy: compare the ratios, not the absolute figures.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
import time

from _harness import OPENERS, child_parser, fmt_ms, median, run_pair, servers, wait_start


async def child(args) -> None:
    t0 = await wait_start()
    try:
        link = await asyncio.wait_for(OPENERS[args.child](args), 40)
        await link.send(b"hello")
        await asyncio.wait_for(link.recv(), 30)
        elapsed = (time.time() - t0) * 1000
        await asyncio.sleep(0.5)  # let the other side receive ours before we leave
        result = {"ok": True, "ms": elapsed, "path": link.path, "timings": getattr(link, "timings", None)}
        await link.close()
    except Exception as exc:  # noqa: BLE001 - reported as a failed run
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(result), flush=True)


def scenarios(env) -> list[tuple[str, list[str], bool]]:
    out = [("host only", [], False)]
    if env.stun:
        out.append(("coturn STUN+TURN", [env.stun, env.turn_udp], False))
        out.append(("black-holed STUN + TURN", [env.blackhole, env.turn_udp], False))
        out.append(("relay-only (TURN/UDP)", [env.turn_udp], True))
    else:
        out.append(("black-holed STUN", [env.blackhole], False))
    return out


async def main() -> int:
    parser = child_parser(__doc__, runs=5, methods="icepeer,aiortc,punch")
    args = parser.parse_args()
    if args.child:
        await child(args)
        return 0
    methods = args.methods.split(",")
    rooms = itertools.count()
    results: dict[str, dict[str, dict]] = {}
    async with servers() as env:
        for name, ice, relay_only in scenarios(env):
            results[name] = {}
            for method in methods:
                if method == "punch" and relay_only:
                    continue  # the puncher has no relay: nothing to measure
                times, paths, errors = [], set(), []
                for _ in range(args.runs):
                    extra = [a for url in ice for a in ("--ice-server", url)] + (["--relay-only"] if relay_only else [])
                    pair = await run_pair(__file__, method, f"ct-{next(rooms)}", env, extra)
                    if all(r.get("ok") for r in pair):
                        times.append(max(r["ms"] for r in pair))
                        paths.add(pair[0]["path"])
                    else:
                        errors.append(next(r["error"] for r in pair if not r.get("ok")))
                results[name][method] = {"median_ms": median(times), "runs": times, "paths": sorted(paths),
                                         "failures": errors}
                print(f"{name:28} {method:8} {fmt_ms(median(times)):>8}  {len(times)}/{args.runs} ok"
                      + (f"  ({errors[0]})" if errors else ""), file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    header = "| scenario | " + " | ".join(methods) + " | " + " | ".join(f"{m}/icepeer" for m in methods if m != "icepeer") + " |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for name, cells in results.items():
        base = cells.get("icepeer", {}).get("median_ms")
        row = [fmt_ms(cells[m]["median_ms"]) if m in cells else "n/a" for m in methods]
        ratios = []
        for m in methods:
            if m == "icepeer":
                continue
            value = cells.get(m, {}).get("median_ms")
            ratios.append(f"{value / base:.1f}x" if value and base else "-")
        print(f"| {name} | " + " | ".join(row) + " | " + " | ".join(ratios) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
