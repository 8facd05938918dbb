"""The sending half of an SCTP association: TSNs, congestion control, retransmission. No I/O.

- Messages are split into DATA chunks and given TSNs and stream sequence
  numbers when queued (RFC 9260 section 6.6, 6.9); they wait in
  ``outbound`` until the congestion window (``cwnd``, section 7.2) and the
  peer's receive window (section 6.1) let them go, bundled into packets of
  at most ``max_packet`` bytes.
- A SACK (section 6.2.1) acknowledges the chunks up to its cumulative TSN
  and those in its gap blocks. The chunks in flight sit in TSN order, so the
  cost of a SACK is the chunks it acknowledges, plus the holes below its
  highest gap block when there is loss; never a walk over the whole flight.
- Loss: three miss indications (or, RACK-style, a later chunk acknowledged
  a quarter RTT past this one's due time) make a fast retransmission and one
  fast recovery per window (section 7.2.4); a retransmission that is lost
  too is detected the same way from the chunks sent after it; a tail loss
  probe two RTTs after the last acknowledgement (RFC 8985) saves a lost
  SACK or tail from the T3-rtx timer, which retransmits everything
  outstanding with the window collapsed to one packet (section 6.3.3). RTO follows section 6.3.1 with WebRTC's own bounds (dcsctp:
  initial 500 ms, minimum 400 ms).
- Partial reliability (RFC 3758): a message past its retransmission count
  or lifetime is abandoned whole, and FORWARD-TSN tells the receiver to skip it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from .chunks import (
    DATA_HEADER_LENGTH,
    FLAG_BEGIN,
    FLAG_END,
    FLAG_IMMEDIATE,
    FLAG_UNORDERED,
    ForwardTsnChunk,
    SackChunk,
    data_chunk,
)
from .congestion import Congestion
from .outgoing import OutChunk, OutMessage
from .ranges import RangeSet, unwrap
from .serial import tsn_add, tsn_diff

__all__ = ["Sender", "OutChunk", "OutMessage"]

#: The shortest wait before a tail loss probe (RFC 8985: 2 SRTT; Linux: 10 ms at least).
#: A probe costs one packet; on the lab's lan at 5 % loss (SRTT 0.3 ms) a 10 ms floor
#: stalled the path at each lost SACK: 52 Mbit/s on uvloop, 114 with 2 ms.
PROBE_MIN = 0.002
#: Probes per episode, each waiting twice as long (RFC 8985 sends one, then waits for
#: the RTO; a lost probe or answer then cost T3's 400 ms: 15 in 8 s, lan at 5 % loss).
MAX_PROBES = 3
#: The longest a receiver may delay its SACK (RFC 9260 section 6.2).
DELAYED_SACK_MAX = 0.2

class Sender:
    def __init__(self, initial_tsn: int, *, max_packet: int, header: int) -> None:
        self.max_packet = max_packet
        self.mtu_payload = max_packet - header  # room for chunks in a packet
        self.max_fragment = (self.mtu_payload - DATA_HEADER_LENGTH) // 4 * 4
        self.next_tsn = initial_tsn
        self.cumulative_acked = tsn_add(initial_tsn, -1)
        self._cum = self.cumulative_acked  # the same, unwrapped (see .ranges)
        #: TSNs above it acknowledged by gap blocks, unwrapped.
        self._gap_acked = RangeSet()
        self.advanced_peer_ack = self.cumulative_acked
        self.outbound: deque[OutChunk] = deque()
        self.inflight: deque[OutChunk] = deque()
        self.retransmits: deque[OutChunk] = deque()
        self.flight_size = 0
        self.peer_rwnd = 1 << 20
        self.congestion = Congestion(max_packet)
        self.t3_deadline: float | None = None
        #: When to send a tail loss probe (RFC 8985 section 7): see :meth:`on_probe`.
        self.probe_deadline: float | None = None
        self._probes_in_episode = 0
        self.probes = 0
        #: Consecutive T3 expiries without progress (RFC 9260 section 8.1).
        self.error_count = 0
        self.forward_tsn_due = False
        self._ssn: dict[int, int] = {}
        #: Bytes queued per stream and never sent (WebRTC's bufferedAmount).
        self.buffered: dict[int, int] = {}
        self.total_buffered = 0
        self.packets_sent = 0
        self.retransmitted = 0
        self.t3_expiries = 0
        #: Set the I bit on the last chunk before the queue runs dry (RFC 7053).
        self.immediate_when_idle = True

    # The congestion state, as the rest of the association reads (and tests set) it.
    cwnd = property(lambda self: self.congestion.cwnd, lambda self, v: setattr(self.congestion, "cwnd", v))
    rto = property(lambda self: self.congestion.rto)
    srtt = property(lambda self: self.congestion.srtt)

    # -- queueing -----------------------------------------------------------------

    def queue(self, stream: int, ppid: int, data: bytes, *, ordered: bool, max_retransmits: int | None,
              expires: float | None) -> None:
        """Split a message into chunks with TSNs (and, if ordered, a stream sequence number)."""
        message = OutMessage(stream, max_retransmits, expires)
        if ordered:
            ssn = self._ssn.get(stream, 0)
            self._ssn[stream] = (ssn + 1) & 0xFFFF
            base = 0
        else:
            ssn, base = 0, FLAG_UNORDERED
        size, step = len(data), self.max_fragment
        last = max(size - 1, 0) // step
        tsn = self.next_tsn
        for index in range(last + 1):
            flags = base | (FLAG_BEGIN if index == 0 else 0) | (FLAG_END if index == last else 0)
            payload = data[index * step:(index + 1) * step] if last else data
            self.outbound.append(OutChunk(tsn, stream, ssn, ppid, flags, payload, message))
            tsn = (tsn + 1) & 0xFFFFFFFF
        message.unsent = last + 1
        self.next_tsn = tsn
        self.buffered[stream] = self.buffered.get(stream, 0) + size
        self.total_buffered += size

    def reset_ssn(self, streams: Iterable[int]) -> None:
        """Our outgoing streams were reset (RFC 6525 section 5.2.2): sequence numbers start again."""
        for stream in streams:
            self._ssn.pop(stream, None)

    @property
    def last_assigned_tsn(self) -> int:
        return tsn_add(self.next_tsn, -1)

    @property
    def idle(self) -> bool:
        """Nothing queued, in flight, or waiting for a FORWARD-TSN."""
        return not self.outbound and not self.inflight and not self.forward_tsn_due

    # -- transmitting ---------------------------------------------------------------

    def transmit(self, now: float, first: bytes = b"") -> list[bytes]:
        """Chunk bytes for each packet that may go now; ``first`` (a SACK) leads the first packet."""
        packets: list[bytes] = []
        room = self.mtu_payload - len(first)
        current = [first] if first else []
        if self.retransmits:
            current, room = self._retransmit(now, packets, current, room)
        outbound = self.outbound
        while outbound and self.flight_size < self.cwnd:
            chunk = outbound[0]
            if chunk.message.abandoned or self._expired(chunk, now):
                outbound.popleft()
                self._abandon(chunk.message, now)
                continue
            if chunk.size > self.peer_rwnd and self.flight_size:
                break  # the peer's window is full; with nothing in flight, probe (RFC 9260 6.1 rule A)
            if chunk.size > room:
                packets.append(b"".join(current))
                current, room = [], self.mtu_payload
            outbound.popleft()
            flags = chunk.flags
            if not outbound and self.immediate_when_idle:
                # The last chunk before we go idle: ask for a SACK at once
                # (RFC 7053), so the delayed SACK costs nothing when we stop.
                flags |= FLAG_IMMEDIATE
            chunk.sends = 1
            chunk.sent_at = now
            self._sent_first(chunk)
            self.inflight.append(chunk)
            self.flight_size += chunk.size
            self.peer_rwnd = max(0, self.peer_rwnd - chunk.size)
            current.append(data_chunk(flags, chunk.tsn, chunk.stream, chunk.ssn, chunk.ppid, chunk.payload))
            room -= chunk.size
        if current:
            packets.append(b"".join(current))
        if self.inflight and self.t3_deadline is None:
            self.t3_deadline = now + self.rto
        if packets:
            self._arm_probe(now)
        self.packets_sent += len(packets)
        return packets

    def _retransmit(self, now: float, packets: list[bytes], current: list[bytes],
                    room: int) -> tuple[list[bytes], int]:
        # RFC 9260 7.2.4 (3): a fast retransmission may exceed cwnd by one packet.
        allowance = self.mtu_payload
        while self.retransmits:
            chunk = self.retransmits[0]
            if chunk.acked or not chunk.retransmit:
                self.retransmits.popleft()
                continue
            if self.flight_size >= self.cwnd and allowance <= 0:
                break
            message = chunk.message
            limit = message.max_retransmits
            if message.abandoned or (limit is not None and chunk.sends > limit) or self._expired(chunk, now):
                self.retransmits.popleft()
                self._abandon(message, now)
                continue
            self.retransmits.popleft()
            if chunk.size > room:
                packets.append(b"".join(current))
                current, room = [], self.mtu_payload
            chunk.retransmit = False
            chunk.sends += 1
            chunk.misses = 0
            chunk.resent_below = self._cum + len(self.inflight)
            chunk.sent_at = now
            self.flight_size += chunk.size
            allowance -= chunk.size
            self.retransmitted += 1
            current.append(data_chunk(chunk.flags, chunk.tsn, chunk.stream, chunk.ssn, chunk.ppid, chunk.payload))
            room -= chunk.size
        if self.t3_deadline is None:
            self.t3_deadline = now + self.rto
        return current, room

    def _sent_first(self, chunk: OutChunk) -> None:
        message = chunk.message
        message.unsent -= 1
        sent = len(chunk.payload)
        self.buffered[chunk.stream] -= sent
        self.total_buffered -= sent

    @staticmethod
    def _expired(chunk: OutChunk, now: float) -> bool:
        expires = chunk.message.expires
        return expires is not None and now >= expires

    # -- partial reliability (RFC 3758) -------------------------------------------------

    def _abandon(self, message: OutMessage, now: float) -> None:
        """Abandon every chunk of ``message`` (RFC 3758 section 3.5 A1-A3).

        Its chunks never sent are at the head of ``outbound`` (a message's
        chunks have consecutive TSNs and go out in order): they move into the
        flight as if sent and acknowledged, so that the advanced peer ack point
        can pass them and FORWARD-TSN covers their TSNs.
        """
        message.abandoned = True
        for chunk in self.inflight:
            if chunk.message is message and not chunk.acked:
                if not chunk.retransmit:
                    self.flight_size -= chunk.size
                chunk.acked = True  # no longer outstanding
                chunk.retransmit = False
        outbound = self.outbound
        while outbound and outbound[0].message is message:
            chunk = outbound.popleft()
            self._sent_first(chunk)
            chunk.acked = True
            self.inflight.append(chunk)
        self._update_advanced_peer_ack()

    def _update_advanced_peer_ack(self) -> None:
        """Move the advanced peer ack point over abandoned chunks (RFC 3758 section 3.5 C1-C2)."""
        point = self.advanced_peer_ack
        if tsn_diff(point, self.cumulative_acked) < 0:
            point = self.cumulative_acked
        for chunk in self.inflight:
            if tsn_diff(chunk.tsn, point) <= 0:
                continue
            if not chunk.message.abandoned:
                break
            point = chunk.tsn
        if point != self.advanced_peer_ack:
            self.advanced_peer_ack = point
        if tsn_diff(point, self.cumulative_acked) > 0:
            self.forward_tsn_due = True

    def forward_tsn(self) -> ForwardTsnChunk | None:
        """The FORWARD-TSN to send, if the advanced peer ack point is ahead of the peer (RFC 3758 3.5 C3)."""
        self.forward_tsn_due = False
        if tsn_diff(self.advanced_peer_ack, self.cumulative_acked) <= 0:
            return None
        streams: dict[int, int] = {}
        for chunk in self.inflight:
            if tsn_diff(chunk.tsn, self.advanced_peer_ack) > 0:
                break
            if not chunk.flags & FLAG_UNORDERED:
                streams[chunk.stream] = chunk.ssn
        return ForwardTsnChunk(self.advanced_peer_ack, sorted(streams.items()))

    # -- acknowledgements ----------------------------------------------------------

    def on_sack(self, sack: SackChunk, now: float) -> bool:
        """Process a SACK; True if it acknowledged something new."""
        cumulative = sack.cumulative_tsn
        ahead = tsn_diff(cumulative, self.cumulative_acked)
        if ahead < 0:
            return False  # an older SACK, arrived late (RFC 9260 section 6.2.1 D i)
        if tsn_diff(cumulative, self.next_tsn) >= 0:
            return False  # acknowledges TSNs never sent: ignore it
        flight_before = self.flight_size
        acked_bytes = 0
        rtt_sample: float | None = None
        inflight = self.inflight
        # 1. The cumulative ack (chunks leave the flight).
        while inflight and tsn_diff(inflight[0].tsn, cumulative) <= 0:
            chunk = inflight.popleft()
            if not chunk.acked:
                acked_bytes += chunk.size
                if not chunk.retransmit:
                    self.flight_size -= chunk.size
                chunk.acked = True
                if chunk.sends == 1 and rtt_sample is None:
                    rtt_sample = now - chunk.sent_at
        cum = unwrap(cumulative, self._cum)
        if ahead > 0:
            self.cumulative_acked = cumulative
            self._cum = cum
            self._gap_acked.discard_below(cum + 1)
            if tsn_diff(self.advanced_peer_ack, cumulative) < 0:
                self.advanced_peer_ack = cumulative
            self.error_count = 0
        # 2. Gap blocks (offsets from the cumulative TSN). The flight starts at
        # cumulative + 1 and is contiguous, so a TSN's index is its offset - 1.
        # Only what no earlier SACK acknowledged is visited.
        highest_newly_acked = -1
        base = cum + 1
        sent = len(inflight)
        for start, end in sack.gaps:
            end = min(end, sent)  # never what was not sent
            if start == 0 or start > end:
                continue
            for lo, hi in self._gap_acked.add(cum + start, cum + end):
                for index in range(lo - base, hi - base + 1):
                    chunk = inflight[index]
                    if not chunk.acked:
                        acked_bytes += chunk.size
                        if not chunk.retransmit:
                            self.flight_size -= chunk.size
                        chunk.acked = True
                        chunk.retransmit = False
                        if chunk.sends == 1 and rtt_sample is None:
                            rtt_sample = now - chunk.sent_at
                highest_newly_acked = max(highest_newly_acked, hi - base)
        # 3. Miss indications, only for the holes below the highest TSN this
        # SACK newly acknowledged (RFC 9260 section 7.2.4, the HTNA rule). A
        # chunk already fast-retransmitted counts misses again only from TSNs
        # sent after its copy: that copy was lost too (lost-retransmission
        # detection, as Linux's TCP and RACK do), and waiting for T3 (400 ms
        # at least, the window collapsed) would stall the association.
        fast = False
        srtt = self.congestion.srtt
        reorder_window = srtt * 1.25 if srtt is not None else None
        if highest_newly_acked > 0:
            newest = base + highest_newly_acked
            for lo, hi in self._gap_acked.holes(base, newest - 1):
                for index in range(lo - base, hi - base + 1):
                    chunk = inflight[index]
                    if chunk.acked or chunk.retransmit:
                        continue
                    if chunk.fast_retransmitted and newest <= chunk.resent_below:
                        continue
                    chunk.misses += 1
                    # Three misses, or (RACK, RFC 8985) a later chunk acknowledged a
                    # quarter RTT after this one should have been: with a small
                    # window three misses may never come, and T3 would.
                    if chunk.misses >= 3 or (reorder_window is not None and now - chunk.sent_at > reorder_window):
                        chunk.misses = 0
                        chunk.retransmit = True
                        chunk.fast_retransmitted = True
                        self.flight_size -= chunk.size
                        self.retransmits.append(chunk)
                        fast = True
        # 4. Congestion control (.congestion).
        if rtt_sample is not None:
            self.congestion.sample(rtt_sample)
        # The highest TSN sent (TSNs are given when messages are queued: next_tsn is past
        # everything queued, which would keep fast recovery going until the queue drained).
        highest_sent = inflight[-1].tsn if inflight else cumulative
        self.congestion.acked(acked_bytes, flight_before=flight_before, cumulative=cumulative, advanced=ahead > 0,
                              fast=fast, highest_outstanding=highest_sent)
        # 5. The peer's window (section 6.2.1), and the T3 timer (section 6.3.2).
        self.peer_rwnd = max(0, sack.a_rwnd - self.flight_size)
        if self.flight_size == 0 and not self.retransmits:
            self.t3_deadline = None
        elif ahead > 0:
            self.t3_deadline = now + self.rto
        if acked_bytes:
            self._probes_in_episode = 0
            self._arm_probe(now)
        self._update_advanced_peer_ack()
        return acked_bytes > 0

    # -- timers: T3-rtx and the tail loss probe -------------------------------------------

    @property
    def deadline(self) -> float | None:
        deadlines = [d for d in (self.t3_deadline, self.probe_deadline) if d is not None]
        return min(deadlines) if deadlines else None

    def on_timer(self, now: float) -> None:
        if self.t3_deadline is not None and now >= self.t3_deadline:
            self.on_t3(now)
        elif self.probe_deadline is not None and now >= self.probe_deadline:
            self.on_probe(now)

    def _arm_probe(self, now: float) -> None:
        srtt = self.congestion.srtt
        if self._probes_in_episode >= MAX_PROBES or srtt is None or self.flight_size == 0:
            self.probe_deadline = None
            return
        if self.flight_size <= self.mtu_payload:
            # One packet out: a receiver may hold its SACK for up to 200 ms (RFC 8985 7.2).
            wait = max(2 * srtt, 1.5 * srtt + DELAYED_SACK_MAX)
        else:
            wait = max(2 * srtt, PROBE_MIN)
        self.probe_deadline = now + wait * 2 ** self._probes_in_episode

    def on_probe(self, now: float) -> None:
        """Nothing acknowledged for two RTTs with data in flight: send the newest chunk again.

        A lone SACK for a whole window that is lost (icepeer's receivers SACK
        once per read burst) or a lost tail leaves the sender waiting for T3:
        400 ms at least, then the window collapsed. The probe makes the
        receiver SACK at once (a duplicate TSN, RFC 9260 section 6.2), and
        the loss is then repaired by fast retransmission, the window halved at
        most (RFC 8985 section 7, tail loss probe). Up to :data:`MAX_PROBES`
        per episode, each after twice the wait of the one before: a lost probe
        or a lost answer to it does not leave the sender to T3.
        """
        self.probe_deadline = None
        self._probes_in_episode += 1
        for chunk in reversed(self.inflight):
            if not chunk.acked and not chunk.retransmit:
                chunk.retransmit = True
                self.flight_size -= chunk.size
                self.retransmits.appendleft(chunk)
                self.probes += 1
                return

    # -- the T3-rtx timer ---------------------------------------------------------------

    def on_t3(self, now: float) -> None:
        """T3-rtx expired (RFC 9260 section 6.3.3): everything outstanding goes again, window collapsed."""
        self.t3_deadline = self.probe_deadline = None
        if not self.inflight:
            return
        self.error_count += 1
        self.t3_expiries += 1
        self.congestion.timeout()
        self.retransmits.clear()
        for chunk in self.inflight:
            if not chunk.acked:
                if not chunk.retransmit:
                    self.flight_size -= chunk.size
                chunk.retransmit = True
                chunk.fast_retransmitted = False
                chunk.misses = 0
                self.retransmits.append(chunk)
        self.t3_deadline = now + self.rto
