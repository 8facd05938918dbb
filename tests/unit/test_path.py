"""The path policy, driven by plain calls with a fake clock (no sockets, no event loop)."""

from __future__ import annotations

import random

import pytest

from icepeer.path import (
    FreeCandidates,
    PathConfig,
    PathPolicy,
    PathState,
    PeerLost,
    ProbeRelay,
    RestartIce,
)

pytestmark = pytest.mark.unit

HOST, RELAY, OTHER = "host-socket", "relay-socket", "other-socket"


def up(now: float = 0.0, *, relayed: bool = False, config: PathConfig | None = None) -> PathPolicy:
    policy = PathPolicy(config or PathConfig())
    assert policy.connected(now, RELAY if relayed else HOST, relayed=relayed) == []
    return policy


def run(policy: PathPolicy, until: float, *, consent_every: float | None = None,
        data_every: float | None = None) -> list[tuple[float, object]]:
    """Advance the clock from deadline to deadline (and feed periodic events) until ``until``."""
    out: list[tuple[float, object]] = []
    now = 0.0
    next_consent = consent_every
    next_data = data_every
    while now < until:
        candidates = [t for t in (policy.next_deadline(), next_consent, next_data, until) if t is not None]
        now = min(candidates)
        if next_consent is not None and now >= next_consent:
            policy.consent(now)
            next_consent = now + consent_every  # type: ignore[operator]
        if next_data is not None and now >= next_data:
            out += [(now, a) for a in policy.peer_data(now, HOST)]
            next_data = now + data_every  # type: ignore[operator]
        out += [(now, a) for a in policy.tick(now)]
        if policy.state is PathState.LOST:
            break
    return out


# -- consent and liveness --------------------------------------------------------


def test_answered_consent_keeps_the_path_up():
    policy = up()
    assert run(policy, 60, consent_every=2.5) == []
    assert policy.state is PathState.UP


def test_only_consent_refreshes_consent_not_data():
    # The peer's DTLS keeps arriving (anyone can send a packet from its
    # address), but no consent check is answered: consent expires.
    policy = up()
    actions = run(policy, 30, data_every=0.1)
    assert [a for _, a in actions] == [PeerLost("no answer from the peer for 10 s (consent expired)")]
    assert actions[0][0] == pytest.approx(10.0)


def test_silence_restarts_ice_before_consent_expires():
    policy = up()
    actions = run(policy, 5)
    assert actions == [(4.0, RestartIce("nothing heard from the peer for 4.0 s"))]
    assert policy.state is PathState.RESTARTING


def test_a_silent_relay_is_probed_as_ice_restarts():
    policy = up(relayed=True)
    assert [a for _, a in run(policy, 5)] == [ProbeRelay(), RestartIce("nothing heard from the peer for 4.0 s")]


def test_timers_scale_down_with_a_short_peer_timeout():
    config = PathConfig.for_peer_timeout(2.0)
    assert config.consent_timeout == 2.0 and config.stale_after == pytest.approx(0.8)
    assert config.consent_interval == pytest.approx(0.5)  # four checks per timeout
    assert PathConfig.for_peer_timeout(30.0).stale_after == 4.0


# -- restarts: one deadline ---------------------------------------------------------


def test_a_restart_that_never_finishes_ends_at_the_consent_deadline():
    # Before, a restart had its own timeout (twice the peer timeout) that
    # could never fire: the peer was declared lost first. Now there is one
    # deadline, and the reason says the restart found nothing.
    policy = up()
    actions = run(policy, 60)
    assert [type(a) for _, a in actions] == [RestartIce, PeerLost]
    lost_at, lost = actions[-1]
    assert lost_at == pytest.approx(10.0)
    assert lost == PeerLost("no answer from the peer for 10 s (consent expired); no new path was found")


def test_a_failed_restart_is_retried_until_the_deadline():
    policy = up()
    assert [type(a) for a in policy.tick(4.0)] == [RestartIce]
    policy.restart_failed(4.5)
    assert policy.next_deadline() == pytest.approx(6.5)
    assert policy.tick(6.5) == [RestartIce("the last ICE restart failed", retry=True)]
    policy.restart_failed(7.0)
    assert policy.tick(9.0) == [RestartIce("the last ICE restart failed", retry=True)]
    assert [type(a) for a in policy.tick(10.0)] == [PeerLost]


def test_a_restart_that_succeeds_saves_the_connection():
    policy = up()
    policy.tick(4.0)
    assert policy.connected(6.0, OTHER, relayed=False) == []
    assert policy.state is PathState.UP and policy.restarts == 1
    assert run(policy, 30, consent_every=2.5) == []


def test_a_lost_allocation_restarts_at_once_only_on_a_relayed_path():
    assert up().relay_lost(1.0, "437") == []
    policy = up(relayed=True)
    assert policy.relay_lost(1.0, "437 Allocation Mismatch") == [
        ProbeRelay(), RestartIce("relay allocation lost: 437 Allocation Mismatch")
    ]
    assert policy.relay_lost(1.5, "again") == []  # already restarting


def test_without_signaling_there_is_no_restart_but_the_path_may_recover():
    policy = up()
    policy.signaling_lost()
    assert policy.tick(4.0) == []
    assert policy.state is PathState.STALE
    policy.consent(5.0)  # answers again
    assert policy.state is PathState.UP
    assert [type(a) for a in policy.tick(15.0)] == [PeerLost]


