"""A command to run, as plain data: what the lab builds is a list of these.

Topology and rule generation produce :class:`Command` values without running
anything, so they can be printed (``icepeer lab run --dry-run``) and tested
without root; :mod:`icepeer.lab.executor` runs them.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

__all__ = ["Command"]


@dataclass(frozen=True)
class Command:
    """``argv`` run inside network namespace ``netns`` (the root namespace if ``None``)."""

    argv: tuple[str, ...]
    netns: str | None = None
    stdin: str | None = None
    """Text fed to the command (an ``iptables-restore`` or ``nft -f -`` ruleset)."""
    check: bool = True
    """A failure stops the build; ``False`` for best-effort steps."""

    def full_argv(self) -> tuple[str, ...]:
        """The argv to execute from the root namespace."""
        if self.netns is None:
            return self.argv
        if self.argv[0] == "ip":
            # `ip -n NS ...` avoids one exec and one mount namespace.
            return ("ip", "-n", self.netns, *self.argv[1:])
        return ("ip", "netns", "exec", self.netns, *self.argv)

    def __str__(self) -> str:
        text = shlex.join(self.full_argv())
        if self.stdin is not None:
            text += " <<'EOF'\n" + self.stdin.rstrip("\n") + "\nEOF"
        return text


def ip(netns: str | None, *args: str, check: bool = True) -> Command:
    return Command(("ip", *args), netns, check=check)


def sysctl(netns: str, name: str, value: str | int, *, check: bool = True) -> Command:
    return Command(("sysctl", "-q", "-w", f"{name}={value}"), netns, check=check)
