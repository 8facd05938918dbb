"""Every private name of aioice (0.13) that icepeer uses, behind public ones.

:class:`IceConnection` is aioice's ``Connection`` with its private state
exposed under names of our own (``check_list``, ``selected_pair``, ...), the
few private hooks icepeer changes overridden in one place, and aioice's
``connect()`` body copied as :meth:`IceConnection.run_checks` with three
changes (it starts on host candidates alone, wakes as soon as the check
list settles, and leaves the checks of direct pairs running when a relayed
pair won: :meth:`IceConnection.search_direct` may still move to one). :func:`turn_client` and :func:`attach_turn` reach into
aioice's TURN transport. ``PRIVATE_NAMES``, ``OVERRIDDEN`` and ``COPIED``
declare each of them once; ``tests/unit/test_compat.py`` checks them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

import aioice
from aioice import stun, turn
from aioice.candidate import Candidate
from aioice.ice import ICE_COMPLETED, CandidatePair, StunProtocol, TransportPolicy

from . import Copied, Private

__all__ = ["IceConnection", "is_direct", "register_stun_attributes", "turn_client", "attach_turn", "PRIVATE_NAMES", "OVERRIDDEN", "COPIED"]

#: Seconds between starting checks (RFC 8445 section 14.2, Ta), as aioice.
CHECK_PACING = 0.02

_Connection = aioice.Connection

PRIVATE_NAMES: tuple[Private, ...] = (
    Private(_Connection, "_check_list", why="the pairs: read, pruned when candidates are freed"),
    Private(_Connection, "_nominated", why="the selected pair"),
    Private(_Connection, "_protocols", why="one per local candidate: added for trickled relays, freed"),
    Private(_Connection, "_local_candidates", why="trickled srflx and relay candidates"),
    Private(_Connection, "_remote_candidates", why="pairing a relay gathered late"),
    Private(_Connection, "_early_checks", why="run_checks (copied connect body)"),
    Private(_Connection, "_early_checks_done", why="whether checks have started"),
    Private(_Connection, "_check_list_done", why="whether the check list settled"),
    Private(_Connection, "_check_list_state", why="run_checks (copied connect body)"),
    Private(_Connection, "_closing", why="ignore late candidates while closing"),
    Private(_Connection, "_closed", why="DTLS closed by the peer or by a dead path?"),
    Private(_Connection, "_transport_policy", why="host candidates only with policy ALL"),
    Private(_Connection, "_query_consent_task", why="our consent loop replaces aioice's"),
    Private(_Connection, "_find_pair", "method", ("self", "protocol", "remote_candidate")),
    Private(_Connection, "_pair_remote_candidate", "method", ("self", "remote_candidate")),
    Private(_Connection, "_unfreeze_initial", "method", ("self",)),
    Private(_Connection, "_check_periodic", "method", ("self",), why="start the next check now"),
    Private(_Connection, "_check_list_maybe_complete", "method", ("self",), why="hooked"),
    Private(_Connection, "_check_list_maybe_fail", "method", ("self",), why="hooked"),
    Private(_Connection, "_remote_candidates_expected", "method", ("self",), why="hooked"),
    Private(_Connection, "_prune_components", "method", ("self",), why="hooked: never prune every component"),
    Private(turn.TurnTransport, "__inner_protocol", why="the TURN client behind a relay candidate"),
    Private(turn.TurnTransport, "_connect", "method", ("self", "protocol"), why="attach_turn"),
)

#: Public methods icepeer overrides or calls with a fixed signature.
OVERRIDDEN: tuple[Private, ...] = (
    Private(_Connection, "get_component_candidates", "method", ("self", "component", "addresses", "timeout")),
    Private(_Connection, "add_remote_candidate", "method", ("self", "remote_candidate")),
    Private(_Connection, "check_incoming", "method", ("self", "message", "addr", "protocol")),
    Private(_Connection, "check_complete", "method", ("self", "pair")),
    Private(_Connection, "request_received", "method", ("self", "message", "addr", "protocol")),
    Private(_Connection, "build_request", "method", ("self", "pair", "nominate")),
    Private(_Connection, "query_consent", "method", ("self",)),
    Private(_Connection, "close", "method", ("self",)),
    Private(StunProtocol, "request", "method", ("self", "request", "addr", "integrity_key", "retransmissions")),
    Private(StunProtocol, "datagram_received", "method", ("self", "data", "addr")),
    Private(StunProtocol, "transactions"),
    Private(turn.TurnClientMixin, "request_with_retry", "method", ("self", "request")),
    Private(turn.TurnClientMixin, "refresh", "method", ("self", "time_to_expiry")),
    Private(turn.TurnClientMixin, "connect", "method", ("self",)),
    Private(turn.TurnClientMixin, "datagram_received", "method", ("self", "data", "addr")),
    Private(turn.TurnClientMixin, "connection_lost", "method", ("self", "exc")),
)

COPIED: tuple[Copied, ...] = (
    Copied(
        _Connection,
        "connect",
        "4e18ee986a336c7c1a9cc97f6de7fa1cd77227696b13cde0695d7895b05bf45b",
        why="IceConnection.run_checks is its body with three changes",
    ),
)


class IceConnection(aioice.Connection):
    """aioice's ``Connection``, its private state readable under public names.

    Subclasses override :meth:`gathering_in_progress` (our candidates still
    coming: the check list must not fail yet), :meth:`on_checks_settled`
    (the check list completed or failed) and :meth:`on_selected_changed`
    (the selected pair moved from a relayed pair to a direct one).

    **Direct wherever direct works.** aioice nominates aggressively: the first
    pair whose check succeeds is selected, and on a lossy or slow path that is
    sometimes a relayed pair although a direct one would have answered a
    moment later. When a relayed pair is selected, the direct pairs are kept
    (aioice would prune those not yet checked) and :meth:`search_direct` goes
    on checking them for a while; the first direct pair that succeeds with a
    nomination (the controlling side's checks carry USE-CANDIDATE, RFC 8445
    section 8.1.1) replaces the relayed one on both sides. Relayed to direct
    is the only move: between two direct pairs, or back to a relay, the
    selection stays until an ICE restart.
    """

    #: Whether :meth:`search_direct` may still move the selection to a direct pair.
    searching = False

    # -- hooks ------------------------------------------------------------------

    def gathering_in_progress(self) -> bool:
        return False

    def on_selected_changed(self, pair: CandidatePair) -> None:
        pass

    def on_checks_settled(self) -> None:
        pass

    # -- reading aioice's state ------------------------------------------------

    @property
    def check_list(self) -> list[CandidatePair]:
        return self._check_list

    @property
    def protocols(self) -> list[StunProtocol]:
        return self._protocols

    @property
    def selected_pair(self) -> CandidatePair | None:
        """The nominated pair of component 1 (icepeer uses one component)."""
        return self._nominated.get(1)

    @property
    def checks_started(self) -> bool:
        return self._early_checks_done

    @property
    def checks_settled(self) -> bool:
        return self._check_list_done

    @property
    def is_closing(self) -> bool:
        return self._closing

    @property
    def is_closed(self) -> bool:
        return self._closed

    @property
    def gathers_host_candidates(self) -> bool:
        return self._transport_policy == TransportPolicy.ALL

    # -- changing it -----------------------------------------------------------

    def add_local_candidate(self, candidate: Candidate) -> None:
        """A server-reflexive candidate learned after gathering returned (trickle)."""
        self._local_candidates.append(candidate)

    def add_local_protocol(self, protocol: StunProtocol) -> None:
        """A relay candidate allocated after gathering returned: pair it with the remote ones known."""
        self._protocols.append(protocol)
        for remote in self._remote_candidates:
            if protocol.local_candidate.can_pair_with(remote) and not self._find_pair(protocol, remote):
                self._check_list.append(CandidatePair(protocol, remote))
        self.sort_check_list()
        self._local_candidates.append(protocol.local_candidate)

    def add_host_protocols(self, protocols: Iterable[StunProtocol]) -> None:
        self._protocols += protocols

    def forget(self, protocols: set[StunProtocol]) -> None:
        """Drop ``protocols`` and their pairs (the caller closes them)."""
        self._protocols = [p for p in self._protocols if p not in protocols]
        self._check_list = [p for p in self._check_list if p.protocol not in protocols]

    def check_now(self) -> None:
        """Start the next waiting check at once, instead of on the next 20 ms tick."""
        self._check_periodic()

    def settle_if_stuck(self) -> None:
        """Nothing more is coming from our side: the check list may fail now."""
        if self._early_checks_done and not self._check_list_done:
            self._check_list_maybe_fail()

    def start_consent(self) -> None:
        """Run :meth:`query_consent` (ours) where aioice keeps its own consent task."""
        self._query_consent_task = asyncio.create_task(self.query_consent())

    async def run_checks(self, settled: asyncio.Future[None]) -> bool:
        """Perform ICE checks until a pair is nominated; False if the check list failed.

        aioice 0.13's ``Connection.connect()`` body with two changes: it does
        not demand that gathering be over (host candidates are enough to
        start; the rest trickle), and its 20 ms pacing sleep (RFC 8445 Ta)
        also ends when ``settled`` is done, so completion is noticed at once
        rather than on the next tick.
        """
        if self.remote_username is None or self.remote_password is None:
            raise ConnectionError("Remote username or password is missing")
        # Forming candidate pairs (RFC 8445 section 6.1.2.2).
        for remote_candidate in self._remote_candidates:
            self._pair_remote_candidate(remote_candidate)
        self.sort_check_list()
        self._unfreeze_initial()
        # Handle the checks received before connect().
        for early_check in self._early_checks:
            self.check_incoming(*early_check)
        self._early_checks.clear()
        self._early_checks_done = True
        while self._check_periodic():
            await asyncio.wait({settled}, timeout=CHECK_PACING)
        result = await self._check_list_state.get() if self._check_list else None
        self.searching = self.searching and result == ICE_COMPLETED
        for pair in self._check_list:
            if pair.task and not (self.searching and is_direct(pair)):
                pair.task.cancel()
        return result == ICE_COMPLETED

    async def search_direct(self, window: float) -> None:
        """Go on checking direct pairs for ``window`` seconds after a relayed pair was selected.

        Paced like the first checks (one start per Ta); ends as soon as a
        direct pair is selected, or when no direct pair is left to check and
        no more candidates can come; then the checks still running stop. The
        controlled side whose own check of a direct pair succeeded waits for
        the controlling side to nominate it (until the window ends): ending
        there let the path policy free that pair's socket, and the
        nomination came to a closed port.
        """
        deadline = asyncio.get_running_loop().time() + window
        pending = (CandidatePair.State.WAITING, CandidatePair.State.FROZEN)
        try:
            while self.searching and not self._closing:
                if asyncio.get_running_loop().time() >= deadline:
                    break
                direct = [p for p in self._check_list if is_direct(p)]
                waiting = sorted((p for p in direct if p.state in pending and p.task is None),
                                 key=lambda p: p.state is not CandidatePair.State.WAITING)
                if waiting:
                    self.check_start_task(waiting[0])
                elif not self._remote_candidates_expected() and not any(
                    p.state is CandidatePair.State.IN_PROGRESS
                    or (p.state is CandidatePair.State.SUCCEEDED and not self.ice_controlling)
                    for p in direct
                ):
                    break
                await asyncio.sleep(CHECK_PACING)
        finally:
            self.searching = False
            selected = self.selected_pair
            for pair in self._check_list:
                if pair.task is not None and pair is not selected:
                    pair.task.cancel()

    # -- aioice's private hooks, overridden ------------------------------------

    def _remote_candidates_expected(self) -> bool:
        # The check list must not fail while our own candidates are still coming,
        # nor while a peer that gave no candidate at all may still send checks to
        # ours (its candidates are then peer-reflexive, RFC 8445 section
        # 7.3.1.3): the connection's timeout ends that wait. With no candidate of
        # our own, no check can come: fail at once (a TURN server refused us).
        return (super()._remote_candidates_expected() or self.gathering_in_progress()
                or (not self._remote_candidates and bool(self.local_candidates)))

    def _check_list_maybe_complete(self) -> bool:
        complete = super()._check_list_maybe_complete()
        if self._check_list_done:
            self.on_checks_settled()
        return complete

    def _prune_components(self) -> None:
        # At end-of-candidates aioice drops every component the peer gave no
        # candidate for. A peer with no candidate at all (Chromium with only a
        # loopback interface gathers none) is still reachable: its checks make
        # peer-reflexive candidates (RFC 8445 section 7.3.1.3). When its
        # end-of-candidates came before its first check (the offer and the
        # empty candidate read in one burst), no component was left, and the
        # check list could never complete though a pair succeeded.
        if self._remote_candidates:
            super()._prune_components()

    def _check_list_maybe_fail(self) -> None:
        super()._check_list_maybe_fail()
        if self._check_list_done:
            self.on_checks_settled()

    def check_complete(self, pair: CandidatePair) -> None:
        # Once ICE has completed, the selected pair stays until an ICE restart,
        # but for one move: from a relayed pair to a direct one, while
        # search_direct runs. aioice would move the controlled side to any
        # pair that a late retransmitted check nominates (RFC 8445 section
        # 8.1.1 lets the controlling side nominate one pair; aggressive
        # nomination may nominate several): each side's path must be fixed
        # for the path policy to know which candidates are unused.
        selected = self._nominated.get(pair.component)
        succeeded = pair.state is CandidatePair.State.SUCCEEDED
        if self._check_list_done and selected is not None and selected is not pair:
            pair.task = None
            if self.searching and succeeded and pair.nominated and is_direct(pair):
                self._nominated[pair.component] = pair
                self.searching = False
                self.on_selected_changed(pair)
            return
        if not (succeeded and pair.nominated) or is_direct(pair):
            super().check_complete(pair)
            return
        # A relayed pair is nominated: aioice removes the pairs not checked
        # yet (RFC 8445 section 8.1.2); keep the direct ones for search_direct.
        keep = [p for p in self._check_list if p.component == pair.component and is_direct(p)
                and p.state in (CandidatePair.State.WAITING, CandidatePair.State.FROZEN)]
        super().check_complete(pair)
        for p in keep:
            if p not in self._check_list:
                p.task = None  # aioice cancelled a check scheduled but not started
                self._check_list.append(p)
        self.sort_check_list()
        self.searching = (self._check_list_done and self._nominated.get(pair.component) is pair
                          and self._transport_policy is not TransportPolicy.RELAY)


def register_stun_attributes(types: dict[str, int]) -> None:
    """Teach aioice's STUN codec attributes whose value is raw bytes (SPED's, comprehension-optional).

    aioice skips attributes it does not know when parsing, and cannot write
    them; its codec tables are module globals. An aioice without them fails
    here, at import, and in ``tests/unit/test_compat.py``.
    """
    for name, code in types.items():
        entry = (code, name, stun.pack_bytes, stun.unpack_bytes)
        stun.ATTRIBUTES_BY_TYPE[code] = entry
        stun.ATTRIBUTES_BY_NAME[name] = entry


def is_direct(pair: CandidatePair) -> bool:
    """Whether neither end of ``pair`` is a TURN relay."""
    return pair.local_candidate.type != "relay" and pair.remote_candidate.type != "relay"


def turn_client(protocol: object) -> Any | None:
    """The TURN client protocol under a relay candidate's transport (aioice keeps it private)."""
    return getattr(getattr(protocol, "transport", None), "_TurnTransport__inner_protocol", None)


async def attach_turn(transport: turn.TurnTransport, protocol: asyncio.DatagramProtocol) -> None:
    """Allocate through ``transport`` and deliver relayed datagrams to ``protocol``."""
    await transport._connect(protocol)
