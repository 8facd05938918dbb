"""Lines through ``icepeer connect``, beside the same command over stock aiortc, in one run.

    .venv/bin/python benchmarks/cli_lines.py [--runs 5] [--lines 100000] [--width 100]

Two ``connect`` processes on loopback; ``--lines`` lines of ``--width``
bytes are written into one's stdin, and the figure is the time from the
first line written until the other printed the last one (lines per second,
and MB/s). ``icepeer`` is the real command; ``aiortc`` is
``benchmarks/aiortc_cli.py connect``: icepeer's own command code over a stock
aiortc data channel (on asyncio's loop). The two alternate, run by run.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PROGRAMS = {
    "icepeer": ([sys.executable, "-m", "icepeer"], {}),
    "aiortc": ([sys.executable, str(Path(__file__).with_name("aiortc_cli.py"))], {"ICEPEER_LOOP": "asyncio"}),
}


async def one(program: str, url: str, room: str, lines: int, width: int) -> float | None:
    argv, extra_env = PROGRAMS[program]
    env = {**os.environ, "PYTHONPATH": str(ROOT), **extra_env}
    common = ["connect", "--room", room, "--signal", url, "--host-address", "127.0.0.1"]
    a = await asyncio.create_subprocess_exec(*argv, *common, stdin=asyncio.subprocess.PIPE,
                                             stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
                                             env=env)
    b = await asyncio.create_subprocess_exec(*argv, *common, stdin=asyncio.subprocess.PIPE,
                                             stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
                                             env=env)
    assert a.stdin is not None and a.stderr is not None and b.stdout is not None and b.stdin is not None
    try:
        async with asyncio.timeout(120):
            while b"connected via" not in await a.stderr.readline():
                pass
            line = (b"x" * (width - 1)) + b"\n"
            block = line * 1000

            async def write() -> None:
                for _ in range(lines // 1000):
                    a.stdin.write(block)  # type: ignore[union-attr]
                    await a.stdin.drain()  # type: ignore[union-attr]

            started = time.monotonic()
            writer = asyncio.create_task(write())
            got = 0
            while got < lines:
                chunk = await b.stdout.read(1 << 20)
                if not chunk:
                    return None
                got += chunk.count(b"\n")
            elapsed = time.monotonic() - started
            await writer
            return elapsed
    except TimeoutError:
        return None
    finally:
        for proc in (a, b):
            if proc.stdin is not None:
                proc.stdin.close()
            try:
                async with asyncio.timeout(10):
                    await proc.wait()
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--width", type=int, default=100, help="bytes per line, newline included")
    args = parser.parse_args()
    from signaling.server import ServerConfig, SignalingServer

    samples: dict[str, list[float]] = {p: [] for p in PROGRAMS}
    rooms = itertools.count()
    async with SignalingServer(ServerConfig(port=0)) as server:
        for _ in range(args.runs):
            for program in PROGRAMS:
                elapsed = await one(program, server.url, f"lines-{next(rooms)}", args.lines, args.width)
                if elapsed is not None:
                    samples[program].append(args.lines / elapsed)
                print(program, f"{args.lines / elapsed:.0f} lines/s" if elapsed else "failed",
                      file=sys.stderr, flush=True)
    print(f"| {args.lines} lines of {args.width} bytes, median of {args.runs} | lines/s | MB/s |")
    print("|---|---|---|")
    medians = {p: statistics.median(v) if v else None for p, v in samples.items()}
    for program, rate in medians.items():
        print(f"| {program} | {rate:.0f} | {rate * args.width / 1e6:.2f} |" if rate else f"| {program} | - | - |")
    if medians["icepeer"] and medians["aiortc"]:
        print(f"\nicepeer / aiortc: {medians['icepeer'] / medians['aiortc']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
