"""Chat between two terminals: lines you type go to the peer, the peer's lines are printed.

    python -m signaling --port 8765                       # once, somewhere both can reach
    python examples/chat.py --room kitchen --ice-server stun:stun.l.google.com:19302
    python examples/chat.py --room kitchen --ice-server stun:stun.l.google.com:19302

End with Ctrl-D (end of input): what you typed is delivered, then both sides
close. Exit status 0 when the chat ended normally, 1 when the connection
failed or the peer was lost.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import threading

import icepeer


def read_lines(loop: asyncio.AbstractEventLoop, lines: asyncio.Queue[str | None]) -> None:
    """Feed stdin to the event loop, from a thread (input() would block the loop)."""
    for line in sys.stdin:
        loop.call_soon_threadsafe(lines.put_nowait, line.rstrip("\r\n"))
    loop.call_soon_threadsafe(lines.put_nowait, None)


async def chat(args: argparse.Namespace) -> int:
    async with icepeer.connect(
        args.signal,
        args.room,
        ice_servers=args.ice_server,
        host_addresses=args.host_address or None,
    ) as peer:
        channel = await peer.channel("chat")  # reliable and ordered
        print(f"connected: {peer.report().path}; type away, Ctrl-D to end", file=sys.stderr)

        lines: asyncio.Queue[str | None] = asyncio.Queue()
        # A daemon thread: it must not keep the program alive when the peer leaves first.
        threading.Thread(
            target=read_lines, args=(asyncio.get_running_loop(), lines), daemon=True
        ).start()

        async def send_typed_lines() -> None:
            with contextlib.suppress(icepeer.IcepeerError):  # the peer may leave first
                while (line := await lines.get()) is not None:
                    await channel.send(line)
                await peer.drain()  # the peer has everything we typed...
                await peer.close()  # ...so our side ends the chat

        sender = asyncio.create_task(send_typed_lines())
        async for message in channel:  # ends when either side closes
            print(message, flush=True)
        closed = await peer.wait_closed()
        sender.cancel()  # still waiting for a line if the peer ended the chat
        print(f"closed: {closed.reason}", file=sys.stderr)
        return 0 if closed.graceful else 1


def main() -> int:
    parser = argparse.ArgumentParser(description="Chat with the peer in a room.")
    parser.add_argument("--signal", default="ws://127.0.0.1:8765", help="signaling server URL")
    parser.add_argument("--room", required=True, help="the room both sides join")
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
    args = parser.parse_args()
    try:
        return asyncio.run(chat(args))
    except icepeer.IcepeerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
