"""The path monitor: the ICE agent of each generation, fed to the path policy, with a clock.

:class:`icepeer.path.PathPolicy` decides; this module only wires it up. It
creates the agents (the first one, and one per ICE restart: at most one
waiting beside the current one, so a peer that re-offers in a loop cannot
make us open sockets and TURN allocations without end), passes what they
report to the policy, calls :meth:`~icepeer.path.PathPolicy.tick` when the
policy's next deadline comes, and carries out its actions: free unused
candidates, probe a relay, ask for an ICE restart, declare the peer lost.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from aioice.candidate import Candidate
from aioice.ice import CandidatePair

from . import sdp
from .agent import Agent
from .candidate_socket import CandidateSocket
from .path import (
    FreeCandidates,
    PathAction,
    PathConfig,
    PathPolicy,
    PeerLost,
    ProbeRelay,
    RestartIce,
)

__all__ = ["PathMonitor"]

logger = logging.getLogger(__name__)


class PathMonitor:
    """Agents and path policy of one connection."""

    def __init__(
        self,
        config: PathConfig,
        *,
        make_agent: Callable[[], Agent],
        spawn: Callable[[Coroutine[Any, Any, Any], str], object],
        request_restart: Callable[[RestartIce], None],
        peer_lost: Callable[[str], None],
        switched: Callable[[Agent, float], None],
        moved: Callable[[float], None] | None = None,
    ) -> None:
        self.policy = PathPolicy(config)
        self._make_agent = make_agent
        self._spawn = spawn
        self._request_restart = request_restart
        self._peer_lost = peer_lost
        self._switched = switched
        self._moved = moved
        self.agent: Agent | None = None
        #: The current agent and the one an ICE restart is preparing, by local ufrag.
        self.agents: dict[str, Agent] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._restart_started: float | None = None
        self._connected_at = 0.0

    # -- agents -------------------------------------------------------------------

    def first_agent(self) -> Agent:
        self.agent = self._new_agent()
        return self.agent

    def new_credentials(self) -> tuple[str, str]:
        """For an ICE restart: a fresh agent, gathering at once, replacing any earlier spare one."""
        for ufrag, agent in list(self.agents.items()):
            if agent is not self.agent:
                del self.agents[ufrag]
                self._spawn(agent.close(), "close-spare-agent")
        agent = self._new_agent()
        return agent.local_username, agent.local_password

    def _new_agent(self) -> Agent:
        agent = self._make_agent()
        agent.on_consent = lambda: self._on_consent(agent)
        agent.on_heard = lambda: self._on_heard(agent)
        agent.on_peer_data = lambda sock: self._on_peer_data(agent, sock)
        agent.on_relay_lost = lambda reason: self._on_relay_lost(agent, reason)
        agent.on_switched = lambda pair: self._on_switched(agent, pair)
        agent.on_search_over = lambda: self._on_search_over(agent)
        self.agents[agent.local_username] = agent
        agent.gather()
        return agent

    async def add_remote_candidate(self, ufrag: str, candidate: Candidate | None) -> None:
        """A trickled candidate of the peer's ICE generation ``ufrag`` (``None``: no more)."""
        for agent in list(self.agents.values()):
            if agent.remote_username == ufrag:
                try:
                    await agent.add_remote_candidate(candidate)
                except ValueError as exc:
                    logger.debug("remote candidate ignored: %s", exc)
                return

    def prepare(self, agent: Agent, remote: sdp.Description, *, controlling: bool) -> None:
        agent.remote_username = remote.ice_ufrag
        agent.remote_password = remote.ice_pwd
        agent.remote_is_lite = remote.ice_lite
        agent.ice_controlling = controlling

    # -- connecting and restarting ----------------------------------------------

    async def connect_first(self) -> None:
        """ICE checks of the first agent; ``ConnectionError`` if no pair works."""
        agent = self.agent
        assert agent is not None
        await agent.connect()
        self._connected(agent)

    def remote_restart_allowed(self) -> bool:
        """The peer re-offered: may it restart ICE now (at most a few times a minute)?"""
        allowed = self.policy.remote_restart(time.monotonic())
        if not allowed:
            logger.warning("the peer restarts ICE too often: ignoring its offer")
        return allowed

    def restart_requested(self) -> None:
        if self._restart_started is None:
            self._restart_started = time.monotonic()

    async def restart(self, ufrag: str, remote: sdp.Description, *, controlling: bool) -> None:
        """Run the checks of the restart's agent and, if they succeed, move the connection to it."""
        agent = self.agents.get(ufrag)
        if agent is None:
            logger.info("ICE restart for credentials %s that were replaced meanwhile", ufrag)
            return
        self.restart_requested()
        self.prepare(agent, remote, controlling=controlling)
        try:
            await agent.connect()
        except ConnectionError as exc:
            logger.warning("ICE restart failed: %s", exc)
            self.agents.pop(ufrag, None)
            await agent.close()
            self.policy.restart_failed(time.monotonic())
            self._rearm()
            return
        old, self.agent = self.agent, agent
        if old is not None and old is not agent:
            self.agents.pop(old.local_username, None)
            self._spawn(old.close(), "close-old-agent")
        started, self._restart_started = self._restart_started, None
        self._connected(agent)
        self._switched(agent, (time.monotonic() - (started or time.monotonic())) * 1000)

    def _connected(self, agent: Agent) -> None:
        pair = agent.selected
        assert pair is not None
        self._connected_at = time.monotonic()
        self._apply(self.policy.connected(
            self._connected_at, pair.protocol, relayed=pair.local_candidate.type == "relay",
            searching=agent.searching,
        ))

    def dtls_connected(self) -> None:
        self._apply(self.policy.dtls_connected(time.monotonic()))

    def signaling_lost(self) -> None:
        self.policy.signaling_lost()

    # -- reports from the current agent -------------------------------------------

    def _on_consent(self, agent: Agent) -> None:
        if agent is self.agent:
            self.policy.consent(time.monotonic())

    def _on_heard(self, agent: Agent) -> None:
        if agent is self.agent:
            self.policy.heard(time.monotonic())

    def _on_peer_data(self, agent: Agent, sock: CandidateSocket) -> None:
        if agent is self.agent:
            actions = self.policy.peer_data(time.monotonic(), sock)
            if actions:
                self._apply(actions)

    def _on_switched(self, agent: Agent, pair: CandidatePair) -> None:
        if agent is not self.agent:
            return
        now = time.monotonic()
        self._apply(self.policy.switched(now, pair.protocol, relayed=pair.local_candidate.type == "relay"))
        if self._moved is not None:
            self._moved((now - self._connected_at) * 1000)

    def _on_search_over(self, agent: Agent) -> None:
        if agent is self.agent:
            self._apply(self.policy.search_over(time.monotonic()))

    def _on_relay_lost(self, agent: Agent, reason: str) -> None:
        client = agent.turn_client_of(agent.selected)
        if agent is self.agent and client is not None and client.lost_reason is not None:
            self._apply(self.policy.relay_lost(time.monotonic(), reason))

    # -- the clock and the actions ------------------------------------------------

    def _tick(self) -> None:
        self._timer = None
        self._apply(self.policy.tick(time.monotonic()))

    def _rearm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadline = self.policy.next_deadline()
        if deadline is not None:
            delay = max(0.0, deadline - time.monotonic())
            self._timer = asyncio.get_running_loop().call_later(delay, self._tick)

    def _apply(self, actions: list[PathAction]) -> None:
        for action in actions:
            if isinstance(action, FreeCandidates):
                if self.agent is not None:
                    self.agent.free(action.keep)
            elif isinstance(action, ProbeRelay):
                client = self.agent.turn_client_of(self.agent.selected) if self.agent else None
                if client is not None and client.lost_reason is None:
                    self._spawn(client.probe(), "turn-probe")
            elif isinstance(action, RestartIce):
                self.restart_requested()
                self._request_restart(action)
            elif isinstance(action, PeerLost):
                self._peer_lost(action.reason)
        self._rearm()

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for agent in list(self.agents.values()):
            try:
                await agent.close()
            except Exception:
                logger.debug("closing an agent failed", exc_info=True)
        self.agents.clear()
