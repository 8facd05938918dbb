"""Connect time, its phases in round trips, and throughput on the lab's path profiles, side by side.

    sudo .venv/bin/python benchmarks/lab_profiles.py [--profiles lan,broadband,...] [--runs 20]
        [--throughput-runs 3] [--seconds 8] [--methods icepeer,aiortc,punch] [--cell prc:prc]
        [--json FILE]

For each profile (icepeer/lab/profiles.py) one lab is built for ``--cell``
(two sites behind the given NAT kinds, the profile's delay, rate and loss on
their uplinks; docs/lab.md), and in it, alternating the methods run by run:

- **connect**, ``--runs`` times: two child processes start in the two host
  namespaces at the same instant, connect through the lab's signaling
  server (ICE: the lab's STUN and TURN over UDP and TCP; the puncher: STUN),
  open a channel and swap one message. The connect time is the slower
  side's time from the start to its channel being open; median and p95
  (nearest rank: of 20 runs the 19th; a failed run counts as infinitely
  slow). Each side also notes when it passed each phase: icepeer's own
  marks (``report().timings_ms``: joined, peer_found, ice_connected,
  dtls_connected, channel_open), and the same instants for stock aiortc
  from its state events. The phases are shown in round trips of the path,
  beside the round trips each needs at the least.
- **throughput**, ``--throughput-runs`` times: A sends 16 KiB messages for
  ``--seconds`` as fast as the method's backpressure lets it; B counts the
  bytes from the first message to the last; the rate and its share of the
  bottleneck (the profile's rate).

Methods: ``icepeer`` (icepeer.connect and a channel; ``icepeer+uvloop`` the
same on uvloop, as the icepeer CLI runs; every other child runs on
asyncio's own loop), ``aiortc`` (stock
aiortc, ``RTCPeerConnection`` with one data channel, offer and answer over
the same signaling), ``punch`` (icepeer.punch). Root and network
namespaces; the children run inside the lab's host namespaces and only
ever talk to the lab (the parent talks to them over pipes).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from _harness import wait_start

import icepeer
from icecommon import aio
from icepeer.lab.cell import Mode, ice_server_args
from icepeer.lab.kinds import NatKind
from icepeer.lab.lab import Lab
from icepeer.lab.profiles import PROFILES, Profile
from icepeer.lab.runner import cell_topology, peer_namespaces
from signaling.client import SignalingClient
from signaling.protocol import PeerJoined, Relayed

SIZE = 16 * 1024
DONE = b"done"
PHASES = [  # (name, from mark, to mark, least round trips of the path: standard, accelerated)
    # TCP, then the WebSocket handshake carrying the join: 2 round trips to a server halfway.
    ("signaling", "start", "joined", "1"),
    ("peer", "joined", "peer_found", "0"),  # both started together: the second finds the first at once
    ("ICE", "peer_found", "ice_connected", "2"),  # offer and answer through the server, one check
    # A full DTLS 1.2 handshake; with SPED it rides in the ICE checks and can end with ICE.
    ("DTLS", "ice_connected", "dtls_connected", "2 / 0"),
    # SCTP's INIT and COOKIE exchanges, then DCEP's OPEN reaching the answerer; with SNAP and a
    # pre-agreed channel, none of it. icepeer's connect() returns as SCTP starts: one phase here.
    ("SCTP + channel", "dtls_connected", "channel_open", "2.5 / 0"),
]


# -- children: one peer each, inside a host namespace ---------------------------


class Opened:
    def __init__(self, send: Any, recv: Any, close: Any, path: str, marks: dict[str, float],
                 drain: Any) -> None:
        self.send, self.recv, self.close, self.path, self.marks = send, recv, close, path, marks
        #: Wait until the peer acknowledged everything sent (closing before that can lose it).
        self.drain = drain


async def open_icepeer(args: argparse.Namespace, t0: float, *, accelerate: bool = True) -> Opened:
    called = time.time()  # timings_ms count from connect()'s own start
    peer = await icepeer.connect(args.signal, args.room, ice_servers=args.ice_server, timeout=30,
                                 accelerate=accelerate)
    returned = time.time()  # connect() returns once SCTP is up
    channel = await peer.channel("bench")
    report = peer.report()
    marks = {k: v + (called - t0) * 1000 for k, v in report.timings_ms.items()}
    used = [name for name, on in getattr(report, "accelerated", {}).items() if on]
    marks["connect_returned"] = (returned - t0) * 1000
    marks["channel_open"] = (time.time() - t0) * 1000
    path = report.path + (f" [{', '.join(used)}]" if used else "")
    return Opened(channel.send, channel.recv, peer.close, path, marks, peer.drain)


async def open_aiortc(args: argparse.Namespace, t0: float) -> Opened:
    from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription

    from icecommon.urls import parse_ice_url

    marks: dict[str, float] = {}

    def mark(name: str) -> None:
        marks.setdefault(name, (time.time() - t0) * 1000)

    servers = []
    for url in args.ice_server:
        parsed = parse_ice_url(url)
        servers.append(RTCIceServer(urls=parsed.url(), username=parsed.username, credential=parsed.password))
    pc = RTCPeerConnection(RTCConfiguration(iceServers=servers))

    @pc.on("iceconnectionstatechange")
    def _ice() -> None:
        if pc.iceConnectionState in ("completed", "connected"):
            mark("ice_connected")

    @pc.on("connectionstatechange")
    def _conn() -> None:
        if pc.connectionState == "connected":
            mark("dtls_connected")  # every DTLS transport connected

    sig = await SignalingClient.connect(args.signal, args.room)
    mark("joined")
    opened: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    queue: asyncio.Queue[Any] = asyncio.Queue()

    def adopt(channel: Any) -> None:
        channel.on("message", queue.put_nowait)
        if channel.readyState == "open":
            opened.done() or opened.set_result(channel)
        channel.on("open", lambda: opened.done() or opened.set_result(channel))

    def watch_sctp() -> None:
        # aiortc says nothing when its association is up: note when it says "connected".
        sctp = pc.sctp
        original = sctp._set_state

        def set_state(state: Any) -> None:
            original(state)
            if sctp.state == "connected":
                mark("sctp_connected")

        sctp._set_state = set_state

    if sig.peers:
        other = sig.peers[0]
        mark("peer_found")
        pc.on("datachannel", adopt)
        while not (isinstance(event := await sig.recv(), Relayed) and event.data.get("type") == "offer"):
            pass
        await pc.setRemoteDescription(RTCSessionDescription(**event.data))
        watch_sctp()
        await pc.setLocalDescription(await pc.createAnswer())
        await sig.signal(other, {"type": "answer", "sdp": pc.localDescription.sdp})
    else:
        while not isinstance(event := await sig.recv(), PeerJoined):
            pass
        other = event.peer_id
        mark("peer_found")
        adopt(pc.createDataChannel("bench"))
        watch_sctp()
        await pc.setLocalDescription(await pc.createOffer())  # gathers every candidate first
        await sig.signal(other, {"type": "offer", "sdp": pc.localDescription.sdp})
        while not (isinstance(event := await sig.recv(), Relayed) and event.data.get("type") == "answer"):
            pass
        await pc.setRemoteDescription(RTCSessionDescription(**event.data))
    channel = await opened
    mark("channel_open")

    async def send(data: bytes) -> None:
        channel.send(data)
        while channel.bufferedAmount > 1024 * 1024:  # send() never blocks: poll its buffer
            await asyncio.sleep(0.001)

    async def close() -> None:
        await pc.close()
        await sig.leave()

    async def drain() -> bool:
        sctp = pc.sctp
        while channel.bufferedAmount or sctp._outbound_queue or sctp._sent_queue:
            await asyncio.sleep(0.01)
        return True

    pair = pc.sctp.transport.transport._connection._nominated.get(1)
    path = f"{pair.local_candidate.type} -> {pair.remote_candidate.type}" if pair else "?"
    return Opened(send, queue.get, close, path, marks, drain)


async def open_punch(args: argparse.Namespace, t0: float) -> Opened:
    from icepeer.punch import punch_connect

    stun = [u for u in args.ice_server if u.startswith("stun:")]
    link = await punch_connect(args.signal, args.room, stun=stun, timeout=30)
    marks = {"channel_open": (time.time() - t0) * 1000}
    return Opened(link.send, link.recv, link.close, f"{link.local.type.value} -> {link.remote.type.value}",
                  marks, link.drain)


async def open_icepeer_standard(args: argparse.Namespace, t0: float) -> Opened:
    return await open_icepeer(args, t0, accelerate=False)


OPENERS = {"icepeer": open_icepeer, "icepeer-standard": open_icepeer_standard, "aiortc": open_aiortc,
           "punch": open_punch, "icepeer+uvloop": open_icepeer}


async def child(args: argparse.Namespace) -> None:
    t0 = await wait_start()
    try:
        link = await asyncio.wait_for(OPENERS[args.child](args, t0), 40)
        if args.phase == "connect":
            await link.send(b"hello")
            await asyncio.wait_for(link.recv(), 30)
            result: dict[str, Any] = {"ok": True, "ms": link.marks["channel_open"], "marks": link.marks,
                                      "path": link.path}
            # Ours may have been lost and not yet resent: leave once the other side has it.
            await asyncio.wait_for(link.drain(), 30)
            await asyncio.sleep(0.2)
        elif args.index == 0:
            payload, until = b"x" * SIZE, time.monotonic() + args.seconds
            while time.monotonic() < until:
                await link.send(payload)
            await link.send(DONE)
            await asyncio.wait_for(link.recv(), 120)  # the receiver's "done"
            result = {"ok": True, "role": "sender"}
        else:
            received, first, last = 0, 0.0, 0.0
            while (data := await asyncio.wait_for(link.recv(), 60)) != DONE:
                last = time.monotonic()
                if not first:
                    first = last
                else:
                    received += len(data)
            await link.send(DONE)
            mbps = received * 8 / (last - first) / 1e6 if last > first else None
            result = {"ok": mbps is not None, "role": "receiver", "mbit_s": mbps, "path": link.path}
            await asyncio.wait_for(link.drain(), 30)
            await asyncio.sleep(0.2)
        await link.close()
    except Exception as exc:  # noqa: BLE001 - reported as a failed run
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(result), flush=True)


# -- the parent: a lab per profile, pairs of children in it ------------------------


async def run_pair(lab: Lab, namespaces: tuple[str, str], method: str, phase: str, room: str,
                   args: argparse.Namespace) -> list[dict[str, Any]]:
    mode = Mode.PUNCH if method == "punch" else Mode.ICE
    servers = [a for a in ice_server_args(mode) if a != "--relay-only"]
    argv = [sys.executable, __file__, "--child", method, "--phase", phase, "--room", room,
            "--signal", lab.signal_url, "--seconds", str(args.seconds), *servers]
    procs = [await lab.spawn(ns, [*argv, "--index", str(i)]) for i, ns in enumerate(namespaces)]
    for proc in procs:
        assert proc.stdout is not None
        await asyncio.wait_for(proc.stdout.readline(), 60)  # "ready": imports done
    start_at = time.time() + 0.1
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write(f"{start_at!r}\n".encode())
        await proc.stdin.drain()
    results = []
    for proc in procs:
        try:
            out, err = await asyncio.wait_for(proc.communicate(), 180)
        except TimeoutError:
            proc.kill()
            out, err = await proc.communicate()
        lines = out.decode().strip().splitlines()
        try:
            results.append(json.loads(lines[-1]))
        except (IndexError, json.JSONDecodeError):
            tail = err.decode().strip().splitlines()
            results.append({"ok": False, "error": tail[-1] if tail else "no output"})
    return results


def percentile(values: list[float], p: float) -> float:
    """Nearest rank (the smallest value with at least ``p`` of the values at or below it)."""
    ranked = sorted(values)
    return ranked[max(0, math.ceil(p * len(ranked)) - 1)]


def phase_durations(marks: dict[str, float]) -> dict[str, float]:
    marks = {"start": 0.0, **marks}
    return {name: marks[b] - marks[a] for name, a, b, _ in PHASES if a in marks and b in marks}


async def measure(profile: Profile, args: argparse.Namespace) -> dict[str, Any]:
    a, b = (NatKind(k) for k in args.cell.split(":"))
    options = profile.apply(delay_ms=args.delay, rate_mbit=args.rate, loss_percent=args.loss)
    if options != profile.options:
        profile = Profile(profile.name + "*", options.describe(), options)
    topology = cell_topology(a, b, profile.options)
    namespaces = peer_namespaces(topology)
    methods = args.methods.split(",")
    out: dict[str, Any] = {"profile": profile.name, "summary": profile.summary, "cell": args.cell,
                           "rtt_ms": profile.options.rtt_ms, "rate_mbit": profile.options.rate_mbit,
                           "connect": {m: [] for m in methods}, "throughput": {m: [] for m in methods}}
    rooms = iter(range(1_000_000))
    async with Lab(topology) as lab:
        for i in range(args.runs):
            for method in methods:
                pair = await run_pair(lab, namespaces, method, "connect", f"c{next(rooms)}", args)
                run = {"ok": all(r.get("ok") for r in pair), "sides": pair}
                if run["ok"]:
                    run["ms"] = max(r["ms"] for r in pair)
                out["connect"][method].append(run)
                shown = f"{run['ms']:.0f} ms" if run["ok"] else next(r.get("error") for r in pair if not r.get("ok"))
                say(f"{profile.name} connect {method:8} {i + 1:2}/{args.runs}: {shown}")
        for i in range(args.throughput_runs):
            for method in methods:
                pair = await run_pair(lab, namespaces, method, "throughput", f"t{next(rooms)}", args)
                receiver = next((r for r in pair if r.get("role") == "receiver"), {})
                rate = receiver.get("mbit_s") if receiver.get("ok") else None
                out["throughput"][method].append(rate)
                say(f"{profile.name} throughput {method:8} {i + 1}/{args.throughput_runs}: "
                    + (f"{rate:.1f} Mbit/s" if rate else str(next((r.get("error") for r in pair
                                                                      if not r.get("ok")), "?"))))
    return out


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# -- tables ---------------------------------------------------------------------------


def fmt_ms(v: float) -> str:
    return "fail" if math.isinf(v) else f"{v:.0f} ms"


def tables(results: list[dict[str, Any]]) -> str:
    methods = list(results[0]["connect"])
    lines = ["### Connect time", "",
             "| profile | " + " | ".join(f"{m} median | {m} p95" for m in methods) + " | connected |",
             "|---|" + "---|---|" * len(methods) + "---|"]
    for r in results:
        cells, counts = [], []
        for m in methods:
            runs = r["connect"][m]
            times = [x["ms"] if x["ok"] else math.inf for x in runs]
            cells += [fmt_ms(statistics.median(times)), fmt_ms(percentile(times, 0.95))]
            counts.append(f"{sum(x['ok'] for x in runs)}/{len(runs)}")
        lines.append(f"| {r['profile']} ({r['summary']}) | " + " | ".join(cells) + " | "
                     + ", ".join(counts) + " |")
    lines += ["", "### Phases (median ms, and round trips of the path)", "",
              "| profile | method | " + " | ".join(f"{n} (≥ {k})" for n, _, _, k in PHASES) + " |",
              "|---|---|" + "---|" * len(PHASES)]
    for r in results:
        rtt = r["rtt_ms"]
        for m in methods:
            per_phase: dict[str, list[float]] = {}
            for run in r["connect"][m]:
                for side in run["sides"] if run["ok"] else ():
                    for name, ms in phase_durations(side.get("marks", {})).items():
                        per_phase.setdefault(name, []).append(ms)
            if len(per_phase) < 2:
                continue
            cells = []
            for name, *_ in PHASES:
                if name not in per_phase:
                    cells.append("-")
                    continue
                ms = statistics.median(per_phase[name])
                cells.append(f"{ms:.0f} ({ms / rtt:.1f})" if rtt else f"{ms:.0f}")
            lines.append(f"| {r['profile']} | {m} | " + " | ".join(cells) + " |")
    lines += ["", "### Where the slow connections spent their time", "",
              "Every run over twice its method's median and over 500 ms: the slower side's phases "
              "of 300 ms or more.", ""]
    for r in results:
        for m in methods:
            done = [run["ms"] for run in r["connect"][m] if run["ok"]]
            slow = max(500.0, 2 * statistics.median(done)) if done else math.inf
            for run in r["connect"][m]:
                if not run["ok"] or run["ms"] < slow:
                    continue
                side = max(run["sides"], key=lambda s: s["ms"])
                long = [f"{n} {ms:.0f} ms" for n, ms in phase_durations(side.get("marks", {})).items()
                        if ms >= 300]
                lines.append(f"- {r['profile']}, {m}: {run['ms']:.0f} ms: " + (", ".join(long) or "-"))
    lines += ["", "### Throughput (16 KiB messages)", "",
              "| profile | bottleneck | " + " | ".join(methods) + " |",
              "|---|---|" + "---|" * len(methods)]
    for r in results:
        cap = r["rate_mbit"]
        cells = []
        for m in methods:
            rates = [x for x in r["throughput"][m] if x]
            if not rates:
                cells.append("-")
                continue
            med = statistics.median(rates)
            share = f" ({med / cap:.0%})" if cap else ""
            cells.append(f"{med:.1f} Mbit/s{share}")
        lines.append(f"| {r['profile']} | {f'{cap:g} Mbit/s' if cap else 'none'} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines)


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profiles", default=",".join(PROFILES))
    parser.add_argument("--runs", type=int, default=20, help="connections per method and profile")
    parser.add_argument("--throughput-runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8.0, help="how long A sends in a throughput run")
    parser.add_argument("--methods", default="icepeer,aiortc,punch")
    parser.add_argument("--cell", default="prc:prc", help="the two NAT kinds, A:B")
    parser.add_argument("--delay", type=float, help="override the profiles' one-way delay (ms)")
    parser.add_argument("--rate", type=float, help="override the profiles' rate (Mbit/s)")
    parser.add_argument("--loss", type=float, help="override the profiles' loss per site (%%)")
    parser.add_argument("--json", metavar="FILE", help="also write every run to FILE")
    parser.add_argument("--tables", metavar="FILE", help="only print the tables of a previous --json FILE")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--room", help=argparse.SUPPRESS)
    parser.add_argument("--signal", help=argparse.SUPPRESS)
    parser.add_argument("--ice-server", action="append", default=[], help=argparse.SUPPRESS)
    parser.add_argument("--index", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        await child(args)
        return 0
    if args.tables:
        print(tables(json.loads(Path(args.tables).read_text())))
        return 0
    results = []
    for name in args.profiles.split(","):
        results.append(await measure(PROFILES[name], args))
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    print(tables(results))
    return 0


if __name__ == "__main__":
    # A child of method icepeer+uvloop runs on uvloop, as the icepeer CLI does; every other one on asyncio's loop.
    on_uvloop = "--child" in sys.argv and sys.argv[sys.argv.index("--child") + 1].endswith("+uvloop")
    sys.exit(aio.run(main()) if on_uvloop else asyncio.run(main()))
