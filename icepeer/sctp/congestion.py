"""Congestion control and the retransmission timeout of an SCTP sender (RFC 9260 6.3, 7.2). No I/O.

- **RTO** (section 6.3.1): SRTT and RTTVAR from one sample per SACK (never
  from a retransmitted chunk: Karn), bounded by WebRTC's own values
  (dcsctp: initial 500 ms, minimum 400 ms) instead of the RFC's 3 s and 1 s,
  doubled by every T3 expiry.
- **Slow start and congestion avoidance** (sections 7.2.1, 7.2.2): cwnd
  grows by what a SACK acknowledged while at or below ssthresh (see
  :data:`SLOW_START_CAP`), by one MTU per window above it, and only while
  the window is in use.
- **Fast recovery** (section 7.2.4): the first fast retransmission of a
  window halves cwnd; no further reduction until the cumulative TSN passes
  what was outstanding then.
- **T3 expiry** (section 7.2.3): ssthresh halves, cwnd falls to one MTU.
- **Leaving slow start before the queue overflows** (HyStart++, RFC 9406,
  without its conservative phase): when a round's smallest RTT grows by
  ``eta`` (an eighth of the last round's, within 4-16 ms) over the last
  round's, the bottleneck's queue is filling: ssthresh becomes cwnd, on
  the sample that shows it (a round that waits on a lost chunk may never end).
  Without it, a 4 MiB receive window lets slow start double into a deep
  queue until a window's worth is lost (lab, 150 ms RTT, 20 Mbit/s: a fifth
  of the packets sent again, a T3, and ssthresh at its floor).
"""

from __future__ import annotations

from .serial import tsn_diff

__all__ = ["Congestion", "RTO_INITIAL", "RTO_MIN", "RTO_MAX", "INITIAL_CWND_PACKETS", "SLOW_START_CAP"]

RTO_INITIAL = 0.5
RTO_MIN = 0.4
RTO_MAX = 60.0
RTO_ALPHA, RTO_BETA = 1 / 8, 1 / 4
#: Initial congestion window: RFC 9260 section 7.2.1 allows min(4 MTU, max(2 MTU, 4380 bytes));
#: WebRTC's stacks start at 10 MTU, as TCP does since RFC 6928.
INITIAL_CWND_PACKETS = 10
#: Slow start grows cwnd by what a SACK acknowledged, up to this many MTUs.
#: RFC 9260 7.2.1 caps it at one, assuming a SACK for every packet or two;
#: icepeer's receivers acknowledge up to 8 packets with one SACK (one per
#: read burst), so the cap scales with that, as RFC 3465's L does for TCP.
#: Against a peer that SACKs every packet, the growth is RFC 9260's.
SLOW_START_CAP = 8
#: RFC 9406 section 4.3: RTT samples a round needs before it can end slow start; eta's bounds.
HYSTART_SAMPLES = 8
HYSTART_ETA_MIN, HYSTART_ETA_MAX = 0.004, 0.016


class Congestion:
    def __init__(self, max_packet: int) -> None:
        self.max_packet = max_packet
        self.cwnd = INITIAL_CWND_PACKETS * max_packet
        self.ssthresh = 1 << 30
        self.partial_bytes_acked = 0
        #: The highest TSN outstanding when fast recovery began, or None.
        self.fast_recovery_exit: int | None = None
        self.srtt: float | None = None
        self.rttvar = 0.0
        self.rto = RTO_INITIAL
        # HyStart++ rounds: the TSN that ends this one, its smallest RTT and samples, the last one's.
        self._round_end: int | None = None
        self._round_min = float("inf")
        self._round_samples = 0
        self._last_round_min: float | None = None
        self.hystart_exits = 0

    def sample(self, rtt: float) -> None:
        """One round-trip measurement (section 6.3.1 C2, C3)."""
        if self.srtt is None:
            self.srtt, self.rttvar = rtt, rtt / 2
        else:
            self.rttvar = (1 - RTO_BETA) * self.rttvar + RTO_BETA * abs(self.srtt - rtt)
            self.srtt = (1 - RTO_ALPHA) * self.srtt + RTO_ALPHA * rtt
        self.rto = min(max(self.srtt + 4 * self.rttvar, RTO_MIN), RTO_MAX)
        if self.cwnd <= self.ssthresh:
            self._round_min = min(self._round_min, rtt)
            self._round_samples += 1
            self._check_round()

    def acked(self, acked_bytes: int, *, flight_before: int, cumulative: int, advanced: bool,
              fast: bool, highest_outstanding: int) -> None:
        """A SACK acknowledged ``acked_bytes``; ``fast`` if it started a fast retransmission."""
        if self.fast_recovery_exit is not None and tsn_diff(cumulative, self.fast_recovery_exit) >= 0:
            self.fast_recovery_exit = None
        if self._round_end is None or tsn_diff(cumulative, self._round_end) >= 0:
            self._end_round(highest_outstanding)
        if fast and self.fast_recovery_exit is None:
            self.ssthresh = max(self.cwnd // 2, 4 * self.max_packet)
            self.cwnd = self.ssthresh
            self.partial_bytes_acked = 0
            self.fast_recovery_exit = highest_outstanding
        elif advanced and self.fast_recovery_exit is None:
            in_use = flight_before >= self.cwnd - self.max_packet
            if self.cwnd <= self.ssthresh:
                if in_use:
                    self.cwnd += min(acked_bytes, SLOW_START_CAP * self.max_packet)
            else:
                self.partial_bytes_acked += acked_bytes
                if self.partial_bytes_acked >= self.cwnd and in_use:
                    self.partial_bytes_acked -= self.cwnd
                    self.cwnd += self.max_packet

    def _check_round(self) -> None:
        """Has this round's RTT grown over the last one's (RFC 9406 section 4.2, on every sample)?

        Checked as each sample comes, not when the round ends: in a deep queue
        a round lasts ever longer, and one whose first loss holds the
        cumulative TSN back never ends while slow start doubles on.
        """
        last = self._last_round_min
        if last is None or self._round_samples < HYSTART_SAMPLES:
            return
        eta = min(max(last / 8, HYSTART_ETA_MIN), HYSTART_ETA_MAX)
        if self._round_min >= last + eta:
            # Just below cwnd: at cwnd == ssthresh SCTP is still in slow start (RFC 9260 7.2.1).
            self.ssthresh = self.cwnd - 1
            self.hystart_exits += 1

    def _end_round(self, next_end: int) -> None:
        """A round of slow start is over (RFC 9406 section 4.2): its smallest RTT is the next one's reference."""
        if self.cwnd <= self.ssthresh and self._round_samples >= HYSTART_SAMPLES:
            self._last_round_min = self._round_min
        self._round_end = next_end
        self._round_min = float("inf")
        self._round_samples = 0

    def timeout(self) -> None:
        """T3-rtx expired (sections 6.3.3, 7.2.3)."""
        self.ssthresh = max(self.cwnd // 2, 4 * self.max_packet)
        self.cwnd = self.max_packet
        self.partial_bytes_acked = 0
        self.fast_recovery_exit = None
        self.rto = min(self.rto * 2, RTO_MAX)
