"""Progress: bytes, rate and time left, measured and formatted without I/O.

The rate is taken over the last few seconds (a sliding window), so that it
follows the link rather than the average since the start; the time left
is what remains at that rate.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

__all__ = ["Meter", "Snapshot", "format_bytes", "format_duration", "format_rate", "render_bar", "render_line"]


@dataclass(frozen=True)
class Snapshot:
    done: int
    total: int
    elapsed: float
    rate: float | None  # bytes per second
    eta: float | None  # seconds left

    @property
    def fraction(self) -> float:
        return 1.0 if self.total <= 0 else min(1.0, self.done / self.total)

    def to_dict(self) -> dict[str, float | int | None]:
        return {"bytes": self.done, "total": self.total, "elapsed_s": round(self.elapsed, 3),
                "rate_Bps": None if self.rate is None else round(self.rate),
                "eta_s": None if self.eta is None else round(self.eta, 1)}


class Meter:
    """Feed it ``(bytes done, now)``; it says how fast and how long."""

    def __init__(self, total: int, start: float, *, window: float = 3.0) -> None:
        self.total = total
        self.start = start
        self.window = window
        self._samples: deque[tuple[float, int]] = deque([(start, 0)])
        self._last = Snapshot(0, total, 0.0, None, None)

    def update(self, done: int, now: float) -> Snapshot:
        self._samples.append((now, done))
        while len(self._samples) > 2 and now - self._samples[1][0] >= self.window:
            self._samples.popleft()
        first_t, first_done = self._samples[0]
        span = now - first_t
        rate = (done - first_done) / span if span > 0 else None
        left = max(0, self.total - done)
        if left == 0:
            eta: float | None = 0.0
        elif rate:
            eta = left / rate
        else:
            eta = None
        self._last = Snapshot(done, self.total, now - self.start, rate, eta)
        return self._last

    @property
    def last(self) -> Snapshot:
        return self._last


def format_bytes(count: float) -> str:
    """SI units, as rates are quoted (1 MB = 10**6 bytes)."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(count) < 1000 or unit == "TB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    raise AssertionError("unreachable")


def format_rate(rate: float | None) -> str:
    return "-- B/s" if rate is None else f"{format_bytes(rate)}/s"


def format_duration(seconds: float | None) -> str:
    """``m:ss``, or ``h:mm:ss`` past an hour; ``--:--`` when unknown."""
    if seconds is None or math.isnan(seconds) or seconds > 99 * 3600:
        return "--:--"
    whole = int(seconds + 0.5)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def render_line(snap: Snapshot) -> str:
    """Plain words, for logs and pipes."""
    return (f"{format_bytes(snap.done)} of {format_bytes(snap.total)} ({snap.fraction:.0%}), "
            f"{format_rate(snap.rate)}, {format_duration(snap.eta)} left")


def render_bar(snap: Snapshot, width: int = 80) -> str:
    """One terminal line of at most ``width`` characters: a bar, bytes, rate, time left."""
    tail = (f" {snap.fraction:4.0%}  {format_bytes(snap.done)} / {format_bytes(snap.total)}"
            f"  {format_rate(snap.rate)}  {format_duration(snap.eta)} left")
    room = width - len(tail) - 2
    if room < 10:
        return tail.strip()[:width]
    filled = int(room * snap.fraction)
    return "[" + "#" * filled + "-" * (room - filled) + "]" + tail
