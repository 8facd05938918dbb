"""An echo service that answers many clients, one after another, in one well-known room.

    python examples/echo.py serve --room echo                  # the service: runs until Ctrl-C
    python examples/echo.py ask --room echo hello world        # a client: prints "hello", "world"

How many clients one room serves: a room holds two peers, so the service
waits in the room, serves the client that joins, and joins the room again
as soon as that client leaves. Meanwhile other clients find the room full
(the server refuses them with ``room-full``) and try again a moment later.

Who is who: the service opens the ``echo`` channel; a client only accepts
it. If two clients slip into the room while the service is re-joining, they
connect to each other, neither opens a channel, both notice within
``--wait`` seconds, leave, and try again. So a client always ends up talking
to the service, and the service needs no list of rooms.

(One room per client, named by a scheme both sides know, would need the
service to watch for new rooms, which protocol v1 does not offer; a room
per *service instance* is how to scale out: ``echo-1``, ``echo-2``, ...)
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import sys

import icepeer

log = logging.getLogger("echo")


async def serve(args: argparse.Namespace) -> int:
    """Serve ``--clients`` clients (default: forever), one at a time."""
    served = 0
    while args.clients is None or served < args.clients:
        try:
            async with icepeer.connect(
                args.signal,
                args.room,
                ice_servers=args.ice_server,
                host_addresses=args.host_address or None,
                timeout=None,  # wait for clients forever
            ) as peer:
                channel = await peer.open_channel("echo")
                log.info("client %s connected via %s", peer.remote_peer_id, peer.report().path)
                count = 0
                async for message in channel:  # until the client closes
                    await channel.send(message)
                    count += 1
                closed = await peer.wait_closed()
                log.info(
                    "client %s gone (%s) after %d messages",
                    peer.remote_peer_id,
                    closed.reason,
                    count,
                )
        except icepeer.SignalingFailed as exc:
            if exc.code != "room-full":
                raise  # the signaling server is gone: nothing to serve
            # Two clients met in the room while we were away; they will leave.
            await asyncio.sleep(random.uniform(0.1, 0.3))
            continue
        except icepeer.IcepeerError as exc:
            log.warning("a client failed: %s", exc)  # it left early, its network failed, ...
            continue
        served += 1
        print(f"served client {served}", flush=True)
    return 0


async def ask(args: argparse.Namespace) -> int:
    """Send each word, print each echo; retry while the room is busy."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + args.timeout
    last = "no attempt"
    while loop.time() < deadline:
        try:
            async with icepeer.connect(
                args.signal,
                args.room,
                ice_servers=args.ice_server,
                host_addresses=args.host_address or None,
                timeout=deadline - loop.time(),
            ) as peer:
                try:
                    async with asyncio.timeout(args.wait):
                        channel = await peer.accept_channel()
                except TimeoutError:
                    last = "the peer in the room was not the service (it opened no echo channel)"
                    log.info("%s: retrying", last)
                else:
                    for word in args.words:
                        await channel.send(word)
                        print(await channel.recv(), flush=True)
                    await peer.drain()
                    return 0
        except icepeer.SignalingFailed as exc:
            if exc.code != "room-full":
                raise
            last = "the room stayed full"
            log.info("room %s is busy: retrying", args.room)
        except (icepeer.ConnectFailed, icepeer.PeerLost) as exc:
            last = str(exc)  # e.g. the peer we met left before we connected
            log.info("%s: retrying", exc)
        # Jitter: clients that waited together do not collide again.
        await asyncio.sleep(random.uniform(0.1, 0.5))
    print(
        f"error: no echo from room {args.room!r} within {args.timeout:g} s ({last})",
        file=sys.stderr,
    )
    return 1


def main() -> int:
    parser = argparse.ArgumentParser(description="An echo service and its client.")
    parser.add_argument("--signal", default="ws://127.0.0.1:8765", help="signaling server URL")
    parser.add_argument("--room", default="echo", help="the service's room")
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
    parser.add_argument("-v", "--verbose", action="store_true", help="say what happens on stderr")
    sub = parser.add_subparsers(dest="command", required=True)
    serve_parser = sub.add_parser("serve", help="run the service")
    serve_parser.add_argument(
        "--clients", type=int, help="exit after serving this many (default: never)"
    )
    ask_parser = sub.add_parser("ask", help="send words to the service, print the echoes")
    ask_parser.add_argument("words", nargs="+")
    ask_parser.add_argument("--timeout", type=float, default=30.0, help="seconds to get through")
    ask_parser.add_argument(
        "--wait",
        type=float,
        default=3.0,
        help="seconds to wait for the service's channel once connected",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    if args.verbose:
        for name in ("echo", "icepeer"):
            logging.getLogger(name).setLevel(logging.INFO)
    try:
        return asyncio.run(serve(args) if args.command == "serve" else ask(args))
    except icepeer.IcepeerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
