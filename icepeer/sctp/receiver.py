"""The receiving half of an SCTP association: TSNs, reassembly, order, SACKs, the window. No I/O.

- Duplicates are dropped and reported; a gap (a TSN beyond the next) asks
  for a SACK at once (RFC 9260 section 6.7); otherwise a SACK goes once per
  read burst when at least two packets are unacknowledged, or 200 ms after
  the first one (section 6.2: at least every second packet, never later
  than 200 ms), or at once when the sender asks (the I bit, RFC 7053).
- **Bounded memory.** The advertised window (a_rwnd) is the limit minus
  everything held: chunks waiting for reassembly or for their turn in an
  ordered stream, and messages handed to the application that it has not
  read yet (it reports reading with :meth:`Receiver.consumed`). Each chunk
  and message also costs :data:`OVERHEAD` bytes, so that a flood of tiny
  chunks is bounded too. A chunk that does not fit is dropped (section 6.2);
  an honest sender only probes a closed window one packet at a time, so a
  sender that keeps sending past it is cut off (:class:`WindowIgnored`).
- Messages larger than ``max_message`` are refused (:class:`MessageTooLarge`).
- FORWARD-TSN (RFC 3758 section 3.6) skips abandoned messages.
"""

from __future__ import annotations

from collections.abc import Callable

from .chunks import (
    FLAG_BEGIN,
    FLAG_END,
    FLAG_IMMEDIATE,
    FLAG_UNORDERED,
    DataChunk,
    ForwardTsnChunk,
    sack_chunk,
)
from .ranges import RangeSet, unwrap
from .serial import ssn_diff, tsn_add

__all__ = ["Receiver", "OVERHEAD", "DELAYED_SACK", "WindowIgnored", "MessageTooLarge"]

#: What each held chunk or unread message costs beyond its bytes (bookkeeping).
OVERHEAD = 64
#: Longest a SACK may wait (RFC 9260 section 6.2).
DELAYED_SACK = 0.2
#: Within a long burst, a SACK at least every this many packets, so that
#: one lost SACK does not leave a whole window unacknowledged.
SACK_EVERY = 8
MAX_GAP_BLOCKS = 64
MAX_DUPLICATES = 16
#: Chunks beyond the window tolerated per second (zero-window probes are one per RTO).
OVERRUN_RATE, OVERRUN_BURST = 8.0, 32.0

_BOTH = FLAG_BEGIN | FLAG_END


class WindowIgnored(Exception):
    """The peer keeps sending beyond the receive window we advertised."""


class MessageTooLarge(Exception):
    """The peer sent a message larger than our maximum message size."""


class InStream:
    __slots__ = ("expected", "fragment_bytes", "fragments", "ready")

    def __init__(self) -> None:
        self.expected = 0
        #: Complete ordered messages waiting for an earlier one: ssn -> (ppid, data).
        self.ready: dict[int, tuple[int, bytes]] = {}
        #: Fragments of incomplete messages: tsn -> chunk.
        self.fragments: dict[int, DataChunk] = {}
        self.fragment_bytes = 0


Deliver = Callable[[int, int, bytes], None]


