"""Stock aiortc behind ``icepeer connect``'s command line, to measure it in the same places.

    benchmarks/aiortc_peer.py connect --room R --signal URL --ice-server URL... [--relay-only] --json --timeout S

The same flags, JSON events (``connected``, ``message``, ``closed``,
``error``) and exit codes as ``icepeer connect``, but the connection is a
plain ``RTCPeerConnection`` with one data channel, offer and answer over the
same signaling server (no trickle: aiortc gathers every candidate first).
The NAT lab runs it with ``icepeer lab run --peer-command``
(``benchmarks/lab_loss.py``). Nothing here is icepeer's own ICE.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

from _harness import open_aiortc


def event(name: str, **fields: object) -> None:
    print(json.dumps({"event": name, **fields}), flush=True)


def endpoint(candidate) -> dict[str, object]:
    return {"type": candidate.type, "address": candidate.host, "port": candidate.port, "protocol": "udp"}


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("verb", choices=["connect"])
    parser.add_argument("--room", required=True)
    parser.add_argument("--signal", required=True)
    parser.add_argument("--ice-server", action="append", default=[])
    parser.add_argument("--relay-only", action="store_true")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--timeout", type=float, default=30)
    args = parser.parse_args()
    started = time.monotonic()
    try:
        link = await asyncio.wait_for(open_aiortc(args, loopback=False), args.timeout)
    except Exception as exc:  # noqa: BLE001 - the CLI contract: an error event and exit 1
        event("error", message=f"{type(exc).__name__}: {exc}")
        return 1
    pair = link.pair
    event("connected", local=endpoint(pair.local_candidate), remote=endpoint(pair.remote_candidate),
          elapsed_ms=round((time.monotonic() - started) * 1000, 1))

    async def receive() -> None:
        while True:
            data = await link.recv()
            event("message", data=data if isinstance(data, str) else data.decode(errors="replace"))

    receiver = asyncio.create_task(receive())
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            break
        await link.send(line.rstrip("\n"))
    await asyncio.wait_for(link.drain(), 10)
    await asyncio.sleep(0.5)
    receiver.cancel()
    await link.close()
    event("closed", reason="stdin closed")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
