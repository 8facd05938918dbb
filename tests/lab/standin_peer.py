"""A stand-in for ``icepeer connect``/``icepeer punch`` in the lab tests, until those exist.

It keeps the CLI contract the lab runner relies on (``--room --signal
--ice-server... [--relay-only] --json --timeout``; stdin lines become
messages; JSON events on stdout; exit 0/1/2) with plain aioice: no DTLS, no
data channel, messages are bare UDP datagrams over the ICE pair. Only for
testing the runner; it proves nothing about icepeer's own peer.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any

import aioice

from icecommon.urls import parse_ice_url
from signaling.client import join
from signaling.protocol import PeerJoined, Relayed


def emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


def describe(c: aioice.Candidate) -> dict[str, Any]:
    return {"type": c.type, "address": c.host, "port": c.port, "protocol": c.transport.lower()}


async def main(args: argparse.Namespace) -> int:
    started = time.monotonic()
    stun = turn = None
    for url in map(parse_ice_url, args.ice_server):
        if url.is_turn and turn is None:
            turn = url
        elif not url.is_turn and stun is None:
            stun = url
    async with asyncio.timeout(args.timeout):
        async with join(args.signal, args.room) as client:
            controlling = bool(client.peers)
            conn = aioice.Connection(
                ice_controlling=controlling,
                stun_server=(stun.host, stun.port) if stun else None,
                turn_server=(turn.host, turn.port) if turn else None,
                turn_username=turn.username if turn else None,
                turn_password=turn.password if turn else None,
                turn_transport=turn.transport if turn else "udp",
                use_ipv6=False,
                transport_policy=aioice.TransportPolicy.RELAY if args.relay_only else aioice.TransportPolicy.ALL,
            )
            await conn.gather_candidates()
            mine = {"ufrag": conn.local_username, "pwd": conn.local_password,
                    "candidates": [c.to_sdp() for c in conn.local_candidates]}
            other = client.peers[0] if client.peers else None
            if other:
                await client.signal(other, mine)
            async for event in client:
                if isinstance(event, PeerJoined):
                    other = event.peer_id
                    await client.signal(other, mine)
                elif isinstance(event, Relayed):
                    theirs = event.data
                    break
            conn.remote_username, conn.remote_password = theirs["ufrag"], theirs["pwd"]
            for sdp in theirs["candidates"]:
                await conn.add_remote_candidate(aioice.Candidate.from_sdp(sdp))
            await conn.add_remote_candidate(None)
            await conn.connect()
    pair = conn._nominated[1]
    emit("connected", local=describe(pair.local_candidate), remote=describe(pair.remote_candidate),
         elapsed_ms=round((time.monotonic() - started) * 1000))

    async def receive() -> None:
        while True:
            data = await conn.recv()
            emit("message", data=data.decode())

    receiver = asyncio.create_task(receive())
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        await conn.send(line.rstrip(b"\n"))
    await asyncio.sleep(0.5)
    receiver.cancel()
    await conn.close()
    emit("closed", reason="stdin closed")
    return 0


def cli() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("verb", choices=["connect", "punch"])
    parser.add_argument("--room", required=True)
    parser.add_argument("--signal", required=True)
    parser.add_argument("--ice-server", action="append", default=[])
    parser.add_argument("--relay-only", action="store_true")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--timeout", type=float, default=30)
    args = parser.parse_args()
    try:
        return asyncio.run(main(args))
    except Exception as exc:  # noqa: BLE001 - the contract: an error event and exit 1
        emit("error", message=f"{type(exc).__name__}: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(cli())
