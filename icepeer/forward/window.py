"""Credit-based flow control for one stream, without I/O.

SCTP's receive window does not help here: aiortc hands every message to the
channel as soon as it is reassembled, and :class:`icepeer.Channel` queues it
without a limit. So each side tells the other how much it may send, the way
SSH channels (RFC 4254 section 5.2) and HTTP/2 (RFC 9113 section 5.2) do:

- each side starts with the peer's announced window as *send credit*;
- sending DATA spends credit; with none left, the sender stops reading its
  TCP socket (the kernel then pushes back on the application);
- the receiver counts what it has written to its TCP socket and, once a
  quarter of the window is consumed, returns it in a WINDOW frame.

So at most one window of a stream's bytes is ever in flight or buffered on
the receiving side, whatever the applications do.
"""

from __future__ import annotations

from .errors import ProtocolViolation

__all__ = ["DEFAULT_WINDOW", "ReceiveWindow", "SendCredit"]

#: Bytes a side accepts per stream before the peer must wait for a WINDOW frame.
DEFAULT_WINDOW = 1024 * 1024


class SendCredit:
    """How many bytes this side may still send on a stream."""

    def __init__(self, initial: int) -> None:
        self.available = initial
        self.limit = initial

    def take(self, wanted: int) -> int:
        """Spend up to ``wanted`` bytes of credit; how many were granted (maybe 0)."""
        granted = min(wanted, self.available)
        self.available -= granted
        return granted

    def grant(self, increment: int) -> None:
        """The peer consumed ``increment`` more bytes (a WINDOW frame)."""
        if self.available + increment > self.limit:
            raise ProtocolViolation(
                f"the peer returned more window than was spent ({self.available} + {increment} "
                f"> {self.limit})")
        self.available += increment


class ReceiveWindow:
    """What a receiver holds of a stream, and when to give credit back."""

    def __init__(self, size: int, *, threshold: int | None = None) -> None:
        self.size = size
        self.threshold = max(1, size // 4 if threshold is None else threshold)
        self.buffered = 0  # received, not yet written out
        self.unreturned = 0  # written out, credit not yet returned
        self.peak = 0  # largest ``buffered`` seen (for tests and reports)

    @property
    def outstanding(self) -> int:
        """Bytes the sender has spent credit on that have not been returned yet."""
        return self.buffered + self.unreturned

    def received(self, size: int) -> None:
        """A DATA frame of ``size`` bytes arrived."""
        if self.outstanding + size > self.size:
            raise ProtocolViolation(
                f"the peer sent beyond its window ({self.outstanding} + {size} > {self.size})")
        self.buffered += size
        self.peak = max(self.peak, self.buffered)

    def consumed(self, size: int) -> int:
        """``size`` buffered bytes were written out; the credit to return now, or 0."""
        if size > self.buffered:
            raise ValueError("consumed more than was buffered")
        self.buffered -= size
        self.unreturned += size
        if self.unreturned < self.threshold:
            return 0
        increment, self.unreturned = self.unreturned, 0
        return increment
