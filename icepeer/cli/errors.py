"""The CLI's one place that turns exceptions into ``error: ...`` and an exit code.

- :class:`~icepeer.errors.ConfigError` (and its subclasses) and icecommon's
  :class:`~icecommon.urls.BadUrl`: a usage error, exit 2;
- any other :class:`~icepeer.errors.IcepeerError`: the command failed, exit 1;
- ``KeyboardInterrupt`` (Ctrl-C): exit 130, nothing printed;
- anything else is a bug: it is not caught, so Python prints its traceback.

Commands let these exceptions propagate (after their own cleanup). The
message goes through the command's :class:`~icepeer.cli.common.Output` (see
:func:`command_output`), so that with ``--json`` it is also an ``error`` event
on stdout.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Coroutine
from typing import Any

from icecommon import aio
from icecommon.urls import BadUrl

from ..errors import ConfigError, IcepeerError
from .common import Output

__all__ = [
    "EXIT_OK",
    "EXIT_FAILED",
    "EXIT_USAGE",
    "EXIT_INTERRUPTED",
    "Command",
    "exit_code",
    "command_output",
    "report",
    "run",
]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

Command = Callable[[argparse.Namespace], Coroutine[Any, Any, int]]

#: Where :func:`command_output` keeps a command's Output on its arguments.
_OUTPUT = "_output"


def exit_code(exc: IcepeerError | BadUrl | KeyboardInterrupt) -> int:
    """The exit code for an exception the CLI reports."""
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    if isinstance(exc, (ConfigError, BadUrl)):
        return EXIT_USAGE
    return EXIT_FAILED


def command_output(args: argparse.Namespace) -> Output:
    """The command's Output, made from ``--json``; :func:`run` reports its errors through it."""
    out = Output(json_mode=args.json)
    setattr(args, _OUTPUT, out)
    return out


def report(exc: IcepeerError | BadUrl | KeyboardInterrupt, out: Output) -> int:
    """Print ``exc`` as ``error: ...`` (and with --json an ``error`` event); return its exit code."""
    code = exit_code(exc)
    if code != EXIT_INTERRUPTED:
        out.error(str(exc))
    return code


def run(command: Command, args: argparse.Namespace) -> int:
    """Run ``command`` to its exit code, reporting what it lets out (see the module docstring)."""

    async def reported() -> int:
        try:
            return await command(args)
        except (IcepeerError, BadUrl) as exc:
            # Reported while the loop still runs: at once, before tasks are cancelled.
            out = getattr(args, _OUTPUT, None)
            return report(exc, out if isinstance(out, Output) else Output(json_mode=False))

    try:
        return aio.run(reported())
    except KeyboardInterrupt as exc:
        return exit_code(exc)
