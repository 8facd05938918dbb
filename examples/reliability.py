"""Three kinds of channel side by side: the same stream on each, and what arrives.

    python examples/reliability.py --signal ws://127.0.0.1:8765
    python examples/reliability.py --signal ws://127.0.0.1:8765 \\
        --ice-server 'turn:user:pass@127.0.0.1:3478?transport=udp' --loss 0.1

Two peers in this one process connect; the sender sends message 0, 1, 2,
... every ``--interval`` ms on three channels at once:

- ``reliable``: ordered and reliable (the default, like TCP). Everything
  arrives, in order; a lost packet holds back everything behind it until its
  retransmission arrives (head-of-line blocking).
- ``unordered``: reliable but unordered (``ordered=False``). Everything
  arrives; messages behind a lost one are delivered at once, out of order.
- ``unreliable``: unordered, never retransmitted (``ordered=False,
  max_retransmits=0``, like UDP). What is lost stays lost; nothing waits.
  ``max_packet_lifetime=MS`` instead gives up after a time rather than a
  number of retries (RFC 3758).

On one machine nothing is lost, so all three look alike. ``--loss P`` makes
the difference visible: the receiving peer then connects relay-only through
the TURN server given with ``--ice-server``, by way of a small forwarder in
this program that drops a share ``P`` of the relayed data (TURN ChannelData
messages; TURN's own requests pass) in both directions, once the channels
are open.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import random
import secrets
import statistics
import sys
import time
from typing import Any

import icepeer
from icecommon.urls import IceServerUrl, parse_ice_url

#: label -> the options of Peer.channel()
CHANNELS: dict[str, dict[str, Any]] = {
    "reliable": {},
    "unordered": {"ordered": False},
    "unreliable": {"ordered": False, "max_retransmits": 0},
}


@dataclasses.dataclass
class Arrivals:
    """What one channel delivered: (sequence number, delay in ms) in arrival order."""

    got: list[tuple[int, float]] = dataclasses.field(default_factory=list)

    def summary(self, sent: int) -> dict[str, Any]:
        seqs = [seq for seq, _ in self.got]
        delays = [delay for _, delay in self.got]
        highest, out_of_order = -1, 0
        for seq in seqs:
            if seq < highest:
                out_of_order += 1  # overtaken by a later message
            highest = max(highest, seq)
        return {
            "arrived": len(set(seqs)),
            "sent": sent,
            "lost": sent - len(set(seqs)),
            "out_of_order": out_of_order,
            "median_delay_ms": round(statistics.median(delays), 1) if delays else None,
            "max_delay_ms": round(max(delays), 1) if delays else None,
        }


async def receive(
    channel: icepeer.Channel, arrivals: Arrivals, count: int, done: asyncio.Event
) -> None:
    async for message in channel:
        seq, _, stamp = str(message).partition(" ")
        arrivals.got.append((int(seq), (time.monotonic() - float(stamp.split(" ")[0])) * 1000))
        if len({s for s, _ in arrivals.got}) == count:
            break
    done.set()


class LossyForwarder(asyncio.DatagramProtocol):
    """A UDP forwarder between one TURN client and its server that drops relayed data at random."""

    def __init__(self, server: tuple[str, int]) -> None:
        self.server = server
        self.loss = 0.0
        self.dropped = 0
        self.client: tuple[str, int] | None = None
        self.front: asyncio.DatagramTransport | None = None
        self.back: asyncio.DatagramTransport | None = None

    async def start(self) -> tuple[str, int]:
        loop = asyncio.get_running_loop()
        self.front, _ = await loop.create_datagram_endpoint(
            lambda: _Side(self._from_client), local_addr=("127.0.0.1", 0)
        )
        self.back, _ = await loop.create_datagram_endpoint(
            lambda: _Side(self._from_server), remote_addr=self.server
        )
        address: tuple[str, int] = self.front.get_extra_info("sockname")[:2]
        return address

    def _drop(self, data: bytes) -> bool:
        # ChannelData (RFC 8656 section 12.4) starts with 0b01; STUN-format TURN requests with 0b00.
        if self.loss and 0x40 <= data[0] <= 0x7F and random.random() < self.loss:
            self.dropped += 1
            return True
        return False

    def _from_client(self, data: bytes, addr: tuple[str, int]) -> None:
        self.client = addr
        if self.back is not None and not self._drop(data):
            self.back.sendto(data)

    def _from_server(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.front is not None and self.client is not None and not self._drop(data):
            self.front.sendto(data, self.client)

    def close(self) -> None:
        for transport in (self.front, self.back):
            if transport is not None:
                transport.close()


class _Side(asyncio.DatagramProtocol):
    def __init__(self, handler: Any) -> None:
        self.handler = handler

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.handler(data, addr)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    servers = [parse_ice_url(url) for url in args.ice_server]
    common: dict[str, Any] = {"host_addresses": args.host_address or None, "timeout": args.timeout}
    sender_options: dict[str, Any] = {"ice_servers": servers}
    receiver_options: dict[str, Any] = {"ice_servers": servers}
    forwarder = None
    if args.loss:
        turn = next(
            (s for s in servers if s.is_turn and s.transport == "udp" and not s.secure), None
        )
        if turn is None:
            raise icepeer.ConfigError(
                "--loss needs a TURN server over UDP: --ice-server turn:user:pass@host:port"
            )
        forwarder = LossyForwarder((turn.host, turn.port))
        host, port = await forwarder.start()
        lossy: IceServerUrl = dataclasses.replace(turn, host=host, port=port)
        # Only the receiver goes through the forwarder; the sender offers host candidates.
        receiver_options = {"ice_servers": [lossy], "relay_only": True}
        sender_options = {"ice_servers": [s for s in servers if not s.is_turn]}

    room = args.room or f"reliability-{secrets.token_hex(4)}"
    try:
        sender, receiver = await asyncio.gather(
            icepeer.connect(args.signal, room, **common, **sender_options),
            icepeer.connect(args.signal, room, **common, **receiver_options),
        )
    except BaseException:
        if forwarder is not None:
            forwarder.close()
        raise
    try:
        pairs = {}
        for label, options in CHANNELS.items():
            pairs[label] = await asyncio.gather(
                sender.channel(label, **options), receiver.channel(label, **options)
            )
        path = receiver.report().path
        if forwarder is not None:
            forwarder.loss = args.loss  # the link goes bad now

        arrivals = {label: Arrivals() for label in CHANNELS}
        complete = {label: asyncio.Event() for label in CHANNELS}
        readers = [
            asyncio.create_task(
                receive(pairs[label][1], arrivals[label], args.count, complete[label])
            )
            for label in CHANNELS
        ]
        pad = max(0, args.size - 30)
        for seq in range(args.count):
            message = f"{seq} {time.monotonic():.6f} " + "." * pad
            for label in CHANNELS:
                await pairs[label][0].send(message)
            await asyncio.sleep(args.interval / 1000)
        # The reliable channels deliver everything eventually; the unreliable one gets a moment.
        try:
            async with asyncio.timeout(args.timeout):
                await asyncio.gather(complete["reliable"].wait(), complete["unordered"].wait())
        except TimeoutError:
            pass
        try:
            async with asyncio.timeout(args.grace):
                await complete["unreliable"].wait()
        except TimeoutError:
            pass
        for reader in readers:
            reader.cancel()
        return {
            "path": path,
            "loss": args.loss,
            "dropped_by_forwarder": forwarder.dropped if forwarder else 0,
            "channels": {label: arrivals[label].summary(args.count) for label in CHANNELS},
        }
    finally:
        await asyncio.gather(sender.close(), receiver.close())
        if forwarder is not None:
            forwarder.close()


def show(result: dict[str, Any]) -> None:
    print(
        f"path {result['path']}, loss {result['loss']:.0%} "
        f"({result['dropped_by_forwarder']} datagrams dropped)"
    )
    print(
        f"{'channel':12} {'arrived':>9} {'lost':>5} {'out of order':>13} "
        f"{'median delay':>13} {'max delay':>10}"
    )
    for label, s in result["channels"].items():
        median = f"{s['median_delay_ms']} ms" if s["median_delay_ms"] is not None else "-"
        worst = f"{s['max_delay_ms']} ms" if s["max_delay_ms"] is not None else "-"
        print(
            f"{label:12} {s['arrived']:>4}/{s['sent']:<4} {s['lost']:>5} {s['out_of_order']:>13} "
            f"{median:>13} {worst:>10}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(
        description="Reliable, unordered and unreliable channels side by side."
    )
    parser.add_argument("--signal", default="ws://127.0.0.1:8765", help="signaling server URL")
    parser.add_argument("--room", help="room (default: a fresh one; both peers run here)")
    parser.add_argument(
        "--ice-server",
        action="append",
        default=[],
        metavar="URL",
        help="stun:host:port or turn:user:pass@host:port (repeatable)",
    )
    parser.add_argument(
        "--host-address",
        action="append",
        default=[],
        metavar="ADDR",
        help="gather host candidates on this address only (tests: 127.0.0.1)",
    )
    parser.add_argument(
        "--loss", type=float, default=0.0, help="share of relayed data to drop (0 to 0.5)"
    )
    parser.add_argument("--count", type=int, default=300, help="messages per channel")
    parser.add_argument("--interval", type=float, default=5.0, help="milliseconds between messages")
    parser.add_argument("--size", type=int, default=200, help="bytes per message")
    parser.add_argument(
        "--grace",
        type=float,
        default=1.0,
        help="seconds to wait for the unreliable channel's last messages",
    )
    parser.add_argument(
        "--timeout", type=float, default=30.0, help="seconds to connect, and to deliver"
    )
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    args = parser.parse_args()
    if not 0 <= args.loss <= 0.5:
        parser.error("--loss must be between 0 and 0.5")
    try:
        result = asyncio.run(run(args))
    except icepeer.IcepeerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    if args.json:
        print(json.dumps(result))
    else:
        show(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
