"""The ``icepeer`` command: one module per subcommand; :mod:`.errors` turns errors into exit codes.

Exit codes: 0 ok, 1 failed (could not connect, peer lost), 2 usage error, 130 Ctrl-C.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import sys

from .. import __version__
from . import errors
from .errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE, Command

__all__ = ["main", "EXIT_OK", "EXIT_FAILED", "EXIT_USAGE"]


#: One module per subcommand, each with ``add_parser(subparsers)``; the order is --help's.
COMMANDS = ("connect", "demo", "punch", "compare", "nat_type", "lab", "forward", "send")
#: The subcommands each module adds, where they differ from its name.
VERBS = {"nat-type": "nat_type", "receive": "send"}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole parser, or with ``only`` the one module a command needs (quicker to start)."""
    parser = argparse.ArgumentParser(
        prog="icepeer",
        description="Peer-to-peer connections across NATs with ICE, DTLS and SCTP.",
    )
    parser.add_argument("--version", action="version", version=f"icepeer {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS if only is None else (only,):
        if importlib.util.find_spec(f"{__name__}.{name}") is not None:
            importlib.import_module(f"{__name__}.{name}").add_parser(sub)
    return parser


def _command_module(argv: list[str]) -> str | None:
    """The module of the command in ``argv``, if it names one: only it is imported."""
    verb = next((a for a in argv if not a.startswith("-")), None)
    if verb is None:
        return None
    module = VERBS.get(verb, verb)
    return module if module in COMMANDS else None


def setup_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    if verbosity < 3:
        # aioice and websockets are chatty at INFO; -vvv shows them.
        for name in ("aioice", "websockets", "aiortc"):
            logging.getLogger(name).setLevel(max(level, logging.WARNING))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(_command_module(argv))
    args = parser.parse_args(argv)
    setup_logging(getattr(args, "verbose", 0))
    command: Command = args.run
    return errors.run(command, args)
