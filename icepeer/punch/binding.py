"""STUN Binding transactions without I/O (RFC 8489), to learn the public address.

aioice's :mod:`aioice.stun` is used as a message codec only. A
:class:`BindingTransaction` says what to send and when; the caller feeds it
the responses and the clock.
"""

from __future__ import annotations

import logging
import struct

from aioice import stun as codec

__all__ = ["BindingTransaction", "looks_like_stun", "parse_stun"]

logger = logging.getLogger(__name__)

Address = tuple[str, int]


def looks_like_stun(data: bytes) -> bool:
    """RFC 8489 section 5: the two top bits are zero and the magic cookie follows."""
    return len(data) >= codec.HEADER_LENGTH and data[0] < 4 and \
        int.from_bytes(data[4:8], "big") == codec.COOKIE


def parse_stun(data: bytes) -> codec.Message | None:
    """Decode a STUN message; None for anything malformed.

    aioice 0.13's ``stun.parse_message`` raises ``struct.error``, not
    ``ValueError``, on some malformed attributes (a PRIORITY, LIFETIME,
    ICE-CONTROLLING or CHANNEL-NUMBER of the wrong length), and other errors
    on others: catch them all here.
    """
    if not looks_like_stun(data):
        return None
    try:
        return codec.parse_message(data)
    except (ValueError, struct.error, IndexError, KeyError, TypeError):
        return None


class BindingTransaction:
    """One Binding request to one server, retransmitted as RFC 8489 section 6.2.1 says.

    Sends at 0, RTO, 3 RTO, 7 RTO, ... (the interval doubles) until a response
    or ``timeout`` seconds; at most ``max_sends`` requests (Rc, default 7).
    """

    def __init__(self, server: Address, now: float, *, rto: float = 0.5,
                 timeout: float = 3.0, max_sends: int = 7) -> None:
        self.server = server
        message = codec.Message(codec.Method.BINDING, codec.Class.REQUEST)
        # FINGERPRINT helps the server tell STUN from other traffic (RFC 8489 section 14.7).
        message.add_fingerprint()
        self.transaction_id = message.transaction_id
        self.request = bytes(message)
        self.mapped: Address | None = None
        self.error: str | None = None
        self.sends = 0
        self._max_sends = max_sends
        self._interval = rto
        self._next_send: float | None = now
        self._deadline = now + timeout
        self._timeout = timeout

    @property
    def done(self) -> bool:
        return self.mapped is not None or self.error is not None

    def next_deadline(self) -> float | None:
        if self.done:
            return None
        if self._next_send is None:
            return self._deadline
        return min(self._next_send, self._deadline)

    def poll(self, now: float) -> list[tuple[bytes, Address]]:
        """Advance to ``now``: the requests due, or none; gives up at the deadline."""
        if self.done:
            return []
        if now >= self._deadline:
            self.error = f"no answer from STUN server {self.server[0]}:{self.server[1]} " \
                f"within {self._timeout:g} s"
            logger.info("%s", self.error)
            return []
        if self._next_send is not None and now >= self._next_send:
            self.sends += 1
            if self.sends >= self._max_sends:
                self._next_send = None
            else:
                self._next_send = now + self._interval
                self._interval *= 2
            return [(self.request, self.server)]
        return []

    def matches(self, message: codec.Message) -> bool:
        return message.transaction_id == self.transaction_id and \
            message.message_method == codec.Method.BINDING and \
            message.message_class in (codec.Class.RESPONSE, codec.Class.ERROR)

    def response_received(self, message: codec.Message, addr: Address) -> bool:
        """Take a response; True if it was this transaction's (RFC 8489 section 6.3)."""
        if self.done or not self.matches(message):
            return False
        if message.message_class == codec.Class.ERROR:
            code = message.attributes.get("ERROR-CODE")
            self.error = f"STUN server {addr[0]}:{addr[1]} answered error {code}"
            return True
        # XOR-MAPPED-ADDRESS, or MAPPED-ADDRESS from an RFC 3489 server (section 14.1).
        mapped = message.attributes.get("XOR-MAPPED-ADDRESS") or \
            message.attributes.get("MAPPED-ADDRESS")
        if not (isinstance(mapped, tuple) and len(mapped) == 2):
            self.error = f"STUN server {addr[0]}:{addr[1]} sent no mapped address"
            return True
        self.mapped = (str(mapped[0]), int(mapped[1]))
        logger.debug("STUN %s:%s says we are %s:%s", addr[0], addr[1], *self.mapped)
        return True
