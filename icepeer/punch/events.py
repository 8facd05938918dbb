"""What the puncher's state machine tells its caller (see :class:`~.session.PunchSession`)."""

from __future__ import annotations

from dataclasses import dataclass

from .candidates import Candidate

__all__ = ["Closed", "Connected", "DatagramReceived", "Event", "Failed", "Gathered", "MessageReceived"]


@dataclass(frozen=True)
class Gathered:
    """Local candidates are known (STUN answered or gave up): time to send the offer."""

    candidates: tuple[Candidate, ...]
    errors: tuple[str, ...] = ()


@dataclass(frozen=True)
class Connected:
    """A path works both ways: ``local`` is how the peer sees us, ``remote`` where it is."""

    local: Candidate
    remote: Candidate
    rtt: float | None


@dataclass(frozen=True)
class MessageReceived:
    """A whole acknowledged message, in order: ``str`` if it was sent as text."""

    data: str | bytes


@dataclass(frozen=True)
class DatagramReceived:
    """An unreliable datagram: ``str`` if it was sent as text."""

    data: str | bytes


@dataclass(frozen=True)
class Failed:
    """No path before the deadline or the last try."""

    reason: str


@dataclass(frozen=True)
class Closed:
    """The path is gone. ``graceful``: a goodbye with everything we sent delivered."""

    graceful: bool
    reason: str
    by_peer: bool


Event = Gathered | Connected | MessageReceived | DatagramReceived | Failed | Closed
