"""What ``icepeer connect``, ``icepeer punch`` and ``icepeer compare`` share.

- the connection flags (``--room --signal --ice-server --relay-only --json
  --timeout -v``), each also read from an ``ICEPEER_*`` environment variable;
- :class:`Output`: progress in words on stderr, received messages on stdout,
  or with ``--json`` one JSON object per line on stdout and nothing else;
- :func:`chat`: lines on stdin become messages, messages become lines, with
  the exit codes of the CLI (0 delivered, 1 lost).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
from typing import Any, Protocol

from icecommon.options import add_option
from icecommon.urls import BadUrl, IceServerUrl, parse_ice_url
from signaling.protocol import valid_room

__all__ = [
    "DEFAULT_SIGNAL_URL",
    "add_connect_options",
    "ice_url",
    "room_name",
    "new_room_code",
    "Output",
    "Link",
    "chat",
]

DEFAULT_SIGNAL_URL = "ws://127.0.0.1:8765"


def ice_url(text: str) -> IceServerUrl:
    """argparse type for ``--ice-server``: a bad URL is a usage error."""
    try:
        return parse_ice_url(text)
    except BadUrl as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def room_name(text: str) -> str:
    if not valid_room(text):
        raise argparse.ArgumentTypeError(
            f"bad room name {text!r}: 1 to 64 characters of A-Z a-z 0-9 . _ -"
        )
    return text


def new_room_code() -> str:
    """An unguessable room code that is still easy to read out (about 80 bits)."""
    return "-".join(secrets.token_hex(2) for _ in range(5))


def add_connect_options(
    parser: argparse.ArgumentParser,
    *,
    default_timeout: float = 30.0,
    room_help: str = "room to join; without it a fresh unguessable code is made and printed",
) -> None:
    add_option(parser, "--room", env="ICEPEER_ROOM", type=room_name, help=room_help)
    add_option(parser, "--signal", env="ICEPEER_SIGNAL", default=DEFAULT_SIGNAL_URL,
               help="signaling server URL (ws:// or wss://)")
    add_option(parser, "--ice-server", env="ICEPEER_ICE_SERVERS", action="append", type=ice_url,
               default=[], metavar="URL",
               help="STUN/TURN server, repeatable: stun:host[:port], "
               "turn:user:pass@host[:port][?transport=udp|tcp], turns:user:pass@host[:port]; "
               "added to those the signaling server hands out")
    add_option(parser, "--relay-only", env="ICEPEER_RELAY_ONLY", action="store_true",
               help="use TURN relay candidates only (ICE policy 'relay')")
    add_option(parser, "--json", env="ICEPEER_JSON", action="store_true",
               help="one JSON object per line on stdout, nothing else")
    add_option(parser, "--standard-handshake", env="ICEPEER_STANDARD_HANDSHAKE", action="store_true",
               help="do not offer SNAP and SPED (the SCTP handshake in the SDP, DTLS in the ICE checks), "
               "which save round trips when the peer has them too")
    add_option(parser, "--timeout", env="ICEPEER_TIMEOUT", type=float, default=default_timeout,
               help="seconds to wait for the peer and the connection")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="more logging on stderr (-vv debug, -vvv with aioice/aiortc)")


def add_code_options(parser: argparse.ArgumentParser, *, positional: bool = True) -> None:
    """A code (``7-guitar-ribbon``): as an argument, or ``--code``; ``--verify``."""
    if positional:
        parser.add_argument("code_arg", nargs="?", metavar="CODE",
                            help="the code the other side printed (e.g. 7-guitar-ribbon); without it "
                            "(and without --room) a new code is made and printed")
    add_option(parser, "--code", env="ICEPEER_CODE",
               help="the code the other side printed; the peers prove to each other they know it "
               "(SPAKE2), so the signaling server cannot get in the middle")
    parser.add_argument("--verify", action="store_true",
                        help="once connected, print a short string to compare with the other side by voice")


class Output:
    """Where a command's words and events go."""

    def __init__(self, *, json_mode: bool, stdout: Any = None, stderr: Any = None) -> None:
        self.json_mode = json_mode
        self._flush_pending = False
        self._out = stdout or sys.stdout
        self._err = stderr or sys.stderr

    def progress(self, text: str) -> None:
        """Words for a person; on stderr, in both modes."""
        print(text, file=self._err, flush=True)

    def event(self, name: str, **fields: Any) -> None:
        """A machine event: a JSON line with ``--json``, else words on stderr."""
        if self.json_mode:
            line = json.dumps({"event": name, **fields}, separators=(",", ":"), ensure_ascii=False)
            print(line, file=self._out, flush=True)

    def message(self, data: str | bytes) -> None:
        text = data if isinstance(data, str) else data.decode("utf-8", "replace")
        if self.json_mode:
            self.event("message", data=text)
        else:
            # Flushed once per pass of the event loop, not once per line: a
            # burst of messages costs one write, and none waits longer.
            print(text, file=self._out)
            self._flush_soon()

    def _flush_soon(self) -> None:
        if self._flush_pending:
            return
        self._flush_pending = True
        try:
            asyncio.get_running_loop().call_soon(self._flush)
        except RuntimeError:  # no loop: flush now
            self._flush()

    def _flush(self) -> None:
        self._flush_pending = False
        self._out.flush()

    def error(self, text: str) -> None:
        if self.json_mode:
            self.event("error", message=text)
        print(f"error: {text}", file=self._err, flush=True)


