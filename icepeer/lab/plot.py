"""The matrix as a picture a person can read, drawn with matplotlib (an optional dependency).

One panel per mode; NAT kinds on both axes (A's down the side, B's along the
top; pairs are unordered, so only the upper triangle is filled, and a
shared-LAN kind only on the diagonal); each cell coloured by its outcome and
labelled with the time to connect and the selected pair's candidate types;
a legend; the profile in the title. matplotlib is imported only here and
only when drawing (``pip install matplotlib``): without it
:func:`available` is false and the matrix falls back to
:meth:`icepeer.lab.matrix.Matrix.png`'s plain squares.
"""

from __future__ import annotations

import importlib
import io
import math
from typing import Any

from .cell import CellResult
from .matrix import COLOURS, Matrix

__all__ = ["LABELS", "available", "draw", "short_path"]

LABELS = {
    "direct": "direct",
    "relay": "relayed (TURN)",
    "failed": "failed",
    "lossy": "connected, messages lost",
    "none": "not run",
}
_TYPES = {"host": "h", "srflx": "s", "prflx": "p", "relay": "r"}


def available() -> bool:
    try:
        importlib.import_module("matplotlib")
    except ImportError:
        return False
    return True


def short_path(result: CellResult) -> str:
    """``h/s``, ``r/r tcp``, ``h/h v6``: the candidate types of A's pair, abbreviated."""
    text = "/".join(_TYPES.get(t or "", "?") for t in (result.local_type, result.remote_type))
    if result.protocol and result.protocol != "udp":
        text += f" {result.protocol}"
    if result.ip_version == 6:
        text += " v6"
    return text


def _time(ms: float) -> str:
    return f"{ms:.0f} ms" if ms < 1000 else f"{ms / 1000:.1f} s"


def _rgb(name: str) -> tuple[float, float, float]:
    r, g, b = COLOURS[name]
    return (r / 255, g / 255, b / 255)


def draw(matrix: Matrix, title: str, *, dpi: int = 110) -> bytes:
    """The PNG of ``matrix``, titled ``title`` (the profile and options)."""
    mpl: Any = importlib.import_module("matplotlib")
    mpl.use("Agg")
    plt: Any = importlib.import_module("matplotlib.pyplot")
    patches: Any = importlib.import_module("matplotlib.patches")
    kinds = matrix.kinds
    n, modes = len(kinds), matrix.modes or []
    cols = min(len(modes), 2) or 1
    rows = max(1, math.ceil(len(modes) / cols))
    side = 0.62 * n + 1.3
    fig, axes = plt.subplots(rows, cols, figsize=(cols * side, rows * side + 0.9), squeeze=False)
    for index, ax in enumerate(axes.flat):
        if index >= len(modes):
            ax.axis("off")
            continue
        mode = modes[index]
        for i, a in enumerate(kinds):
            for j, b in enumerate(kinds):
                upper = j >= i and (a is b or not (a.shared_lan or b.shared_lan))
                if not upper:
                    continue
                result = matrix.get(a, b, mode)
                category = Matrix.category(result)
                ax.add_patch(patches.Rectangle((j, i), 1, 1, facecolor=_rgb(category),
                                               edgecolor="white", linewidth=1.5))
                if result is None:
                    continue
                colour = "white" if category in ("direct", "failed", "lossy") else "black"
                if result.connected and result.connect_ms is not None:
                    text = f"{_time(result.connect_ms)}\n{short_path(result)}"
                else:
                    text = "fail"
                ax.text(j + 0.5, i + 0.5, text, ha="center", va="center", fontsize=6.5,
                        color=colour, linespacing=1.1)
        ax.set_xlim(0, n)
        ax.set_ylim(n, 0)
        ax.set_aspect("equal")
        ticks = [k + 0.5 for k in range(n)]
        names = [k.value for k in kinds]
        ax.set_xticks(ticks, names, rotation=45, ha="left", fontsize=8)
        ax.set_yticks(ticks, names, fontsize=8)
        ax.xaxis.tick_top()
        ax.tick_params(length=0)
        for spine in ax.spines.values():
            spine.set_visible(False)
        cells = [r for r in matrix.results.values() if r.mode == mode.value]
        connected = sum(1 for r in cells if r.connected)
        ax.set_title(f"mode {mode.value}: {connected} of {len(cells)} connected", fontsize=10,
                     pad=44)
    handles = [patches.Patch(facecolor=_rgb(k), label=LABELS[k]) for k in LABELS]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8, frameon=False)
    fig.suptitle(title, fontsize=11)
    fig.text(0.5, 0.045, "rows: A's NAT kind, columns: B's (pairs are unordered). In each cell: "
             "the time to connect (the slower peer),\nand the candidate types of A's selected "
             "pair, A's/B's: h host, s srflx, p prflx, r relay; tcp: TURN over TCP; v6: IPv6",
             ha="center", fontsize=7.5, linespacing=1.4)
    fig.tight_layout(rect=(0, 0.08, 1, 0.96), h_pad=2.5)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    return buf.getvalue()