def test_a_peer_that_reoffers_in_a_loop_is_refused_after_the_limit():
    policy = up(config=PathConfig(max_remote_restarts=3, restart_window=60))
    accepted = [policy.remote_restart(t) for t in (1, 2, 3, 4, 5)]
    assert accepted == [True, True, True, False, False]
    assert policy.remote_restart(62.0)  # the window moved on


# -- freeing unused candidates: evidence, not a timer --------------------------------


def test_candidates_are_freed_once_dtls_is_up_and_the_peer_used_a_candidate():
    policy = up()
    assert policy.peer_data(0.1, HOST) == []  # DTLS not up yet
    assert policy.dtls_connected(0.2) == [FreeCandidates(frozenset({HOST}))]
    assert policy.peer_data(0.3, HOST) == []  # once only


def test_the_peers_pair_is_kept_when_it_differs_from_ours():
    # Aggressive nomination: each side may select a different pair. Ours goes
    # out through HOST; the peer's data comes in through the relay.
    policy = up()
    policy.dtls_connected(0.2)
    assert policy.peer_data(0.3, RELAY) == [FreeCandidates(frozenset({HOST, RELAY}))]


def test_nothing_is_freed_until_the_evidence_arrives_however_late():
    # Under loss, the peer's DTLS may take many retransmissions: no timer
    # guesses meanwhile; the relays stay until the peer's data proves its choice.
    rng = random.Random(3)
    policy = up()
    policy.dtls_connected(0.5)
    now = 0.5
    for _ in range(200):
        now += rng.uniform(0.05, 0.5)
        policy.consent(now)
        assert policy.tick(now) == []
    assert not policy.freed
    assert policy.peer_data(now, HOST) == [FreeCandidates(frozenset({HOST}))]


# -- a relay won the first checks: a direct pair may still replace it ----------------


def test_nothing_is_freed_while_the_agent_searches_for_a_direct_pair():
    # Freeing on the first evidence would close the host candidates the
    # direct pair needs, and the relay would stay for good.
    policy = PathPolicy(PathConfig())
    assert policy.connected(0.0, RELAY, relayed=True, searching=True) == []
    policy.dtls_connected(0.1)
    assert policy.peer_data(0.2, RELAY) == []
    assert policy.tick(3.0) == []
    assert not policy.freed
    # No direct pair answered: the relay is the path, and the evidence is in.
    assert policy.search_over(5.0) == [FreeCandidates(frozenset({RELAY}))]


def test_after_moving_off_the_relay_it_is_freed_a_grace_later_once_the_peer_moved_too():
    policy = PathPolicy(PathConfig(free_grace=1.0))
    policy.connected(0.0, RELAY, relayed=True, searching=True)
    policy.dtls_connected(0.1)
    policy.peer_data(0.2, RELAY)
    assert policy.switched(0.5, HOST, relayed=False) == []
    assert (policy.selected, policy.relayed, policy.searching) == (HOST, False, False)
    # What the peer sent on the relay before it moved still arrives...
    assert policy.peer_data(0.55, RELAY) == []
    assert policy.next_deadline() == pytest.approx(1.5)
    # ... then the peer moves too, and the relay goes once the grace is over.
    assert policy.peer_data(0.7, HOST) == []
    assert policy.tick(1.4) == []
    assert policy.tick(1.5) == [FreeCandidates(frozenset({HOST}))]
    assert policy.relay_lost(2.0, "gone") == []  # not our path any more: no restart


def test_a_peer_still_on_the_relay_after_the_grace_keeps_it():
    # A peer (a browser, say) that does not follow the move: its latest data
    # came through the relay, so the relay is its path and must stay.
    policy = PathPolicy(PathConfig(free_grace=1.0))
    policy.connected(0.0, RELAY, relayed=True, searching=True)
    policy.dtls_connected(0.1)
    policy.switched(0.5, HOST, relayed=False)
    policy.peer_data(0.6, RELAY)
    assert policy.tick(1.6) == [FreeCandidates(frozenset({HOST, RELAY}))]


def test_moving_off_the_relay_refreshes_consent_and_is_no_restart():
    policy = PathPolicy(PathConfig(consent_timeout=10.0))
    policy.connected(0.0, RELAY, relayed=True, searching=True)
    policy.switched(4.0, HOST, relayed=False)
    assert policy.restarts == 0
    assert policy.tick(9.0) == [RestartIce("nothing heard from the peer for 5.0 s")]
    assert policy.next_deadline() == pytest.approx(14.0)  # consent counted from the move


def test_a_restart_frees_again_for_its_new_generation():
    policy = up()
    policy.dtls_connected(0.1)
    policy.peer_data(0.2, HOST)
    policy.tick(5.0)
    assert policy.connected(6.0, OTHER, relayed=False) == []  # no evidence on the new path yet
    assert policy.peer_data(6.1, OTHER) == [FreeCandidates(frozenset({OTHER}))]


def test_nothing_is_freed_while_restarting():
    policy = up()
    policy.tick(4.0)
    policy.dtls_connected(4.1)
    assert policy.peer_data(4.2, HOST) == []