class Link(Protocol):
    """What :func:`chat` needs from a connection (an ICE channel or the puncher)."""

    async def send(self, data: str) -> None: ...

    async def recv(self) -> str | bytes: ...

    async def drain(self) -> bool:
        """Wait until everything sent was delivered; False if that can no longer happen."""
        ...


async def _stdin_lines(queue: asyncio.Queue[str | None]) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    try:
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    except (ValueError, OSError):
        # stdin is a file or a terminal that cannot be a pipe: read it in a thread.
        while True:
            line = await asyncio.to_thread(sys.stdin.readline)
            if not line:
                break
            await queue.put(line.rstrip("\r\n"))
        await queue.put(None)
        return
    while True:
        raw = await reader.readline()
        if not raw:
            break
        await queue.put(raw.decode("utf-8", "replace").rstrip("\r\n"))
    await queue.put(None)


async def chat(
    link: Link, out: Output, *, lost: asyncio.Future[tuple[bool, str]]
) -> tuple[int, str]:
    """Pump stdin to ``link`` and ``link`` to stdout until stdin ends or the peer goes.

    ``lost`` resolves with ``(graceful, reason)`` when the peer leaves
    (graceful) or the path dies. Returns the exit code and the reason for the
    ``closed`` event: 0 when stdin ended or the peer left and everything sent
    was delivered, 1 when the peer was lost.
    """
    lines: asyncio.Queue[str | None] = asyncio.Queue()
    reader = asyncio.create_task(_stdin_lines(lines))

    async def receive() -> None:
        while True:
            out.message(await link.recv())

    receiver = asyncio.create_task(receive())
    try:
        while True:
            get = asyncio.ensure_future(lines.get())
            waiting: set[asyncio.Future[Any]] = {get, lost, receiver}
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            if not get.done():
                get.cancel()
            if not lost.done() and receiver.done():
                # The link failed without saying why: give it a moment to say so.
                await asyncio.wait({lost}, timeout=1.0)
            if lost.done():
                graceful, reason = lost.result()
                return (0 if graceful else 1), reason
            if receiver.done():
                exc = receiver.exception()
                return 1, f"connection lost: {exc}" if exc else "connection lost"
            line = get.result()
            # Every line already read goes now, before waiting again: a burst
            # of stdin becomes a burst of messages (bundled into packets).
            while line is not None:
                await link.send(line)
                try:
                    line = lines.get_nowait()
                except asyncio.QueueEmpty:
                    break
            if line is None:
                delivered = await link.drain()
                return (0, "stdin closed") if delivered else (1, "not everything sent was delivered")
    finally:
        reader.cancel()
        receiver.cancel()
