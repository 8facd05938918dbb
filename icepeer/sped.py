"""SPED: the DTLS handshake inside the ICE connectivity checks (draft-hancke-webrtc-sped-00). No I/O.

ICE and DTLS normally run one after the other: a round trip of checks,
then two of DTLS 1.2. With SPED each STUN Binding request and response of
the checks carries one DTLS handshake datagram (META-DTLS-IN-STUN) and the
CRC-32s of those received (META-DTLS-IN-STUN-ACKNOWLEDGEMENT), so the
ClientHello travels with the first check and the handshake is over about
when ICE is: one round trip less, and a lost flight is resent with the next
check rather than after DTLS's own timer (section 3.4).

:class:`Sped` is one side's state (the draft's section 3.4): the datagrams
of our current flight not yet acknowledged ("pending"), the CRC-32s of the
peer's that arrived ("received"), and the closing handshake that ends the
embedding. The agent asks :meth:`Sped.embed` for the attributes of each
message it sends and gives :meth:`Sped.receive` those of each authenticated
message it gets. icepeer uses it only when both descriptions have the
``sped`` ICE option (section 6): a peer without it sees unknown
comprehension-optional attributes and ignores them.

Attribute types are libwebrtc's (the draft's are provisional): 0xC070 and
0xC071. An acknowledgement holds at most four CRC-32s (section 7.3).
"""

from __future__ import annotations

import struct
import zlib
from collections import deque

__all__ = ["Sped", "DTLS_IN_STUN", "DTLS_IN_STUN_ACK", "ATTRIBUTE_TYPES", "MAX_ACKS"]

DTLS_IN_STUN = "META-DTLS-IN-STUN"
DTLS_IN_STUN_ACK = "META-DTLS-IN-STUN-ACKNOWLEDGEMENT"
ATTRIBUTE_TYPES = {DTLS_IN_STUN: 0xC070, DTLS_IN_STUN_ACK: 0xC071}
MAX_ACKS = 4
#: CRC-32s of received datagrams remembered (a handshake has a handful).
MAX_RECEIVED = 64


def crc32(datagram: bytes) -> int:
    return zlib.crc32(datagram) & 0xFFFFFFFF


class Sped:
    """One side's embedding of its DTLS handshake in STUN."""

    def __init__(self, *, dtls_server: bool) -> None:
        self.dtls_server = dtls_server
        self.pending: list[bytes] = []
        self._next = 0
        self.received: deque[int] = deque(maxlen=MAX_RECEIVED)
        self.handshake_done = False
        #: The peer sent a message without a DTLS datagram after our handshake ended: it has nothing more.
        self.peer_done = False
        self.embedded = 0
        self.received_count = 0

    @property
    def active(self) -> bool:
        """Whether our messages still carry the attributes (until the closing handshake ends)."""
        return not (self.handshake_done and not self.pending and self.peer_done)

    # -- DTLS side -----------------------------------------------------------------------

    def flight(self, datagrams: list[bytes]) -> None:
        """DTLS sends a new flight, or resends one (handshake records only, never application data):
        it replaces what was pending (section 3.4.2). A DTLS 1.2 server's last flight comes after
        :meth:`dtls_connected` and stays pending until acknowledged: the client may not have it."""
        if datagrams and not (self.handshake_done and not self.dtls_server):
            self.pending = list(datagrams)
            self._next = 0

    def dtls_connected(self) -> None:
        """The handshake is over; a DTLS 1.2 client has nothing more to send (section 3.4.3)."""
        self.handshake_done = True
        if not self.dtls_server:
            self.pending = []

    # -- STUN side -----------------------------------------------------------------------

    def embed(self) -> dict[str, bytes]:
        """The attributes for the next STUN message we send: empty once the embedding is over."""
        if not self.active:
            return {}
        attributes = {DTLS_IN_STUN_ACK: b"".join(struct.pack("!L", c) for c in list(self.received)[-MAX_ACKS:])}
        if self.pending:
            datagram = self.pending[self._next % len(self.pending)]
            self._next += 1
            attributes[DTLS_IN_STUN] = datagram
            self.embedded += 1
        elif not self.handshake_done:
            attributes[DTLS_IN_STUN] = b""  # "nothing yet": says we speak SPED
        return attributes

    def receive(self, attributes: dict[str, object]) -> bytes | None:
        """The attributes of an authenticated STUN message; the DTLS datagram to process, if new."""
        ack = attributes.get(DTLS_IN_STUN_ACK)
        if isinstance(ack, bytes) and len(ack) % 4 == 0 and len(ack) <= 4 * MAX_ACKS:
            acked = set(struct.unpack(f"!{len(ack) // 4}L", ack))
            if acked:
                self.pending = [d for d in self.pending if crc32(d) not in acked]
        data = attributes.get(DTLS_IN_STUN)
        if self.handshake_done and not data:
            self.peer_done = True
        if not isinstance(data, bytes) or not data or not 19 < data[0] < 64:
            return None  # empty, or not DTLS (RFC 9443 section 3): discarded (section 7.2)
        checksum = crc32(data)
        if checksum in self.received:
            return None
        self.received.append(checksum)
        self.received_count += 1
        return data

    def answered(self, request_attributes: dict[str, object]) -> None:
        """Our request carrying a datagram got a success response: an implicit acknowledgement."""
        data = request_attributes.get(DTLS_IN_STUN)
        if isinstance(data, bytes) and data:
            self.pending = [d for d in self.pending if d != data]
