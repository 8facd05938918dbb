"""Stream reconfiguration (RFC 6525): resetting streams, how a data channel closes. No I/O.

Ours: one Outgoing SSN Reset Request at a time (section 5.1.2), carrying
the last TSN we assigned, resent every RTO until the peer answers; the
streams queued meanwhile go in the next one. The peer's: performed once
every TSN up to its "last assigned TSN" has arrived (section 5.2.2),
answered "in progress" until then and performed as soon as the data is in.
Requests for anything else (incoming resets, added streams) are refused.
Request sequence numbers start at the initial TSN (section 4.1).
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable

from . import chunks as c
from .serial import tsn_add, tsn_diff

__all__ = ["Reconfig"]

logger = logging.getLogger(__name__)

#: Results (section 4.4).
RESULT_NOTHING_TO_DO, RESULT_PERFORMED, RESULT_DENIED, RESULT_IN_PROGRESS = 0, 1, 2, 6


class Reconfig:
    def __init__(self, local_initial_tsn: int, *, send: Callable[[bytes], None]) -> None:
        #: Sends the value of a RE-CONFIG chunk.
        self._send = send
        self._queue: list[int] = []
        #: (sequence, streams, chunk body, when to resend)
        self.request: tuple[int, list[int], bytes, float] | None = None
        self._seq = tsn_add(local_initial_tsn, -1)
        self._peer_seq: int | None = None
        self._deferred: list[tuple[int, int, list[int]]] = []

    def peer_initial_tsn(self, tsn: int) -> None:
        self._peer_seq = tsn_add(tsn, -1)

    @property
    def busy(self) -> bool:
        return self.request is not None or bool(self._queue)

    def reset(self, streams: list[int]) -> None:
        """Reset our outgoing ``streams`` with the next request."""
        self._queue.extend(s for s in streams if s not in self._queue)

    # -- ours ----------------------------------------------------------------------------

    def send_due(self, now: float, last_assigned_tsn: int, rto: float) -> None:
        request = self.request
        if request is None and self._queue:
            streams = sorted(set(self._queue))
            self._queue.clear()
            self._seq = tsn_add(self._seq, 1)
            value = struct.pack("!LLL", self._seq, self._peer_seq or 0, last_assigned_tsn)
            value += b"".join(struct.pack("!H", s) for s in streams)
            request = (self._seq, streams, c.encode_params([(c.PARAM_OUTGOING_RESET, value)]), 0.0)
        if request is not None and now >= request[3]:
            self._send(request[2])
            self.request = (request[0], request[1], request[2], now + rto)

    @property
    def deadline(self) -> float | None:
        return self.request[3] if self.request is not None else None

    # -- the peer's ------------------------------------------------------------------------

    def receive(self, body: bytes, cumulative_tsn: int, *, done: Callable[[list[int]], None],
                peer_reset: Callable[[list[int]], None]) -> None:
        """A RE-CONFIG chunk: ``done`` for our resets performed, ``peer_reset`` for the peer's."""
        for kind, value in c.decode_params(body):
            if kind == c.PARAM_OUTGOING_RESET and len(value) >= 12:
                seq, _, last_tsn = struct.unpack_from("!LLL", value)
                streams = [struct.unpack_from("!H", value, p)[0] for p in range(12, len(value) - 1, 2)]
                self._peer_request(seq, last_tsn, streams, cumulative_tsn, peer_reset)
            elif kind == c.PARAM_RECONFIG_RESPONSE and len(value) >= 8:
                seq, result = struct.unpack_from("!LL", value)
                request = self.request
                if request is None or request[0] != seq:
                    continue
                if result in (RESULT_PERFORMED, RESULT_NOTHING_TO_DO):
                    self.request = None
                    done(request[1])
                elif result == RESULT_IN_PROGRESS:
                    self.request = (seq, request[1], request[2], 0.0)  # ask again at the next timer
                else:
                    logger.info("the peer refused to reset streams %s (result %d)", request[1], result)
                    self.request = None
            elif kind in (c.PARAM_INCOMING_RESET, c.PARAM_ADD_OUTGOING_STREAMS) and len(value) >= 4:
                self._respond(struct.unpack_from("!L", value)[0], RESULT_DENIED)

    def data_arrived(self, cumulative_tsn: int, peer_reset: Callable[[list[int]], None]) -> None:
        """More DATA came in: perform the peer's deferred resets whose data is now all here."""
        if self._deferred:
            deferred, self._deferred = self._deferred, []
            for seq, last_tsn, streams in deferred:
                self._peer_request(seq, last_tsn, streams, cumulative_tsn, peer_reset)

    def _peer_request(self, seq: int, last_tsn: int, streams: list[int], cumulative_tsn: int,
                      peer_reset: Callable[[list[int]], None]) -> None:
        if self._peer_seq is None:
            return
        if seq != tsn_add(self._peer_seq, 1):
            # A retransmission of the last request gets the same answer; others are refused.
            self._respond(seq, RESULT_PERFORMED if seq == self._peer_seq else RESULT_DENIED)
            return
        if tsn_diff(last_tsn, cumulative_tsn) > 0:
            # Data sent before the reset is still on its way (section 5.2.2).
            if all(d[0] != seq for d in self._deferred):
                self._deferred.append((seq, last_tsn, streams))
            self._respond(seq, RESULT_IN_PROGRESS)
            return
        self._peer_seq = seq
        self._respond(seq, RESULT_PERFORMED)
        peer_reset(streams)

    def _respond(self, seq: int, result: int) -> None:
        self._send(c.encode_params([(c.PARAM_RECONFIG_RESPONSE, struct.pack("!LL", seq, result))]))
