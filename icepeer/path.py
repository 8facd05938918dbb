"""Path policy: consent, liveness, ICE restart and freeing unused candidates. No I/O.

Events go in with the time (``now``, seconds on any monotonic clock);
actions come out; :meth:`PathPolicy.next_deadline` says when to call
:meth:`PathPolicy.tick`. :mod:`icepeer.monitor` is the asyncio glue.

::

    CONNECTING --connected--> UP --silence / relay lost--> RESTARTING --restart done--> UP
                               |  (signaling gone: STALE)       |  failed: retry every retry_after
                               +------ consent expired ---------+--> LOST

The rules, and where they come from:

- **Consent** (RFC 7675): we may keep sending on the selected pair while
  the peer answers our consent checks, authenticated with its ICE password.
  Only such an answer (:meth:`PathPolicy.consent`) refreshes consent; no other
  packet from the address does, since anyone can send one. Without an answer
  for ``consent_timeout`` seconds consent expires and the peer is lost
  (section 5.1 allows less than its 30 s default: icepeer uses the peer
  timeout, 10 s unless configured).
- **Liveness**: when nothing at all came from the peer on the path (DTLS
  data or authenticated STUN) for ``stale_after`` seconds, the path is
  suspect and ICE restarts (RFC 8445 section 9) while consent still runs: a
  restart that finds a new path in time saves the connection. A lost TURN
  allocation under the selected pair restarts at once.
- **One deadline**: a restart is bounded by consent expiry, not by a timer
  of its own; a restart that fails is retried every ``retry_after`` seconds
  until then. When signaling is gone no restart can happen: the path waits
  (STALE) for answers to come back, or for consent to expire.
- **Re-offers from the peer** cost sockets and TURN allocations: at most
  ``max_remote_restarts`` per ``restart_window`` seconds are accepted.
- **Freeing candidates** (RFC 8445 section 8.3): each side sends only on its
  selected pair, and the selection is fixed until the next restart (see
  :class:`icepeer.compat.aioice.IceConnection`), but for one move: from a
  relayed pair to a direct one, while the agent searches for one after a
  relay won the first checks. So once that search is over, DTLS is up and
  the peer's data has arrived through one of our local candidates, the
  peer's choice is known: every local candidate but ours and the one the
  peer's latest data came through is freed, above all TURN allocations. No
  timer guesses it; until the evidence comes (lost packets only delay it),
  nothing is freed. After a move, the freeing waits ``free_grace`` more
  seconds, so that what the peer sent on the old path before it moved
  still arrives, and the peer, which moves when its own check of the new
  pair succeeds, has moved too.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass

__all__ = [
    "PathConfig",
    "PathPolicy",
    "PathState",
    "RestartIce",
    "ProbeRelay",
    "FreeCandidates",
    "PeerLost",
    "PathAction",
]

#: Seconds between consent checks at most (RFC 7675 section 5.1 randomizes them +-20%).
CONSENT_INTERVAL = 2.5
#: Seconds of silence before the path is suspect, at most.
STALE_AFTER = 4.0


class PathState(enum.Enum):
    CONNECTING = "connecting"
    UP = "up"
    RESTARTING = "restarting"
    STALE = "stale"
    LOST = "lost"


@dataclass(frozen=True)
class RestartIce:
    """Restart ICE (new credentials, new candidates) because of ``reason``."""

    reason: str
    retry: bool = False


@dataclass(frozen=True)
class ProbeRelay:
    """Refresh the selected pair's TURN allocation now, to learn whether it still exists."""


@dataclass(frozen=True)
class FreeCandidates:
    """Close every local candidate of the current ICE generation not in ``keep``."""

    keep: frozenset[Hashable]


@dataclass(frozen=True)
class PeerLost:
    reason: str


PathAction = RestartIce | ProbeRelay | FreeCandidates | PeerLost


@dataclass(frozen=True)
class PathConfig:
    consent_timeout: float = 10.0
    stale_after: float = STALE_AFTER
    consent_interval: float = CONSENT_INTERVAL
    retry_after: float = 2.0
    max_remote_restarts: int = 5
    restart_window: float = 60.0
    free_grace: float = 1.0

    @classmethod
    def for_peer_timeout(cls, peer_timeout: float) -> PathConfig:
        """Timers scaled to ``peer_timeout``: at least four consent checks and a restart fit in it."""
        return cls(
            consent_timeout=peer_timeout,
            stale_after=min(STALE_AFTER, peer_timeout * 0.4),
            consent_interval=min(CONSENT_INTERVAL, peer_timeout / 4),
            retry_after=min(2.0, peer_timeout / 4),
        )


