"""TURN credentials that expire: the signaling server mints them from coturn's shared secret.

coturn's REST scheme (``--use-auth-secret --static-auth-secret=S``): the
signaling server and coturn share a secret ``S``; for each peer that joins,
the server makes the username ``"<expiry unix time>:<peer id>"`` and the
password ``base64(HMAC-SHA1(S, username))``, and hands both out with the
TURN URLs. coturn checks the HMAC and the expiry itself, so it needs no user
database, and a leaked password stops working after ``--turn-ttl`` seconds.

Self-contained, on one machine (needs coturn's ``turnserver``)::

    python examples/coturn_rest.py

starts coturn with a fresh secret and the signaling server on loopback, shows
what a joining peer receives, then connects two peers relay-only (both
through coturn) and sends a message each way.

Against your own deployment (docs/deploy.md), run on two machines::

    python examples/coturn_rest.py --signal wss://signal.example.org --room x

(the server was started with ``--turn-secret S --turn-url turn:turn.example.org:3478``).
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import time

import icepeer
from icepeer.coturn import Coturn
from signaling.client import SignalingClient
from signaling.server import ServerConfig, SignalingServer


async def relay_only_peer(signal: str, room: str, extra_servers: list[str], timeout: float) -> None:
    """One peer: connect through TURN only, greet the other side, print what happened."""
    async with icepeer.connect(
        signal, room, ice_servers=extra_servers, relay_only=True, timeout=timeout
    ) as peer:
        report = peer.report()
        print(report.describe(), flush=True)
        if report.local is None or report.local.type != "relay":
            raise icepeer.ConnectFailed(f"expected a relayed path, got {report.path}")
        me = peer.peer_id or "?"
        channel = await peer.channel("hello")
        await channel.send(f"hello from {me}")
        print(f"{me[:8]} got: {await channel.recv()!s}", flush=True)
        await peer.drain()


async def self_contained(args: argparse.Namespace) -> None:
    # In production the secret lives in coturn's config and the server's environment.
    secret = secrets.token_urlsafe(32)
    # allow_loopback_peers: both relays are on 127.0.0.1 and relay to each other.
    # A production coturn must deny loopback peers (examples/coturn/turnserver.conf).
    async with Coturn(secret=secret, allow_loopback_peers=True) as turn:
        print(
            f"coturn on {turn.host}:{turn.port}, --use-auth-secret with a fresh secret", flush=True
        )
        config = ServerConfig(
            port=0, turn_secret=secret, turn_urls=[turn.turn_url("udp")], turn_ttl=args.ttl
        )
        async with SignalingServer(config) as server:
            print(f"signaling on {server.url}, credentials valid for {args.ttl:g} s", flush=True)

            # What any peer receives when it joins: nothing long-lived.
            probe = await SignalingClient.connect(server.url, "look")
            for entry in probe.ice_servers:
                expiry, _, name = entry["username"].partition(":")
                print(
                    f"a joining peer gets {entry['urls']} with username {entry['username']!r} "
                    f"(its peer id {name[:8]}..., expires in {int(expiry) - time.time():.0f} s)",
                    flush=True,
                )
            await probe.leave()

            room = f"rest-{secrets.token_hex(4)}"
            await asyncio.gather(
                *(
                    relay_only_peer(server.url, room, args.ice_server, args.timeout)
                    for _ in range(2)
                )
            )


def main() -> int:
    parser = argparse.ArgumentParser(
        description="Relay-only peers with TURN credentials minted per join."
    )
    parser.add_argument(
        "--signal",
        help="use this signaling server (run one peer) instead of starting "
        "coturn and a signaling server here (run two)",
    )
    parser.add_argument("--room", default="coturn-rest", help="room, with --signal")
    parser.add_argument(
        "--ice-server",
        action="append",
        default=[],
        metavar="URL",
        help="more STUN/TURN servers, besides those the signaling server hands out",
    )
    parser.add_argument(
        "--ttl", type=float, default=600.0, help="credential lifetime in seconds, self-contained"
    )
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to connect")
    args = parser.parse_args()
    try:
        if args.signal:
            asyncio.run(relay_only_peer(args.signal, args.room, args.ice_server, args.timeout))
        else:
            asyncio.run(self_contained(args))
    except icepeer.IcepeerError as exc:  # CoturnUnavailable too: "coturn is not installed ..."
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
