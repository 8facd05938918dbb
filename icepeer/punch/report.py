"""What a punched connection measured: its path, timings, RTT and packet counts.

:class:`Tally` keeps the counts and milestones as the session runs;
:class:`PunchReport` is the snapshot a caller gets.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .candidates import Candidate

__all__ = ["PunchReport", "Tally"]


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


@dataclass
class PunchReport:
    """A snapshot; times in seconds from the start (``timings`` keys are milestones)."""

    state: str
    local: Candidate | None = None
    remote: Candidate | None = None
    local_candidates: list[Candidate] = field(default_factory=list)
    remote_candidates: list[Candidate] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    punch_tries: int = 0
    rtt: float | None = None
    rtt_latest: float | None = None
    packets_sent: int = 0
    packets_received: int = 0
    packets_accepted: int = 0
    packets_ignored: int = 0
    ignored: dict[str, int] = field(default_factory=dict)
    bytes_sent: int = 0
    bytes_received: int = 0
    messages_sent: int = 0
    messages_received: int = 0
    datagrams_sent: int = 0
    datagrams_received: int = 0
    retransmissions: int = 0
    duplicates: int = 0
    stun_errors: list[str] = field(default_factory=list)
    #: Our public addresses as the STUN servers saw them (before deduplication).
    stun_mapped: list[tuple[str, int]] = field(default_factory=list)

    @property
    def elapsed(self) -> float | None:
        """Seconds from the start to the connection, if there was one."""
        return self.timings.get("connected")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; durations in milliseconds."""
        return {
            "state": self.state,
            "local": self.local.to_json() if self.local else None,
            "remote": self.remote.to_json() if self.remote else None,
            "local_candidates": [c.to_json() for c in self.local_candidates],
            "remote_candidates": [c.to_json() for c in self.remote_candidates],
            "timings_ms": {k: _ms(v) for k, v in self.timings.items()},
            "punch_tries": self.punch_tries,
            "rtt_ms": _ms(self.rtt),
            "rtt_latest_ms": _ms(self.rtt_latest),
            "packets": {
                "sent": self.packets_sent,
                "received": self.packets_received,
                "accepted": self.packets_accepted,
                "ignored": self.packets_ignored,
                "ignored_by_reason": dict(self.ignored),
                "retransmissions": self.retransmissions,
                "duplicates": self.duplicates,
            },
            "bytes": {"sent": self.bytes_sent, "received": self.bytes_received},
            "messages": {"sent": self.messages_sent, "received": self.messages_received},
            "datagrams": {"sent": self.datagrams_sent, "received": self.datagrams_received},
            "stun_errors": list(self.stun_errors),
            "stun_mapped": [{"address": a, "port": p} for a, p in self.stun_mapped],
        }


class Tally:
    """Counts and milestones, kept as the session runs; :meth:`fill` copies them to a report."""

    def __init__(self, origin: float) -> None:
        #: Keyed by the names of :class:`PunchReport`'s packet, byte, message and datagram counts.
        self.counts: Counter[str] = Counter()
        #: Dropped datagrams by reason.
        self.ignored: Counter[str] = Counter()
        self._origin = origin
        self._timings: dict[str, float] = {}

    def mark(self, name: str, now: float) -> None:
        """Record when milestone ``name`` was first reached (seconds from the origin)."""
        self._timings.setdefault(name, now - self._origin)

    def fill(self, report: PunchReport) -> PunchReport:
        """``report`` with the counts, the ignored datagrams and the timings so far."""
        c = self.counts
        report.packets_sent, report.packets_received = c["packets_sent"], c["packets_received"]
        report.packets_accepted = c["packets_accepted"]
        report.bytes_sent, report.bytes_received = c["bytes_sent"], c["bytes_received"]
        report.messages_sent, report.messages_received = c["messages_sent"], c["messages_received"]
        report.datagrams_sent = c["datagrams_sent"]
        report.datagrams_received = c["datagrams_received"]
        report.packets_ignored = sum(self.ignored.values())
        report.ignored = dict(self.ignored)
        report.timings = dict(self._timings)
        return report