class Receiver:
    def __init__(self, initial_tsn: int, *, limit: int, max_message: int, deliver: Deliver) -> None:
        #: The cumulative TSN, unwrapped (see :mod:`.ranges`).
        self.cum = tsn_add(initial_tsn, -1)
        #: TSNs above it received already, unwrapped, as ranges: the SACK's gap blocks.
        self.received = RangeSet()
        self.duplicates: list[int] = []
        self.limit = limit
        self.max_message = max_message
        self.deliver = deliver
        self.held = 0
        self.unread = 0
        self.streams: dict[int, InStream] = {}
        self.unacked = 0
        self.sack_now = False
        self.sack_deadline: float | None = None
        self.advertised = limit
        self.dropped = 0
        self._overrun = OVERRUN_BURST
        self._overrun_at = 0.0

    @property
    def cumulative(self) -> int:
        """The cumulative TSN as on the wire (32 bits)."""
        return self.cum & 0xFFFFFFFF

    @property
    def a_rwnd(self) -> int:
        return max(0, self.limit - self.held - self.unread)

    # -- DATA ---------------------------------------------------------------------

    def packet(self, now: float) -> None:
        """A packet with DATA arrived: one more to acknowledge."""
        self.unacked += 1
        if self.sack_deadline is None:
            self.sack_deadline = now + DELAYED_SACK

    def data(self, chunk: DataChunk, now: float, slack: int) -> None:
        flags, tsn, stream, ssn, ppid, payload = chunk
        cum = self.cum
        number = unwrap(tsn, cum)
        ahead = number - cum
        if ahead <= 0 or (ahead > 1 and number in self.received):
            if len(self.duplicates) < MAX_DUPLICATES:
                self.duplicates.append(tsn)
            self.sack_now = True
            return
        cost = len(payload) + OVERHEAD
        if self.held + self.unread + cost > self.limit + slack:
            self._dropped_for_window(now)
            return
        if flags & FLAG_IMMEDIATE:
            self.sack_now = True
        if ahead == 1:
            received = self.received
            if received:
                if received.first[0] == number + 1:
                    number = received.pop_first()[1]
                self.sack_now = True  # a gap was filled: say so at once
            self.cum = number
        else:
            self.received.add(number, number)
            self.sack_now = True
        if flags & _BOTH == _BOTH:
            if flags & FLAG_UNORDERED:
                self._deliver(stream, ppid, payload)
                return
            instream = self.streams.get(stream)
            if instream is None:
                instream = self.streams[stream] = InStream()
            if ssn == instream.expected and not instream.ready:
                instream.expected = (ssn + 1) & 0xFFFF
                self._deliver(stream, ppid, payload)
            elif ssn_diff(ssn, instream.expected) >= 0:
                instream.ready[ssn] = (ppid, payload)
                self.held += cost
                self._drain(stream, instream)
            return
        self._fragment(chunk, cost)

    def _fragment(self, chunk: DataChunk, cost: int) -> None:
        flags, tsn, stream, ssn, ppid, payload = chunk
        instream = self.streams.get(stream)
        if instream is None:
            instream = self.streams[stream] = InStream()
        if not flags & FLAG_UNORDERED and ssn_diff(ssn, instream.expected) < 0:
            return  # a late fragment of a message already skipped
        fragments = instream.fragments
        fragments[tsn] = chunk
        instream.fragment_bytes += len(payload)
        self.held += cost
        if instream.fragment_bytes > self.max_message + len(fragments) * 4096:
            # More partial data than any message may hold (and a little for
            # fragments of several unordered messages): a hostile peer.
            raise MessageTooLarge(f"more than {self.max_message} bytes of one unfinished message")
        # A message is whole once its fragments from B to E are here. Without
        # its E, or the next fragment, this one cannot have completed one: in
        # order, only the E fragment walks back (once per message, not once
        # per fragment).
        end = tsn
        while not fragments[end][0] & FLAG_END:
            end = (end + 1) & 0xFFFFFFFF
            if end not in fragments:
                return
        start = tsn
        while not fragments[start][0] & FLAG_BEGIN:
            start = (start - 1) & 0xFFFFFFFF
            if start not in fragments:
                return
        parts = []
        t = start
        while True:
            part = fragments.pop(t)
            parts.append(part[5])
            self.held -= len(part[5]) + OVERHEAD
            instream.fragment_bytes -= len(part[5])
            if t == end:
                break
            t = (t + 1) & 0xFFFFFFFF
        message = b"".join(parts)
        if len(message) > self.max_message:
            raise MessageTooLarge(f"a message of {len(message)} bytes, more than {self.max_message}")
        if flags & FLAG_UNORDERED:
            self._deliver(stream, ppid, message)
        else:
            instream.ready[ssn] = (ppid, message)
            self.held += len(message) + OVERHEAD
            self._drain(stream, instream)

    def _drain(self, stream: int, instream: InStream) -> None:
        ready = instream.ready
        while instream.expected in ready:
            ppid, data = ready.pop(instream.expected)
            self.held -= len(data) + OVERHEAD
            instream.expected = (instream.expected + 1) & 0xFFFF
            self._deliver(stream, ppid, data)

    def _deliver(self, stream: int, ppid: int, data: bytes) -> None:
        self.unread += len(data) + OVERHEAD
        self.deliver(stream, ppid, data)

    def consumed(self, nbytes: int) -> None:
        """The application read a message of ``nbytes`` bytes: its room is free again."""
        self.unread -= nbytes + OVERHEAD
        # A window that opened by a quarter of the limit is worth a SACK now:
        # the sender may be waiting on it (RFC 9260 section 6.2).
        if self.a_rwnd - self.advertised >= self.limit // 4:
            self.sack_now = True

    def _dropped_for_window(self, now: float) -> None:
        self.dropped += 1
        self.sack_now = True
        self._overrun = min(OVERRUN_BURST, self._overrun + (now - self._overrun_at) * OVERRUN_RATE) - 1
        self._overrun_at = now
        if self._overrun < 0:
            raise WindowIgnored(
                f"the peer kept sending beyond the receive window ({self.limit} bytes): "
                "it ignores SCTP flow control (RFC 9260 section 6.1)"
            )

    # -- FORWARD-TSN (RFC 3758 section 3.6) -----------------------------------------

    def forward_tsn(self, chunk: ForwardTsnChunk) -> None:
        new = unwrap(chunk.cumulative_tsn, self.cum)
        if new <= self.cum:
            self.sack_now = True
            return
        self.received.discard_below(new + 1)
        for instream in self.streams.values():
            for tsn in [t for t in instream.fragments if unwrap(t, self.cum) <= new]:
                payload = instream.fragments.pop(tsn)[5]
                instream.fragment_bytes -= len(payload)
                self.held -= len(payload) + OVERHEAD
        self.cum = new
        if self.received and self.received.first[0] == new + 1:
            self.cum = self.received.pop_first()[1]
        for stream, ssn in chunk.streams:
            instream = self.streams.setdefault(stream, InStream())
            expected = instream.expected
            # Deliver what is complete up to the skipped message, then skip past it.
            for waiting in sorted((s for s in instream.ready if ssn_diff(s, ssn) <= 0),
                                  key=lambda s: ssn_diff(s, expected)):
                ppid, data = instream.ready.pop(waiting)
                self.held -= len(data) + OVERHEAD
                self._deliver(stream, ppid, data)
            if ssn_diff(ssn, instream.expected) >= 0:
                instream.expected = (ssn + 1) & 0xFFFF
            self._drain(stream, instream)
        self.sack_now = True

    def reset_stream(self, stream: int) -> None:
        """The peer reset its outgoing ``stream`` (RFC 6525): sequence numbers start at 0 again."""
        instream = self.streams.pop(stream, None)
        if instream is not None:
            self.held -= sum(len(d) + OVERHEAD for _, d in instream.ready.values())
            self.held -= sum(len(c[5]) + OVERHEAD for c in instream.fragments.values())

    # -- SACK ---------------------------------------------------------------------

    def sack_due(self, now: float, *, burst_end: bool) -> bool:
        if self.sack_now or self.unacked >= SACK_EVERY:
            return True
        if burst_end and self.unacked >= 2:
            return True
        return self.sack_deadline is not None and now >= self.sack_deadline

    def sack(self) -> bytes:
        """The SACK chunk for now (RFC 9260 section 3.3.4); resets the delayed-SACK state."""
        gaps: list[tuple[int, int]] = []
        cum = self.cum
        for lo, hi in self.received.ranges():
            if hi - cum > 0xFFFF:
                break  # beyond what a 16-bit gap offset can say
            gaps.append((lo - cum, hi - cum))
            if len(gaps) == MAX_GAP_BLOCKS:
                break
        window = self.a_rwnd
        chunk = sack_chunk(cum & 0xFFFFFFFF, window, gaps, self.duplicates)
        self.duplicates = []
        self.advertised = window
        self.unacked = 0
        self.sack_now = False
        self.sack_deadline = None
        return chunk
