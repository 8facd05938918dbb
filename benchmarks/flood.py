"""A flood at a receiver that stops reading: its memory stays bounded, and nothing is lost.

    .venv/bin/python benchmarks/flood.py [--megabytes 128] [--pause 5] [--buffer-mib 4] [--methods icepeer,aiortc]

Two processes on loopback. The sender sends ``--megabytes`` of 16 KiB
messages (each numbered) as fast as ``await send()`` lets it; the receiver
does not read for ``--pause`` seconds, then reads everything and checks the
numbers arrive in order. The receiver's resident memory (VmRSS) is sampled
every 50 ms: the table gives its growth at the peak over what it was when
connected. With icepeer the growth stays near the receive buffer
(``--buffer-mib``, the SCTP window) plus a constant; stock aiortc hands
every message to its callback at once and returns the window credit, so it
holds whatever the sender sends.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import struct
import sys
import time

from _harness import OPENERS, child_parser, entry, run_pair, servers, wait_start

MESSAGE = 16384


def rss() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


async def child(args) -> None:
    await wait_start()
    try:
        if args.child.startswith("icepeer"):
            import icepeer

            peer = await icepeer.connect(args.signal, args.room, host_addresses=["127.0.0.1"], timeout=30,
                                         receive_buffer=args.buffer_mib * 1024 * 1024)
            channel = await peer.channel("flood")

            async def send(data: bytes) -> None:
                await channel.send(data)

            recv, close = channel.recv, peer.close
        else:
            link = await asyncio.wait_for(OPENERS[args.child](args), 40)
            send, recv, close = link.send, link.recv, link.close
        count = args.megabytes * 1024 * 1024 // MESSAGE
        if args.index == 0:
            started = time.monotonic()
            filler = b"f" * (MESSAGE - 4)
            for i in range(count):
                await send(struct.pack("!I", i) + filler)
            result = {"ok": True, "role": "sender", "seconds": time.monotonic() - started}
            await asyncio.wait_for(recv(), 300)  # the receiver's "done"
        else:
            base = rss()
            peak = base
            stop = asyncio.Event()

            async def sample() -> None:
                nonlocal peak
                while not stop.is_set():
                    peak = max(peak, rss())
                    await asyncio.sleep(0.05)

            sampler = asyncio.create_task(sample())
            await asyncio.sleep(args.pause)
            paused_peak = peak
            in_order = True
            for i in range(count):
                data = await asyncio.wait_for(recv(), 60)
                if struct.unpack_from("!I", data)[0] != i:
                    in_order = False
            stop.set()
            await sampler
            await send(b"done")
            await asyncio.sleep(0.5)
            result = {"ok": True, "role": "receiver", "received": count, "in_order": in_order,
                      "growth_paused_MiB": (paused_peak - base) / 2**20, "growth_peak_MiB": (peak - base) / 2**20}
        await close()
    except Exception as exc:  # noqa: BLE001 - reported as a failed run
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(result), flush=True)


async def main() -> int:
    parser = child_parser(__doc__, runs=1, methods="icepeer+uvloop,aiortc")
    parser.add_argument("--megabytes", type=int, default=128, help="MiB flooded")
    parser.add_argument("--pause", type=float, default=5.0, help="seconds the receiver does not read")
    parser.add_argument("--buffer-mib", type=int, default=4, help="icepeer's receive buffer, MiB")
    args = parser.parse_args()
    if args.child:
        await child(args)
        return 0
    rooms = itertools.count()
    rows = []
    extra = ["--megabytes", str(args.megabytes), "--pause", str(args.pause), "--buffer-mib", str(args.buffer_mib)]
    async with servers() as env:
        for _ in range(args.runs):
            for method in args.methods.split(","):
                pair = await run_pair(__file__, method, f"flood-{next(rooms)}", env, extra, timeout=600)
                receiver = next((r for r in pair if r.get("role") == "receiver"), {})
                error = next((r.get("error") for r in pair if not r.get("ok")), None)
                rows.append((method, receiver, error))
                print(method, receiver or error, file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps([{"method": m, **r, "error": e} for m, r, e in rows], indent=2))
        return 0
    print(f"| method | {args.megabytes} MiB at a receiver paused {args.pause:g} s: RSS growth while paused"
          " | at the peak | every message, in order |")
    print("|---|---|---|---|")
    for method, r, error in rows:
        if error:
            print(f"| {method} | failed: {error} | | |")
        else:
            print(f"| {method} | {r['growth_paused_MiB']:.1f} MiB | {r['growth_peak_MiB']:.1f} MiB | "
                  f"{'yes' if r['in_order'] else 'NO'} ({r['received']}) |")
    return 0


if __name__ == "__main__":
    sys.exit(entry(main))
