"""What a sender keeps of each message and each chunk until the peer acknowledges it. No I/O."""

from __future__ import annotations

from .chunks import DATA_HEADER_LENGTH

__all__ = ["OutMessage", "OutChunk"]


class OutMessage:
    """One message being sent, for partial reliability and bufferedAmount."""

    __slots__ = ("abandoned", "expires", "max_retransmits", "stream", "unsent")

    def __init__(self, stream: int, max_retransmits: int | None, expires: float | None) -> None:
        self.stream = stream
        self.max_retransmits = max_retransmits
        self.expires = expires
        self.abandoned = False
        #: Chunks of this message never sent yet.
        self.unsent = 0


class OutChunk:
    __slots__ = (
        "acked",
        "fast_retransmitted",
        "flags",
        "message",
        "misses",
        "payload",
        "resent_below",
        "ppid",
        "retransmit",
        "sends",
        "sent_at",
        "size",
        "ssn",
        "stream",
        "tsn",
    )

    def __init__(self, tsn: int, stream: int, ssn: int, ppid: int, flags: int, payload: bytes,
                 message: OutMessage) -> None:
        self.tsn = tsn
        self.stream = stream
        self.ssn = ssn
        self.ppid = ppid
        self.flags = flags
        self.payload = payload
        self.message = message
        self.sent_at = 0.0
        self.sends = 0
        self.acked = False
        self.retransmit = False
        self.misses = 0
        #: Fast-retransmitted already: it is sent again only if the TSNs sent after that copy are
        #: acknowledged while it still is not (the copy was lost too), or by the T3 timer.
        self.fast_retransmitted = False
        #: The highest TSN (unwrapped) sent when this chunk was last retransmitted.
        self.resent_below = 0
        #: Bytes on the wire, for the windows (RFC 9260 counts user data; padding and header too here).
        self.size = DATA_HEADER_LENGTH + len(payload) + (-len(payload) % 4)
