"""``icepeer lab``: run ICE (or the puncher) between emulated NATs in network namespaces.

- ``icepeer lab run --a prc --b sym --mode ice``: one cell;
- ``icepeer lab matrix``: every pair of kinds in every mode, written as
  JSON, a markdown table and a PNG;
- ``icepeer lab clean``: remove what any lab run left behind.

Needs root. See docs/lab.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shlex
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from icecommon.options import add_option

from ..errors import ConfigError
from ..lab import executor, plot
from ..lab.cell import CellResult, Mode
from ..lab.kinds import DEFAULT_KINDS, NatKind, parse_kind
from ..lab.lab import clean_stale
from ..lab.matrix import Matrix, pairs
from ..lab.options import Options
from ..lab.profiles import PROFILES, Profile, get_profile
from ..lab.runner import cell_topology, default_peer_command, run_pair

KIND_HELP = ", ".join(f"{k.value} ({k.description})" for k in NatKind)


def _kind(text: str) -> NatKind:
    try:
        return parse_kind(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _kinds(text: str) -> list[NatKind]:
    return [_kind(t) for t in text.replace(",", " ").split()]


def _modes(text: str) -> list[Mode]:
    out = []
    for t in text.replace(",", " ").split():
        try:
            out.append(Mode(t))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"unknown mode {t!r}: choose from {', '.join(m.value for m in Mode)}") from None
    return out


def _percent(text: str) -> float:
    value = _number(text)
    if not 0 <= value < 100:
        raise argparse.ArgumentTypeError("loss is a percentage from 0 to below 100")
    return value


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"cannot be negative: {text!r}")
    return value


def _profile(text: str) -> Profile:
    try:
        return get_profile(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


PROFILE_HELP = "; ".join(f"{p.name}: {p.summary}" for p in PROFILES.values()).replace("%", "%%")


def _add_common(p: argparse.ArgumentParser) -> None:
    add_option(p, "--profile", env="ICEPEER_LAB_PROFILE", type=_profile, metavar="NAME",
               help=f"a named path ({PROFILE_HELP}); --delay, --jitter, --rate and --loss "
               "override its values")
    add_option(p, "--delay", env="ICEPEER_LAB_DELAY", type=_number, metavar="MS",
               help="one-way delay between the two sites' hosts: each site's uplink adds half, "
               "each way, so the peers' round trip is 2 x MS and a server's MS (a user-space "
               "delay line on TAP devices); none: the profile's, else 0")
    add_option(p, "--jitter", env="ICEPEER_LAB_JITTER", type=_number, metavar="MS",
               help="vary each packet's one-way delay uniformly by up to +-MS, never "
               "reordering (needs --delay); none: the profile's, else 0")
    add_option(p, "--rate", env="ICEPEER_LAB_RATE", type=_number, metavar="MBIT",
               help="cap each site's uplink at MBIT Mbit/s each direction (tc tbf, a queue of "
               "one round trip): the bottleneck between two sites; none: the profile's, else no limit")
    add_option(p, "--loss", env="ICEPEER_LAB_LOSS", type=_percent, metavar="PERCENT",
               help="drop this percentage of packets at random at each site, each direction "
               "(iptables statistic); none: the profile's, else 0")
    add_option(p, "--ipv6", env="ICEPEER_LAB_IPV6", action="store_true",
               help="dual stack: global IPv6 (2001:db8::/32) beside the IPv4 NATs, routed "
               "and behind stateful firewalls that drop unsolicited inbound traffic")
    add_option(p, "--udp-timeout", env="ICEPEER_LAB_UDP_TIMEOUT", type=int, metavar="S",
               help="routers' conntrack UDP timeout (nf_conntrack_udp_timeout and _stream, per "
               "namespace); kernel defaults 30 s / 120 s")
    add_option(p, "--timeout", env="ICEPEER_LAB_TIMEOUT", type=float, default=15.0, metavar="S",
               help="--timeout given to each peer")
    add_option(p, "--messages", env="ICEPEER_LAB_MESSAGES", type=int, default=3, metavar="N",
               help="lines each peer sends once connected")
    add_option(p, "--peer-command", env="ICEPEER_LAB_PEER", metavar="CMD",
               help="the program run on the hosts, before its 'connect'/'punch' verb "
               f"(default: {shlex.join(default_peer_command())})")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more logging on stderr")


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "lab", help="run peers across emulated NATs in network namespaces (root)",
        description="A NAT lab in Linux network namespaces: a public segment with the signaling "
        "server and coturn, and sites behind routers of several kinds. Needs root. "
        f"Kinds: {KIND_HELP}.",
    )
    labsub = parser.add_subparsers(dest="lab_command", metavar="COMMAND", required=True)

    run = labsub.add_parser(
        "run", help="one cell: two hosts behind --a and --b, one mode",
        description="Build the lab for one pair of router kinds, run the real CLI on both hosts, "
        "exchange a few messages both ways, report whether and how they connected, then remove "
        "the lab. Exit 0 when connected with nothing lost and both peers exiting 0, 1 otherwise.",
    )
    run.add_argument("--a", type=_kind, required=True, metavar="KIND", help="router of host A")
    run.add_argument("--b", type=_kind, metavar="KIND",
                     help="router of host B (default: the same as --a)")
    run.add_argument("--mode", type=Mode, choices=list(Mode), default=Mode.ICE,
                     metavar="{" + ",".join(m.value for m in Mode) + "}",
                     help="ice: STUN + TURN udp/tcp; ice-no-turn: STUN only; relay-only: TURN "
                     "only with --relay-only; punch: the hole puncher with STUN (default: ice)")
    run.add_argument("--pcap", metavar="DIR", help="capture each site's WAN side into DIR (tcpdump)")
    add_option(run, "--json", env="ICEPEER_JSON", action="store_true",
               help="print the result as one JSON object on stdout")
    run.add_argument("--dry-run", action="store_true",
                     help="print the commands that would build the lab, run nothing (no root needed)")
    _add_common(run)
    run.set_defaults(run=_run_cmd)

    matrix = labsub.add_parser(
        "matrix", help="every pair of kinds in every mode; JSON, markdown and PNG",
        description="Run every unordered pair of --kinds in every --mode (one lab per pair, "
        "the modes in turn), with progress on stderr, and write matrix.json, matrix.md and "
        "matrix.png into --out after each pair.",
    )
    matrix.add_argument("--kinds", type=_kinds, default=list(DEFAULT_KINDS), metavar="K,K,...",
                        help="kinds to pair (default: all: " + ",".join(k.value for k in DEFAULT_KINDS) + ")")
    matrix.add_argument("--modes", type=_modes, default=list(Mode), metavar="M,M,...",
                        help="modes (default: " + ",".join(m.value for m in Mode) + ")")
    matrix.add_argument("--out", default="lab-matrix", metavar="DIR",
                        help="directory for matrix.json, matrix.md, matrix.png (default: lab-matrix)")
    _add_common(matrix)
    matrix.set_defaults(run=_matrix_cmd)

    clean = labsub.add_parser(
        "clean", help="remove namespaces and links left by any lab run",
        description="Stop the processes in, and delete, every network namespace whose name "
        "matches the lab's pattern (ipl + 5 hex digits + '-'), and any such link in the root "
        "namespace. Nothing else is touched.",
    )
    clean.add_argument("--stale", action="store_true",
                       help="only runs whose icepeer process is gone (safe while other runs are active)")
    clean.add_argument("-v", "--verbose", action="count", default=0, help="more logging on stderr")
    clean.set_defaults(run=_clean_cmd)


def _options(args: argparse.Namespace) -> Options:
    """The profile's options (or none), with the flags given on top."""
    profile: Profile = args.profile or PROFILES["lan"]
    try:
        return profile.apply(loss_percent=args.loss, delay_ms=args.delay, jitter_ms=args.jitter,
                             rate_mbit=args.rate, udp_timeout=args.udp_timeout,
                             ipv6=args.ipv6 or None)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _title(args: argparse.Namespace, options: Options) -> str:
    name = f"profile {args.profile.name}: " if args.profile else ""
    return name + options.describe()


