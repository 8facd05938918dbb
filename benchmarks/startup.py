"""From process start to connected: ``icepeer connect`` beside a stock aiortc peer started the same way.

    .venv/bin/python benchmarks/startup.py [--runs 7]

Each run spawns two processes of one program at the same instant, on
loopback, in a fresh room of one signaling server; the figure is the time
from the spawn until the slower of the two says it is connected (imports,
signaling, ICE, DTLS, SCTP, the channel: everything a user waits for). The
programs alternate run by run. ``icepeer`` is the real command line;
``aiortc`` is :func:`stock_peer` below, the least a stock aiortc peer needs
(aiortc, the signaling client, no icepeer), run as ``python -c``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

STOCK = r'''
import asyncio, json, sys
import aioice.ice
from aiortc import RTCPeerConnection, RTCSessionDescription
from signaling.client import SignalingClient
from signaling.protocol import PeerJoined, Relayed

async def main(url, room):
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]
    pc = RTCPeerConnection()
    sig = await SignalingClient.connect(url, room)
    opened = asyncio.get_running_loop().create_future()
    def adopt(channel):
        channel.on("open", lambda: opened.done() or opened.set_result(channel))
        if channel.readyState == "open" and not opened.done():
            opened.set_result(channel)
    if sig.peers:
        other = sig.peers[0]
        pc.on("datachannel", adopt)
        while not (isinstance(e := await sig.recv(), Relayed) and e.data.get("type") == "offer"):
            pass
        await pc.setRemoteDescription(RTCSessionDescription(**e.data))
        await pc.setLocalDescription(await pc.createAnswer())
        await sig.signal(other, {"type": "answer", "sdp": pc.localDescription.sdp})
    else:
        while not isinstance(e := await sig.recv(), PeerJoined):
            pass
        other = e.peer_id
        adopt(pc.createDataChannel("chat"))
        await pc.setLocalDescription(await pc.createOffer())
        await sig.signal(other, {"type": "offer", "sdp": pc.localDescription.sdp})
        while not (isinstance(e := await sig.recv(), Relayed) and e.data.get("type") == "answer"):
            pass
        await pc.setRemoteDescription(RTCSessionDescription(**e.data))
    await opened
    print(json.dumps({"event": "connected"}), flush=True)
    await asyncio.sleep(0.3)
    await pc.close()

asyncio.run(main(sys.argv[1], sys.argv[2]))
'''


def command(program: str, url: str, room: str) -> list[str]:
    python = sys.executable
    if program == "icepeer":
        icepeer = str(Path(python).with_name("icepeer"))
        return [icepeer, "connect", "--room", room, "--signal", url, "--host-address", "127.0.0.1", "--json"]
    return [python, "-c", STOCK, url, room]


async def one(program: str, url: str, room: str) -> float | None:
    """Both peers of ``room``: seconds from spawn until both said connected."""
    started = time.monotonic()
    procs = [
        await asyncio.create_subprocess_exec(*command(program, url, room), stdin=asyncio.subprocess.PIPE,
                                             stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
                                             env={**os.environ, "PYTHONPATH": str(ROOT)})
        for _ in range(2)
    ]
    times: list[float] = []
    try:
        async with asyncio.timeout(30):
            for proc in procs:
                assert proc.stdout is not None
                while line := await proc.stdout.readline():
                    if json.loads(line).get("event") == "connected":
                        times.append(time.monotonic() - started)
                        break
    except TimeoutError:
        pass
    for proc in procs:
        if proc.stdin is not None:
            proc.stdin.close()  # icepeer connect ends with stdin
        try:
            async with asyncio.timeout(5):
                await proc.wait()
        except TimeoutError:
            proc.kill()
            await proc.wait()
    return max(times) if len(times) == 2 else None


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from signaling.server import ServerConfig, SignalingServer

    programs = ("icepeer", "aiortc")
    samples: dict[str, list[float]] = {p: [] for p in programs}
    rooms = itertools.count()
    async with SignalingServer(ServerConfig(port=0)) as server:
        for _ in range(args.runs):
            for program in programs:
                elapsed = await one(program, server.url, f"start-{next(rooms)}")
                if elapsed is not None:
                    samples[program].append(elapsed * 1000)
    medians = {p: statistics.median(v) if v else None for p, v in samples.items()}
    if args.json:
        print(json.dumps({"medians_ms": medians, "runs_ms": samples}, indent=2))
        return 0
    print("| program | median, spawn to connected | runs |")
    print("|---|---|---|")
    for program in programs:
        m = medians[program]
        print(f"| {program} | {m:.0f} ms | {len(samples[program])}/{args.runs} |" if m else f"| {program} | - | 0 |")
    if medians["icepeer"] and medians["aiortc"]:
        print(f"\nicepeer / aiortc: {medians['icepeer'] / medians['aiortc']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