class PathPolicy:
    """The selected path of one peer connection, across ICE restarts."""

    def __init__(self, config: PathConfig | None = None) -> None:
        self.config = config or PathConfig()
        self.state = PathState.CONNECTING
        self.can_restart = True
        self.last_consent = 0.0
        self.last_heard = 0.0
        #: Local candidate of our selected pair, and whether it is a relay.
        self.selected: Hashable | None = None
        self.relayed = False
        #: The local candidate the peer's latest data came through, in this ICE generation.
        self.peer_local: Hashable | None = None
        #: Whether the agent may still move the selection from a relay to a direct pair.
        self.searching = False
        self.moved = False
        self.dtls_up = False
        self.freed = False
        self._free_at: float | None = None
        self.restarts = 0
        self._retry_at: float | None = None
        self._remote_restarts: deque[float] = deque()

    # -- events -------------------------------------------------------------------

    def connected(self, now: float, local: Hashable, *, relayed: bool,
                  searching: bool = False) -> list[PathAction]:
        """ICE selected a pair (first connection, or after a restart) through ``local``.

        ``searching``: a relayed pair won, and the agent goes on checking direct pairs.
        """
        if self.state is PathState.LOST:
            return []
        if self.state is not PathState.CONNECTING:
            self.restarts += 1
        self.state = PathState.UP
        self.last_consent = self.last_heard = now
        self.selected, self.relayed = local, relayed
        self.searching, self.moved = searching, False
        self.peer_local = None
        self.freed = False
        self._retry_at = self._free_at = None
        return self._maybe_free(now)

    def switched(self, now: float, local: Hashable, *, relayed: bool) -> list[PathAction]:
        """The agent moved the selection to a direct pair through ``local``; its check just succeeded."""
        if self.state is PathState.LOST:
            return []
        self.last_consent = self.last_heard = now
        self.selected, self.relayed = local, relayed
        self.searching, self.moved = False, True
        return self._maybe_free(now)

    def search_over(self, now: float) -> list[PathAction]:
        """The agent stopped looking for a direct pair: the selection is fixed from now on."""
        self.searching = False
        return self._maybe_free(now)

    def dtls_connected(self, now: float) -> list[PathAction]:
        self.dtls_up = True
        self.last_heard = max(self.last_heard, now)
        return self._maybe_free(now)

    def peer_data(self, now: float, local: Hashable) -> list[PathAction]:
        """A DTLS datagram from a pair's remote address arrived through ``local``."""
        self.last_heard = now
        self.peer_local = local
        if self.state is PathState.STALE:
            self.state = PathState.UP
        if self.freed or self._free_at is not None:
            return []
        return self._maybe_free(now)

    def heard(self, now: float) -> None:
        """An authenticated STUN request from the peer: alive, but no consent for us."""
        self.last_heard = now

    def consent(self, now: float) -> None:
        """An authenticated answer to our check on the selected pair (RFC 7675 section 5.1)."""
        self.last_consent = self.last_heard = now
        if self.state is PathState.STALE:
            self.state = PathState.UP

    def relay_lost(self, now: float, reason: str) -> list[PathAction]:
        """The TURN allocation under the selected pair is gone."""
        if self.state is PathState.UP and self.relayed:
            return self._restart(now, f"relay allocation lost: {reason}")
        return []

    def remote_restart(self, now: float) -> bool:
        """The peer re-offered (an ICE restart): accept it unless it does so too often."""
        if self.state is PathState.LOST:
            return False
        window = self._remote_restarts
        while window and now - window[0] > self.config.restart_window:
            window.popleft()
        if len(window) >= self.config.max_remote_restarts:
            return False
        window.append(now)
        if self.state in (PathState.UP, PathState.STALE):
            self.state = PathState.RESTARTING
        return True

    def restart_failed(self, now: float) -> None:
        """The restart's checks failed: try again after ``retry_after``, while consent lasts."""
        if self.state is PathState.RESTARTING:
            self._retry_at = now + self.config.retry_after

    def signaling_lost(self) -> None:
        """No restart is possible from now on."""
        self.can_restart = False
        if self.state is PathState.RESTARTING:
            self.state = PathState.STALE
            self._retry_at = None

    def tick(self, now: float) -> list[PathAction]:
        if self.state in (PathState.CONNECTING, PathState.LOST):
            return []
        if self._free_at is not None and now >= self._free_at:
            self._free_at = None
            return [*self._free(), *self.tick(now)]
        silent = now - self.last_consent
        if silent >= self.config.consent_timeout:
            reason = f"no answer from the peer for {self.config.consent_timeout:g} s (consent expired)"
            if self.state is PathState.RESTARTING:
                reason += "; no new path was found"
            self.state = PathState.LOST
            self._retry_at = None
            return [PeerLost(reason)]
        if self.state is PathState.UP and now - self.last_heard >= self.config.stale_after:
            return self._restart(now, f"nothing heard from the peer for {now - self.last_heard:.1f} s")
        if self.state is PathState.RESTARTING and self._retry_at is not None and now >= self._retry_at:
            self._retry_at = None
            return [RestartIce("the last ICE restart failed", retry=True)]
        return []

    def next_deadline(self) -> float | None:
        if self.state in (PathState.CONNECTING, PathState.LOST):
            return None
        deadlines = [self.last_consent + self.config.consent_timeout]
        if self.state is PathState.UP:
            deadlines.append(self.last_heard + self.config.stale_after)
        if self._retry_at is not None:
            deadlines.append(self._retry_at)
        if self._free_at is not None:
            deadlines.append(self._free_at)
        return min(deadlines)

    # -- internals ----------------------------------------------------------------

    def _restart(self, now: float, reason: str) -> list[PathAction]:
        actions: list[PathAction] = [ProbeRelay()] if self.relayed else []
        if not self.can_restart:
            self.state = PathState.STALE
            return actions
        self.state = PathState.RESTARTING
        return [*actions, RestartIce(reason)]

    def _maybe_free(self, now: float) -> list[PathAction]:
        if self.freed or self.searching or not self.dtls_up or self.selected is None:
            return []
        if self.peer_local is None or self.state not in (PathState.UP, PathState.STALE):
            return []
        if self.moved:
            if self._free_at is None:
                self._free_at = now + self.config.free_grace
            return []
        return self._free()

    def _free(self) -> list[PathAction]:
        if self.freed or self.selected is None or self.state not in (PathState.UP, PathState.STALE):
            return []
        self.freed = True
        keep = {self.selected} if self.peer_local is None else {self.selected, self.peer_local}
        return [FreeCandidates(frozenset(keep))]
