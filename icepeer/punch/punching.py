"""Before the connection: gathering our public address, then punching towards the peer's.

:class:`Gathering` asks every STUN server at once for the address our NAT
maps the socket to (RFC 8489 Binding, one :class:`~.binding.BindingTransaction`
each); those addresses become server-reflexive candidates (RFC 8445 section
5.1.1.2). :class:`Puncher` then sends a PROBE every ``punch_interval`` to every
address the peer offered, or only to the locked one once a packet came back
(Ford, Srisuresh, Kegel 2005; RFC 5128 section 3.3), and gives up
``final_wait`` seconds after its last try.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from aioice import stun as codec

from .binding import BindingTransaction
from .candidates import Candidate, CandidateType
from .config import PunchConfig
from .outbox import Prober

__all__ = ["Gathering", "Puncher"]

logger = logging.getLogger(__name__)

Address = tuple[str, int]


class Gathering:
    """One Binding transaction per STUN server, all run at once; done when all are."""

    def __init__(self, servers: Sequence[Address], now: float, *, rto: float,
                 timeout: float) -> None:
        self._transactions = [BindingTransaction(s, now, rto=rto, timeout=timeout)
                              for s in servers]
        #: Why servers failed, as of :meth:`finish` (empty until then).
        self.errors: list[str] = []

    @property
    def done(self) -> bool:
        """Every server answered or was given up on (at once with no servers)."""
        return all(tr.done for tr in self._transactions)

    @property
    def mapped(self) -> list[Address]:
        """Our public addresses as the servers saw them (before deduplication)."""
        return [tr.mapped for tr in self._transactions if tr.mapped]

    def next_deadlines(self) -> list[float]:
        return [d for tr in self._transactions if (d := tr.next_deadline()) is not None]

    def poll(self, now: float) -> list[tuple[bytes, Address]]:
        """The requests due at ``now`` (first sends and retransmissions)."""
        return [out for tr in self._transactions for out in tr.poll(now)]

    def response_received(self, message: codec.Message, addr: Address) -> bool:
        """A STUN message arrived: True if it answers one of our requests."""
        for tr in self._transactions:
            if tr.response_received(message, addr):
                if tr.error:
                    logger.warning("%s", tr.error)
                return True
        return False

    def finish(self) -> list[Candidate]:
        """The server-reflexive candidates; records the errors."""
        self.errors = [tr.error for tr in self._transactions if tr.error]
        return [Candidate(CandidateType.SRFLX, *tr.mapped) for tr in self._transactions
                if tr.mapped]


class Puncher:
    """The PUNCHING state's schedule: when to probe, where, and when to give up."""

    def __init__(self, config: PunchConfig, prober: Prober, now: float) -> None:
        self._config = config
        self._prober = prober
        #: The peer's offered addresses in our IP version.
        self.targets: list[Address] = []
        self.tries = 0
        self._next_probe: float | None = None
        self._last_probe = now
        self._started = now

    def start(self, now: float) -> None:
        """The first probe is due at once."""
        self._next_probe = now
        self._started = now
        logger.info("punching towards %s", ", ".join(f"{a}:{p}" for a, p in self.targets) or
                    "no address (waiting for the peer's packets)")

    def stop(self) -> None:
        """Connected: no more punch probes."""
        self._next_probe = None

    def next_deadline(self) -> float:
        if self._next_probe is not None:
            return self._next_probe
        return self._last_probe + self._config.final_wait

    def poll(self, now: float, locked: Address | None) -> str | None:
        """Probe if one is due (only ``locked`` once set); the reason if it is time to give up."""
        cfg = self._config
        if self._next_probe is not None and now >= self._next_probe:
            self._prober.probe([locked] if locked else self.targets, now)
            self.tries += 1
            self._last_probe = now
            if cfg.max_tries is not None and self.tries >= cfg.max_tries:
                self._next_probe = None
            else:
                self._next_probe = now + cfg.punch_interval
        elif self._next_probe is None and now >= self._last_probe + cfg.final_wait:
            where = f"{len(self.targets)} address{'es' if len(self.targets) != 1 else ''}"
            return (f"no answer from the peer after {self.tries} punch packets to {where} "
                    f"in {now - self._started:.1f} s: "
                    "a symmetric NAT or a firewall may be in the way")
        return None
