"""argparse options that also read environment variables (flags > environment > defaults).

Shared by ``python -m signaling`` and the ``icepeer`` commands so that every
``--help`` shows the variable and the default the same way.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import Any

__all__ = ["add_option", "TRUE_WORDS"]

TRUE_WORDS = ("1", "true", "yes", "on")


def add_option(
    parser: argparse.ArgumentParser | Any,
    *flags: str,
    env: str,
    help: str,
    default: Any = None,
    type: Callable[[str], Any] = str,
    action: str | None = None,
    secret: bool = False,
    **kwargs: Any,
) -> None:
    """Add an option whose default comes from ``env`` when that variable is set.

    ``action="append"`` reads a space- or comma-separated list from the
    environment; ``action="store_true"`` reads 1/true/yes/on. A ``secret``
    option never shows its value in ``--help``, only whether it is set.
    """
    raw = os.environ.get(env)
    if action == "store_true":
        value: Any = raw.strip().lower() in TRUE_WORDS if raw is not None else bool(default)
        parser.add_argument(
            *flags, action="store_true", default=value, help=f"{help} [env {env}]", **kwargs
        )
        return
    if raw is not None and raw != "":
        try:
            if action == "append":
                value = [type(item) for item in raw.replace(",", " ").split()]
            else:
                value = type(raw)
        except (ValueError, argparse.ArgumentTypeError) as exc:
            parser.error(f"environment variable {env}={raw!r}: {exc}")
    else:
        value = default
    shown = "none" if value in (None, []) else value
    if secret and value not in (None, []):
        shown = f"set from {env}" if raw else "set"
    extra: dict[str, Any] = {"action": action} if action else {"type": type}
    if action == "append":
        extra["type"] = type
        # argparse appends to the default list: start from a copy.
        value = list(value or [])
    parser.add_argument(
        *flags, default=value, help=f"{help} [env {env}; default: {shown}]", **extra, **kwargs
    )
