"""The matrix of cells: which pairs to run, and the JSON, markdown and PNG reports. No I/O.

Pairs are unordered (``prc x sym`` is run, ``sym x prc`` is not): the two
peers run the same command, and which one offers is decided by who joins
the room first. The shared-LAN kinds pair only with themselves.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from typing import Any

from .cell import CellResult, Mode
from .kinds import NatKind
from .png import RGB, Canvas

__all__ = ["COLOURS", "Matrix", "pairs"]

COLOURS: dict[str, RGB] = {
    "direct": (46, 160, 67),  # green: a direct path (host, srflx or prflx on both sides)
    "relay": (240, 180, 40),  # amber: through the TURN relay
    "failed": (215, 50, 45),  # red: no connection
    "lossy": (150, 110, 200),  # violet: connected, but messages were lost
    "none": (225, 225, 225),  # grey: not run
}


def pairs(kinds: Sequence[NatKind]) -> list[tuple[NatKind, NatKind]]:
    """Every unordered pair of ``kinds`` (with itself), shared-LAN kinds with themselves only."""
    routed = [k for k in kinds if not k.shared_lan]
    out = list(itertools.combinations_with_replacement(routed, 2))
    out += [(k, k) for k in kinds if k.shared_lan]
    return out


def _key(a: str, b: str, mode: str) -> tuple[str, str, str]:
    return (a, b, mode)


class Matrix:
    """Results indexed by (a, b, mode), with the reports built from them."""

    def __init__(self, kinds: Sequence[NatKind], modes: Sequence[Mode],
                 results: Iterable[CellResult] = ()) -> None:
        self.kinds = list(kinds)
        self.modes = list(modes)
        self.results: dict[tuple[str, str, str], CellResult] = {}
        for r in results:
            self.add(r)

    def add(self, result: CellResult) -> None:
        self.results[_key(result.a, result.b, result.mode)] = result

    def get(self, a: NatKind, b: NatKind, mode: Mode) -> CellResult | None:
        return (self.results.get(_key(a.value, b.value, mode.value))
                or self.results.get(_key(b.value, a.value, mode.value)))

    @staticmethod
    def category(result: CellResult | None) -> str:
        if result is None:
            return "none"
        if result.connected and result.lost:
            return "lossy"
        return result.outcome

    # -- reports --------------------------------------------------------------

    def to_json(self, **meta: Any) -> dict[str, Any]:
        return {
            **meta,
            "kinds": [k.value for k in self.kinds],
            "modes": [m.value for m in self.modes],
            "cells": [r.to_json() for r in self.results.values()],
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Matrix:
        return cls([NatKind(k) for k in doc["kinds"]], [Mode(m) for m in doc["modes"]],
                   [CellResult.from_json(c) for c in doc["cells"]])

    @staticmethod
    def cell_text(result: CellResult | None) -> str:
        if result is None:
            return ""
        if not result.connected:
            return "**fail**"
        t = f" {result.connect_ms / 1000:.1f} s" if result.connect_ms is not None else ""
        # A's candidate type / B's as A saw it: host, srflx, prflx or relay
        kind = f"{result.local_type}/{result.remote_type}"
        if result.protocol and result.protocol != "udp":
            kind += f" {result.protocol}"
        if result.ip_version == 6:
            kind += " v6"
        lost = f", {result.lost} lost" if result.lost else ""
        return f"{kind}{t}{lost}"

    def markdown(self) -> str:
        """One table per mode: rows a, columns b; each cell the outcome and time to connect."""
        out: list[str] = []
        routed = [k for k in self.kinds if not k.shared_lan]
        shared = [k for k in self.kinds if k.shared_lan]
        for mode in self.modes:
            out.append(f"### {mode.value}\n")
            if routed:
                out.append("| a \\ b | " + " | ".join(k.value for k in routed) + " |")
                out.append("|---" * (len(routed) + 1) + "|")
                for i, a in enumerate(routed):
                    cells = [self.cell_text(self.get(a, b, mode)) if j >= i else ""
                             for j, b in enumerate(routed)]
                    out.append(f"| **{a.value}** | " + " | ".join(cells) + " |")
                out.append("")
            for k in shared:
                out.append(f"- {k.value}: {self.cell_text(self.get(k, k, mode)) or 'not run'}")
            if shared:
                out.append("")
        out.append("Cells: the candidate types of the selected pair as A reports it (A's / B's; "
                   "`tcp` when A's candidate is TCP, `v6` when the pair is IPv6), and the time to "
                   "connect: the slower peer's `elapsed_ms`. **fail**: no connection within the "
                   "timeout.")
        return "\n".join(out) + "\n"

    def png(self, cell: int = 18, gap: int = 2, margin: int = 8) -> bytes:
        """One square panel per mode, side by side; a row of shared-LAN cells under each."""
        routed = [k for k in self.kinds if not k.shared_lan]
        shared = [k for k in self.kinds if k.shared_lan]
        n = max(len(routed), len(shared), 1)
        step = cell + gap
        panel_w = n * step
        panel_h = len(routed) * step + (step + gap * 3 if shared else 0)
        width = margin * 2 + len(self.modes) * panel_w + (len(self.modes) - 1) * margin * 2
        height = margin * 2 + max(panel_h, step)
        canvas = Canvas(width, height)
        for p, mode in enumerate(self.modes):
            x0 = margin + p * (panel_w + margin * 2)
            for i, a in enumerate(routed):
                for j, b in enumerate(routed):
                    colour = COLOURS[self.category(self.get(a, b, mode))]
                    canvas.rect(x0 + j * step, margin + i * step, cell, cell, colour)
            y = margin + len(routed) * step + gap * 3
            for j, k in enumerate(shared):
                canvas.rect(x0 + j * step, y, cell, cell, COLOURS[self.category(self.get(k, k, mode))])
        return canvas.png()
