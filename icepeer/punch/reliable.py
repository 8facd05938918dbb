"""The acknowledged mode without I/O: sequence numbers, cumulative ACKs, retransmission.

Messages are cut into fragments (one per packet); every fragment gets the next
sequence number, the last carries ``FIN``. The receiver delivers fragments in
order, buffers those that come early, and answers each with the next sequence
number it expects (a cumulative ACK, as TCP's, RFC 9293 section 3.4). The
sender keeps every unacknowledged fragment and retransmits on a timer whose
value follows RFC 6298 (SRTT, RTTVAR, Karn's rule, exponential backoff).

Two deliberate departures, both for a chat line to arrive quickly on a path
that is already known to work: the minimum RTO is 200 ms rather than RFC
6298's 1 s (as Linux and QUIC, RFC 9002 section 6.2, do), and on expiry every
outstanding fragment is sent again, not only the first (the receiver keeps
what came early, so duplicates cost bandwidth, never order).
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass

from .wire import Flags

__all__ = ["Fragment", "ReliableReceiver", "ReliableSender", "RttEstimator"]

logger = logging.getLogger(__name__)


class RttEstimator:
    """RFC 6298 section 2: smoothed RTT, its variation, and the retransmission timeout."""

    K, ALPHA, BETA, G = 4, 1 / 8, 1 / 4, 0.001

    def __init__(self, *, initial_rto: float = 1.0, min_rto: float = 0.2, max_rto: float = 3.0) -> None:
        self.srtt: float | None = None
        self.rttvar = 0.0
        self.latest: float | None = None
        self.min_rto, self.max_rto = min_rto, max_rto
        self.rto = initial_rto

    def sample(self, rtt: float) -> None:
        rtt = max(rtt, 0.0)
        self.latest = rtt
        if self.srtt is None:  # section 2.2: the first measurement
            self.srtt, self.rttvar = rtt, rtt / 2
        else:  # section 2.3
            self.rttvar = (1 - self.BETA) * self.rttvar + self.BETA * abs(self.srtt - rtt)
            self.srtt = (1 - self.ALPHA) * self.srtt + self.ALPHA * rtt
        self.rto = min(self.max_rto, max(self.min_rto, self.srtt + max(self.G, self.K * self.rttvar)))

    def backoff(self) -> None:
        """Section 5.5: double the RTO after a timeout."""
        self.rto = min(self.max_rto, self.rto * 2)


@dataclass
class Fragment:
    seq: int
    payload: bytes
    flags: Flags
    sent_at: float = 0.0
    sends: int = 0


class ReliableSender:
    """Fragments, a window of unacknowledged ones, and the retransmission timer."""

    def __init__(self, rtt: RttEstimator, *, fragment_size: int, window: int = 64) -> None:
        if fragment_size < 1 or window < 1:
            raise ValueError("fragment_size and window must be positive")
        self.rtt = rtt
        self.fragment_size = fragment_size
        self.window = window
        self.next_seq = 0
        self.sent_upto = 0  # every seq below this one was transmitted at least once
        self.acked = 0  # every seq below this one was acknowledged
        self.retransmissions = 0
        self._queue: deque[Fragment] = deque()
        self._flight: dict[int, Fragment] = {}
        self._timer: float | None = None

    @property
    def outstanding(self) -> int:
        """Fragments sent or queued that are not acknowledged yet."""
        return len(self._flight) + len(self._queue)

    @property
    def all_delivered(self) -> bool:
        return not self._flight and not self._queue

    def queue(self, data: bytes, *, text: bool) -> None:
        """Queue one message; an empty one is a single empty fragment."""
        chunks = [data[i:i + self.fragment_size] for i in range(0, len(data), self.fragment_size)]
        chunks = chunks or [b""]
        base = Flags.TEXT if text else Flags.NONE
        for i, chunk in enumerate(chunks):
            flags = base | Flags.FIN if i == len(chunks) - 1 else base
            self._queue.append(Fragment(self.next_seq, chunk, flags))
            self.next_seq += 1

    def next_deadline(self) -> float | None:
        return self._timer

    def poll(self, now: float) -> list[Fragment]:
        """Fragments to (re)transmit now: new ones within the window, then timeouts."""
        out: list[Fragment] = []
        if self._timer is not None and now >= self._timer:
            # RFC 6298 section 5.4-5.6: retransmit, back off, restart the timer.
            self.rtt.backoff()
            for frag in self._flight.values():
                frag.sent_at, frag.sends = now, frag.sends + 1
                self.retransmissions += 1
                out.append(frag)
            logger.debug("retransmitting %d fragments, RTO now %.3f s", len(out), self.rtt.rto)
            self._timer = now + self.rtt.rto if self._flight else None
        while self._queue and len(self._flight) < self.window:
            frag = self._queue.popleft()
            frag.sent_at, frag.sends = now, 1
            self._flight[frag.seq] = frag
            self.sent_upto = frag.seq + 1
            out.append(frag)
            if self._timer is None:  # section 5.1
                self._timer = now + self.rtt.rto
        return out

    def ack(self, next_expected: int, now: float) -> int:
        """Take a cumulative ACK; return how many fragments it newly acknowledged."""
        if next_expected <= self.acked or next_expected > self.sent_upto:
            return 0  # old, duplicate, or acknowledging what was never sent
        newly = 0
        sample: float | None = None
        for seq in range(self.acked, next_expected):
            frag = self._flight.pop(seq, None)
            if frag is None:
                continue
            newly += 1
            if frag.sends == 1:  # Karn's rule (section 3): no sample from a retransmission
                sample = now - frag.sent_at
        self.acked = next_expected
        if sample is not None:
            self.rtt.sample(sample)
        # Sections 5.2 and 5.3: stop the timer or restart it for what is left.
        self._timer = now + self.rtt.rto if self._flight else None
        return newly


class ReliableReceiver:
    """In-order delivery and reassembly of the peer's fragments."""

    def __init__(self, *, window: int = 1024, max_message: int = 1 << 20) -> None:
        self.next_expected = 0
        self.window = window
        self.max_message = max_message
        self.duplicates = 0
        self.dropped = 0
        self._early: dict[int, tuple[bytes, Flags]] = {}
        self._parts: list[bytes] = []
        self._size = 0
        self._oversized = False

    def receive(self, seq: int, payload: bytes, flags: Flags) -> list[tuple[bytes, bool]]:
        """Take one fragment; return the messages now complete, in order, as (data, is_text)."""
        if seq < self.next_expected or seq in self._early:
            self.duplicates += 1
            return []
        if seq >= self.next_expected + self.window:
            self.dropped += 1  # beyond what we buffer: the sender will retransmit
            return []
        self._early[seq] = (payload, flags)
        out: list[tuple[bytes, bool]] = []
        while self.next_expected in self._early:
            part, fl = self._early.pop(self.next_expected)
            self.next_expected += 1
            self._size += len(part)
            if self._size > self.max_message:
                if not self._oversized:
                    logger.warning("dropping a message over %d bytes from the peer", self.max_message)
                self._oversized = True
                self._parts.clear()
            elif not self._oversized:
                self._parts.append(part)
            if fl & Flags.FIN:
                if not self._oversized:
                    out.append((b"".join(self._parts), bool(fl & Flags.TEXT)))
                self._parts, self._size, self._oversized = [], 0, False
        return out
