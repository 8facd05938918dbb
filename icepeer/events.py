"""What :meth:`icepeer.Peer.events` yields: path changes and, last, :class:`Closed`."""

from __future__ import annotations

from dataclasses import dataclass

from .report import Endpoint

__all__ = ["PeerEvent", "PathLost", "PathChanged", "Closed"]


@dataclass(frozen=True)
class PeerEvent:
    """Base class of what :meth:`Peer.events` yields."""


@dataclass(frozen=True)
class PathLost(PeerEvent):
    """The selected path stopped working (relay allocation lost, silence); ICE restarts."""

    reason: str


@dataclass(frozen=True)
class PathChanged(PeerEvent):
    """ICE selected a new path.

    ``reason`` is ``"restart"`` after an ICE restart (``elapsed_ms`` since the
    restart began) or ``"direct"`` when a direct pair replaced the relayed
    one selected first (``elapsed_ms`` since ICE connected).
    """

    local: Endpoint
    remote: Endpoint
    elapsed_ms: float
    reason: str = "restart"


@dataclass(frozen=True)
class Closed(PeerEvent):
    """The connection is over: ``graceful`` if the peer closed it on purpose."""

    graceful: bool
    reason: str
