"""Sets of integers kept as sorted, disjoint, inclusive ranges: TSNs received or acknowledged.

TSNs are 32-bit serial numbers (RFC 9260 section 1.6); both halves of an
association keep them *unwrapped* (a plain int that only grows, see
:func:`unwrap`) so that ranges compare with ``<``. With loss, the receiver's
out-of-order TSNs and the sender's gap-acknowledged ones form a few ranges,
however many TSNs they hold: adding one is a binary search, and a SACK's gap
blocks are the first ranges, not a sort of every TSN.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterator

__all__ = ["RangeSet", "unwrap"]


def unwrap(tsn: int, near: int) -> int:
    """The unwrapped TSN closest to the unwrapped ``near`` whose low 32 bits are ``tsn``."""
    d = (tsn - near) & 0xFFFFFFFF
    if d & 0x80000000:
        d -= 0x100000000
    return near + d


class RangeSet:
    def __init__(self) -> None:
        self._lo: list[int] = []
        self._hi: list[int] = []

    def __bool__(self) -> bool:
        return bool(self._lo)

    def __len__(self) -> int:
        """How many ranges (not integers)."""
        return len(self._lo)

    def __contains__(self, value: int) -> bool:
        i = bisect_right(self._lo, value) - 1
        return i >= 0 and value <= self._hi[i]

    def ranges(self) -> Iterator[tuple[int, int]]:
        return zip(self._lo, self._hi, strict=True)

    @property
    def first(self) -> tuple[int, int]:
        return self._lo[0], self._hi[0]

    @property
    def highest(self) -> int:
        return self._hi[-1]

    def add(self, lo: int, hi: int) -> list[tuple[int, int]]:
        """Add ``lo..hi``; the parts of it that were not in the set yet."""
        los, his = self._lo, self._hi
        i = bisect_left(his, lo - 1)  # first range that touches or follows lo
        j = bisect_right(los, hi + 1)  # ranges before j start no later than hi + 1
        if i == j:
            los.insert(i, lo)
            his.insert(i, hi)
            return [(lo, hi)]
        new: list[tuple[int, int]] = []
        cursor = lo
        for k in range(i, j):
            if los[k] > cursor:
                new.append((cursor, min(los[k] - 1, hi)))
            cursor = max(cursor, his[k] + 1)
        if cursor <= hi:
            new.append((cursor, hi))
        merged_lo, merged_hi = min(lo, los[i]), max(hi, his[j - 1])
        del los[i:j], his[i:j]
        los.insert(i, merged_lo)
        his.insert(i, merged_hi)
        return new

    def pop_first(self) -> tuple[int, int]:
        lo, hi = self._lo.pop(0), self._hi.pop(0)
        return lo, hi

    def discard_below(self, value: int) -> None:
        """Forget every integer below ``value``."""
        los, his = self._lo, self._hi
        i = bisect_left(his, value)
        del los[:i], his[:i]
        if los and los[0] < value:
            los[0] = value

    def holes(self, lo: int, hi: int) -> Iterator[tuple[int, int]]:
        """The parts of ``lo..hi`` not in the set."""
        cursor = lo
        i = bisect_right(self._hi, lo - 1)
        los, his = self._lo, self._hi
        while cursor <= hi and i < len(los):
            if los[i] > cursor:
                yield cursor, min(los[i] - 1, hi)
            cursor = max(cursor, his[i] + 1)
            i += 1
        if cursor <= hi:
            yield cursor, hi
