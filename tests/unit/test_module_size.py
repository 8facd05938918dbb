"""Modules a newcomer can hold in their head: none of the packages' over 450 lines (issue 11)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 450


def test_no_module_is_over_450_lines():
    sizes = {path.relative_to(ROOT).as_posix(): len(path.read_text().splitlines())
             for package in ("icepeer", "signaling", "icecommon") for path in (ROOT / package).rglob("*.py")}
    assert sizes and {name: n for name, n in sizes.items() if n > LIMIT} == {}
