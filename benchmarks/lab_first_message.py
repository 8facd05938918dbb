"""From process start to the first message, on the lab's path profiles: icepeer with and without its
accelerations, stock aiortc and the puncher, side by side.

    sudo .venv/bin/python benchmarks/lab_first_message.py [--profiles lan,broadband,...] [--runs 10]
        [--cell prc:prc] [--methods icepeer,icepeer-standard,aiortc,punch] [--delay MS] [--json FILE]

For each profile one lab is built for ``--cell`` (docs/lab.md); then, the
methods alternating run by run, both peers' programs are spawned in the two
host namespaces at the same instant, each sends one line as soon as it says
``connected``, and the time from the spawn to the other side's line
arriving is noted on each side. The slower side is the run's figure:
"both have had a first message". A run that fails counts as infinitely
slow (median and nearest-rank p95 of ``--runs``).

Methods, all the same command line and JSON events (``connected``,
``message``): ``icepeer`` (``icepeer connect``: SNAP, SPED, pre-agreed
channel, join in the handshake), ``icepeer-standard`` (the same with
``--standard-handshake``), ``aiortc`` (``benchmarks/aiortc_peer.py``: stock
aiortc, one data channel, no trickle) and ``punch`` (``icepeer punch``).
For icepeer the ``connected`` event also gives each phase after the peer
was found in round trips of the path; they are averaged over the runs.
Root and network namespaces: the programs only talk to the lab.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import shlex
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from icepeer.lab.cell import Mode, ice_server_args
from icepeer.lab.kinds import NatKind
from icepeer.lab.lab import Lab
from icepeer.lab.profiles import PROFILES
from icepeer.lab.runner import cell_topology, default_peer_command, peer_namespaces

HERE = Path(__file__).resolve().parent


#: ``--before CMD``: the method ``before`` runs this icepeer (another checkout) with ``connect``.
BEFORE: list[str] = []


def command(method: str) -> tuple[list[str], Mode]:
    icepeer = default_peer_command()
    return {
        "icepeer": ([*icepeer, "connect"], Mode.ICE),
        "before": ([*BEFORE, "connect"], Mode.ICE),
        "icepeer-standard": ([*icepeer, "connect", "--standard-handshake"], Mode.ICE),
        "aiortc": ([sys.executable, str(HERE / "aiortc_peer.py"), "connect"], Mode.ICE),
        "punch": ([*icepeer, "punch"], Mode.PUNCH),
    }[method]


async def one_run(lab: Lab, namespaces: tuple[str, str], method: str, room: str,
                  timeout: float) -> dict[str, Any]:
    argv, mode = command(method)
    argv = [*argv, "--room", room, "--signal", lab.signal_url, *ice_server_args(mode), "--json",
            "--timeout", f"{timeout:g}"]
    started = time.monotonic()
    procs = [await lab.spawn(ns, argv) for ns in namespaces]

    async def side(proc: asyncio.subprocess.Process, name: str) -> dict[str, Any]:
        assert proc.stdout is not None and proc.stdin is not None
        out: dict[str, Any] = {}
        while True:
            line = await proc.stdout.readline()
            if not line:
                return out
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("event") == "connected":
                out["connected_ms"] = (time.monotonic() - started) * 1000
                out["phases"] = event.get("phases")
                proc.stdin.write(f"first from {name}\n".encode())
                await proc.stdin.drain()
            elif event.get("event") == "message":
                out["first_message_ms"] = (time.monotonic() - started) * 1000
                return out

    try:
        sides = await asyncio.wait_for(asyncio.gather(side(procs[0], "a"), side(procs[1], "b")), timeout + 5)
    except TimeoutError:
        sides = [{}, {}]
    for proc in procs:
        if proc.stdin is not None:
            proc.stdin.close()
    for proc in procs:
        try:
            await asyncio.wait_for(proc.wait(), 5)
        except TimeoutError:
            proc.kill()
            await proc.wait()
    times = [s.get("first_message_ms") for s in sides]
    return {"ms": max(times) if all(t is not None for t in times) else math.inf, "sides": sides}


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    times = sorted(r["ms"] for r in runs)
    p95 = times[max(0, math.ceil(0.95 * len(times)) - 1)]
    phases: dict[str, list[float]] = {}
    for run in runs:
        for s in run["sides"]:
            for phase in s.get("phases") or []:
                if phase.get("round_trips") is not None:
                    phases.setdefault(phase["phase"], []).append(phase["round_trips"])
    return {
        "connected": sum(1 for t in times if t != math.inf), "runs": len(times),
        "median_ms": round(statistics.median(times), 1) if times else None,
        "p95_ms": round(p95, 1) if p95 != math.inf else None,
        "times_ms": [round(t, 1) if t != math.inf else None for t in times],
        "phases_rtt": {k: round(statistics.mean(v), 2) for k, v in phases.items()},
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profiles", default="lan,broadband,mobile,intercontinental,lossy-wifi")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--cell", default="prc:prc")
    parser.add_argument("--methods", default="icepeer,icepeer-standard,aiortc,punch")
    parser.add_argument("--delay", type=float, default=None, help="override the profiles' one-way delay (ms)")
    parser.add_argument("--timeout", type=float, default=20)
    parser.add_argument("--json", metavar="FILE")
    parser.add_argument("--before", metavar="CMD", help="method 'before': this icepeer command (an older "
                        "checkout, e.g. 'python -c ...' or OLD/.venv/bin/icepeer), beside 'icepeer', for a before/after")
    args = parser.parse_args()
    if args.before:
        BEFORE[:] = shlex.split(args.before)
    a, b = (NatKind(k) for k in args.cell.split(":"))
    methods = args.methods.split(",")
    results: dict[str, Any] = {}
    for name in args.profiles.split(","):
        profile = PROFILES[name]
        options = profile.apply(delay_ms=args.delay)
        topology = cell_topology(a, b, options)
        namespaces = peer_namespaces(topology)
        runs: dict[str, list[dict[str, Any]]] = {m: [] for m in methods}
        async with Lab(topology) as lab:
            for i in range(args.runs):
                for method in methods:
                    run = await one_run(lab, namespaces, method, f"fm-{name}-{method}-{i}", args.timeout)
                    runs[method].append(run)
                    print(f"{name:16} {method:16} run {i + 1}: "
                          + (f"{run['ms']:.0f} ms" if run["ms"] != math.inf else "failed"), file=sys.stderr)
        results[name] = {"rtt_ms": options.rtt_ms, "options": options.to_json(),
                         **{m: summary(r) for m, r in runs.items()}}
        for method in methods:
            s = results[name][method]
            print(f"{name:16} {method:16} {s['connected']}/{s['runs']} median {s['median_ms']} ms "
                  f"p95 {s['p95_ms']} ms  phases (RTT) {s['phases_rtt']}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
