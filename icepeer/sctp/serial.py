"""Serial number arithmetic for TSNs (32 bits) and stream sequence numbers (16 bits): RFC 1982."""

from __future__ import annotations

__all__ = ["tsn_add", "tsn_diff", "ssn_diff"]


def tsn_add(tsn: int, delta: int) -> int:
    return (tsn + delta) & 0xFFFFFFFF


def tsn_diff(a: int, b: int) -> int:
    """``a - b`` in serial arithmetic: negative when ``a`` comes before ``b`` (RFC 9260 section 1.6)."""
    d = (a - b) & 0xFFFFFFFF
    return d - 0x100000000 if d & 0x80000000 else d


def ssn_diff(a: int, b: int) -> int:
    """``a - b`` for 16-bit stream sequence numbers."""
    d = (a - b) & 0xFFFF
    return d - 0x10000 if d & 0x8000 else d
