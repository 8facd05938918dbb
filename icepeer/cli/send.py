"""``icepeer send`` and ``icepeer receive``: files from one machine to another, checked on arrival."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from icecommon.options import add_option

from ..errors import ConfigError, IcepeerError
from ..peer import Peer
from ..transfer import LABEL, Done, FileResult, Manifest, describe_files, receive_files, send_files
from ..transfer.progress import Meter, format_bytes, format_rate, render_bar, render_line
from . import EXIT_FAILED, EXIT_OK
from .common import Output, add_code_options, add_connect_options
from .connect import add_host_address_option, open_peer
from .errors import command_output


def add_parser(sub: Any) -> None:
    send = sub.add_parser(
        "send",
        help="send files to the peer; prints a code for 'icepeer receive'",
        description="Send files to whoever runs 'icepeer receive' with the same code. Without "
        "--code or --room a new code is made and printed (e.g. 7-guitar-ribbon: the number names "
        "the room on the signaling server, the words never leave this machine; the two sides prove "
        "to each other that they know them, so the signaling server cannot get in the middle). "
        "Each file's name, size and SHA-256 go ahead of it and are checked on arrival. Exit codes: "
        "0 when every file arrived intact, 1 when the receiver refused, a file failed or the code "
        "did not match, 2 for usage errors.",
    )
    send.add_argument("files", nargs="+", type=Path, metavar="FILE", help="regular files to send")
    add_connect_options(send, default_timeout=600.0, room_help="room to join, trusting the signaling "
                        "server; without it and without --code, a new code is made")
    add_code_options(send, positional=False)
    add_host_address_option(send)
    send.set_defaults(run=run_send)

    receive = sub.add_parser(
        "receive",
        help="receive files sent with 'icepeer send'",
        description="Receive the files offered by 'icepeer send' with the code it printed (asked for "
        "on a terminal when missing). Nothing is written unless the two sides proved they know the "
        "same code. A file is written under a temporary name, synced and checked (size, SHA-256) "
        "before it takes its own name. Existing files are kept unless --overwrite; names with paths "
        "in them are refused. Exit codes: 0 when every file arrived intact, 1 when the offer was "
        "refused, a file failed or the code did not match, 2 for usage errors.",
    )
    add_option(receive, "--output", "-o", env="ICEPEER_OUTPUT", type=Path, default=Path("."), metavar="DIR",
               help="directory to write the files to (it must exist)")
    add_option(receive, "--overwrite", env="ICEPEER_OVERWRITE", action="store_true",
               help="replace files that already exist in the output directory")
    add_connect_options(receive, room_help="room to join, trusting the signaling server (when "
                        "'icepeer send' used --room)")
    add_code_options(receive)
    add_host_address_option(receive)
    receive.set_defaults(run=run_receive)


# -- progress on stderr -----------------------------------------------------------------


class ProgressDisplay:
    """A bar on a terminal, plain lines with -v, JSON events with --json, else nothing."""

    def __init__(self, out: Output, total: int, *, verbose: int, stream: TextIO | None = None) -> None:
        self.out = out
        self.stream = stream or sys.stderr
        self.meter = Meter(total, time.monotonic())
        if out.json_mode:
            self.mode, self.every = "json", 0.5
        elif self.stream.isatty():
            self.mode, self.every = "bar", 0.1
        elif verbose:
            self.mode, self.every = "lines", 1.0
        else:
            self.mode, self.every = "off", 1.0
        self._shown = 0.0
        self._done = 0

    def update(self, done: int) -> None:
        self._done = done
        snap = self.meter.update(done, time.monotonic())
        if self.mode == "off" or (time.monotonic() - self._shown < self.every and done < snap.total):
            return
        self._shown = time.monotonic()
        if self.mode == "json":
            self.out.event("progress", **snap.to_dict())
        elif self.mode == "lines":
            print(render_line(snap), file=self.stream, flush=True)
        else:
            width = shutil.get_terminal_size((80, 20)).columns - 1
            print("\r" + render_bar(snap, width), end="", file=self.stream, flush=True)

    def finish(self) -> None:
        if self.mode == "bar" and self._shown:
            print(file=self.stream, flush=True)


def _summary(total: int, seconds: float) -> dict[str, Any]:
    return {"bytes": total, "seconds": round(seconds, 3),
            "MBps": round(total / seconds / 1e6, 3) if seconds > 0 else None}


def _report(out: Output, done: Done, sizes: dict[str, int], verb: str) -> None:
    for result in done.files:
        if result.ok:
            out.progress(f"{verb} {result.name} ({format_bytes(sizes.get(result.name, 0))}, SHA-256 ok)")
        else:
            out.progress(f"FAILED {result.name}: {result.reason}")


async def _connect(args: argparse.Namespace, out: Output) -> Peer:
    peer, started = await open_peer(args, out)
    report = peer.report()
    elapsed = (time.monotonic() - started) * 1000
    out.progress(f"connected via {report.path} in {elapsed:.0f} ms")
    if report.local is not None and report.remote is not None:
        out.event("connected", local=report.local.to_dict(), remote=report.remote.to_dict(),
                  elapsed_ms=round(elapsed, 1))
    return peer


async def _close(peer: Peer) -> None:
    with contextlib.suppress(Exception):
        await peer.drain(timeout=2.0)  # our last word (done, reject) reaches the peer
        await peer.close()


# -- send ----------------------------------------------------------------------------------


async def run_send(args: argparse.Namespace) -> int:
    out = command_output(args)
    files = await asyncio.to_thread(describe_files, args.files)
    total = sum(f.entry.size for f in files)
    count = f"{len(files)} file" + ("s" if len(files) > 1 else "")
    out.progress(f"offering {count}, {format_bytes(total)}; waiting for the receiver")
    peer = await _connect(args, out)
    display = ProgressDisplay(out, total, verbose=args.verbose)
    started = time.monotonic()

    def accepted() -> None:
        nonlocal started
        started = time.monotonic()
        out.progress("the receiver accepted; sending")
        out.event("accepted")

    try:
        channel = await peer.channel(LABEL)
        done = await send_files(channel, files, on_accepted=accepted, on_progress=display.update)
    except IcepeerError:
        display.finish()
        await _close(peer)
        raise
    display.finish()
    seconds = time.monotonic() - started
    _report(out, done, {f.entry.name: f.entry.size for f in files}, "sent")
    for result in done.files:
        out.event("file", file=result.name, ok=result.ok, reason=result.reason)
    out.progress(f"{'done' if done.ok else 'failed'}: {format_bytes(total)} in {seconds:.1f} s "
                 f"({format_rate(total / seconds if seconds > 0 else None)})")
    out.event("done", ok=done.ok, files=len(done.files), **_summary(total, seconds))
    await _close(peer)
    return EXIT_OK if done.ok else EXIT_FAILED


# -- receive ----------------------------------------------------------------------------------


async def _ask_code(out: Output) -> str | None:
    if not sys.stdin.isatty():
        return None
    text = await asyncio.to_thread(input, "code: ")
    return text.strip()


async def run_receive(args: argparse.Namespace) -> int:
    out = command_output(args)
    output: Path = args.output
    if not output.is_dir():  # noqa: ASYNC240 - once, before connecting
        raise ConfigError(f"--output {output}: not a directory")
    if not os.access(output, os.W_OK | os.X_OK):
        raise ConfigError(f"--output {output}: not writable")
    if args.room is None and not (args.code_arg or args.code):
        args.code = await _ask_code(out)
        if not args.code:
            raise ConfigError("give the code that 'icepeer send' printed: icepeer receive CODE")
    peer = await _connect(args, out)
    display: ProgressDisplay | None = None
    started = time.monotonic()
    sizes: dict[str, int] = {}

    def offered(manifest: Manifest) -> None:
        nonlocal display, started
        started = time.monotonic()
        sizes.update((e.name, e.size) for e in manifest.files)
        names = ", ".join(e.name for e in manifest.files[:5]) + (", ..." if len(manifest.files) > 5 else "")
        out.progress(f"offered {len(manifest.files)} file{'s' if len(manifest.files) > 1 else ''}, "
                     f"{format_bytes(manifest.total)}: {names}")
        out.event("offer", files=manifest.to_list(), total=manifest.total)
        display = ProgressDisplay(out, manifest.total, verbose=args.verbose)

    def progress(done: int) -> None:
        if display is not None:
            display.update(done)

    def arrived(result: FileResult, path: Path) -> None:
        out.event("file", file=result.name, ok=result.ok, reason=result.reason,
                  path=str(path) if result.ok else None)

    try:
        channel = await peer.channel(LABEL)
        done = await receive_files(channel, output, overwrite=args.overwrite, on_offer=offered,
                                   on_progress=progress, on_file=arrived)
    except IcepeerError:
        if display is not None:
            display.finish()
        await _close(peer)
        raise
    if display is not None:
        display.finish()
    seconds = time.monotonic() - started
    total = sum(sizes.values())
    _report(out, done, sizes, "received")
    out.progress(f"{'done' if done.ok else 'failed'}: {format_bytes(total)} in {seconds:.1f} s "
                 f"({format_rate(total / seconds if seconds > 0 else None)}) into {output}")
    out.event("done", ok=done.ok, files=len(done.files), **_summary(total, seconds))
    await _close(peer)
    return EXIT_OK if done.ok else EXIT_FAILED