def _peer_command(args: argparse.Namespace) -> list[str] | None:
    return shlex.split(args.peer_command) if args.peer_command else None


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


async def _interruptible(body: Callable[[], Awaitable[int]]) -> int:
    """Run ``body``; SIGTERM cancels it like Ctrl-C does, and the lab is removed either way."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    loop.add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        return await body()
    except asyncio.CancelledError:
        say("interrupted: the lab was removed")
        return 130
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


async def _run_cmd(args: argparse.Namespace) -> int:
    a: NatKind = args.a
    b: NatKind = args.b or a
    options = _options(args)
    try:
        topology = cell_topology(a, b, options)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if args.dry_run:
        for cmd in topology.build():
            print(cmd)
        wires = topology.wires()
        if wires:
            specs = json.dumps([w.to_json() for w in wires])
            print(shlex.join(["ip", "netns", "exec", topology.pub_ns, "python3", "-m",
                              "icepeer.lab.wire", specs]) + "  # the delay line, kept running")
        return 0
    executor.check_environment(tun=options.delay_line)

    async def body() -> int:
        say(f"lab {topology.prefix}: A behind {a.value} ({a.description}), "
            f"B behind {b.value} ({b.description}), mode {args.mode.value}; "
            f"{_title(args, options)}")
        started = time.monotonic()
        results = await run_pair(a, b, [args.mode], options=options, pcap_dir=args.pcap,
                                 peer_command=_peer_command(args), timeout=args.timeout,
                                 messages=args.messages, prefix=topology.prefix)
        result = results[0]
        if args.json:
            print(json.dumps(result.to_json()), flush=True)
        else:
            _print_result(result)
        say(f"done in {time.monotonic() - started:.1f} s; lab removed"
            + (f"; captures in {args.pcap}" if args.pcap else ""))
        clean = all(p.exit_code == 0 for p in result.peers)
        return 0 if result.connected and not result.lost and clean else 1

    return await _interruptible(body)


def _print_result(r: CellResult) -> None:
    print(f"{r.a} x {r.b}, mode {r.mode}: {'connected' if r.connected else 'NOT connected'}")
    if r.connected:
        print(f"  path:     {r.path}  [{r.outcome}]")
        ms = f"{r.connect_ms:.0f} ms" if r.connect_ms is not None else "?"
        wall = f" ({r.wall_ms / 1000:.1f} s after starting both processes)" if r.wall_ms else ""
        print(f"  connect:  {ms}{wall}")
    else:
        print(f"  error:    {r.error}")
    print(f"  messages: {r.sent} sent, {r.lost} lost")
    for side, p in zip("AB", r.peers):
        if p.exit_code:
            print(f"  peer {side} exited {p.exit_code}: {p.closed or p.error or 'no reason given'}")


async def _matrix_cmd(args: argparse.Namespace) -> int:
    options = _options(args)
    executor.check_environment(tun=options.delay_line)
    kinds: list[NatKind] = list(dict.fromkeys(args.kinds))
    modes: list[Mode] = list(dict.fromkeys(args.modes))
    todo = pairs(kinds)
    total = len(todo) * len(modes)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - once, before any peer runs
    matrix = Matrix(kinds, modes)
    started = time.monotonic()
    done = 0

    def progress(r: CellResult) -> None:
        nonlocal done
        done += 1
        matrix.add(r)
        say(f"[{done:3}/{total}] {r.a:>16} x {r.b:<16} {r.mode:<12} {Matrix.cell_text(r) or '-':<22}"
            f" ({r.seconds:.1f} s)")

    title = f"icepeer lab matrix, {_title(args, options)}"
    drawn = plot.available()

    def write() -> None:
        meta = {"generated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "seconds": round(time.monotonic() - started, 1),
                "profile": args.profile.name if args.profile else None,
                "options": {**options.to_json(), "timeout": args.timeout},
                "title": title, "complete": done == total}
        (out / "matrix.json").write_text(json.dumps(matrix.to_json(**meta), indent=1) + "\n")
        (out / "matrix.md").write_text(f"{title}\n\n" + matrix.markdown())
        (out / "matrix.png").write_bytes(plot.draw(matrix, title) if drawn else matrix.png())

    async def body() -> int:
        say(f"{len(todo)} pairs x {len(modes)} modes = {total} cells; {_title(args, options)}; "
            f"results in {out}/")
        if not drawn:
            say("note: matplotlib is not installed (pip install matplotlib): matrix.png gets "
                "plain coloured squares, without labels")
        try:
            for a, b in todo:
                await run_pair(a, b, modes, options=options, peer_command=_peer_command(args),
                               timeout=args.timeout, messages=args.messages, on_result=progress)
                write()
        finally:
            write()
        ok = sum(1 for r in matrix.results.values() if r.connected)
        say(f"{ok} of {total} cells connected, in {time.monotonic() - started:.0f} s; "
            f"wrote {out}/matrix.json, matrix.md, matrix.png")
        return 0

    return await _interruptible(body)


async def _clean_cmd(args: argparse.Namespace) -> int:
    executor.check_environment()
    removed = await (clean_stale() if args.stale else executor.clean())
    for name in removed:
        print(f"removed {name}")
    say(f"removed {len(removed)} namespaces/links" if removed else "nothing to clean")
    return 0
