"""The session at run time: signaling into :class:`~icepeer.session.Negotiation`, its actions out.

:class:`Negotiator` decides nothing itself. It fixes the roles when the
other peer appears (the one already in the room offers), builds our
description from the first ICE agent and the DTLS certificate, feeds what
the peer signals into the negotiation, trickles our candidates, and hands
each action to the connection (:class:`SessionHooks`): start ICE, restart
it, add a remote candidate. Re-offers beyond the path policy's limit are
ignored before they can cost a new agent.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from aioice.candidate import Candidate

from . import sdp
from .agent import Agent
from .channel import MAX_MESSAGE_SIZE
from .errors import BadDescription
from .monitor import PathMonitor
from .session import (
    Action,
    AddRemoteCandidate,
    Negotiation,
    PeerBye,
    RestartIce,
    Role,
    Send,
    StartIce,
)
from .signaling_link import SignalingLink

__all__ = ["Negotiator", "SessionHooks"]

logger = logging.getLogger(__name__)


class SessionHooks(Protocol):
    """What the negotiation asks of the connection."""

    def start_ice(self, remote: sdp.Description) -> None: ...

    def restart_ice(self, ufrag: str, remote: sdp.Description) -> None: ...

    def add_remote_candidate(self, action: AddRemoteCandidate) -> None: ...

    def negotiation_failed(self, exc: BadDescription) -> None: ...

    def peer_found(self, role: Role, remote_peer_id: str) -> None: ...


class Negotiator:
    def __init__(
        self, link: SignalingLink, monitor: PathMonitor, hooks: SessionHooks,
        fingerprints: tuple[sdp.Fingerprint, ...],
    ) -> None:
        self._link = link
        self._monitor = monitor
        self._hooks = hooks
        self._fingerprints = fingerprints
        self.role: Role | None = None
        self.negotiation: Negotiation | None = None
        #: The peer said it is closing on purpose.
        self.bye = False
        #: Remote candidates received, by type (for the report).
        self.remote_types: dict[str, int] = {}
        self._early: list[Candidate | None] = []
        link.on_peer_joined = lambda peer_id: self.begin(Role.OFFERER, peer_id)
        link.on_signal = self.on_signal

    @property
    def dtls_role(self) -> str:
        assert self.negotiation is not None
        return self.negotiation.dtls_role

    def begin(self, role: Role, remote_peer_id: str) -> None:
        """The other peer is here: fix the roles, and offer if it is ours to."""
        agent = self._monitor.agent
        assert agent is not None
        self.role = role
        self._link.remote_peer_id = remote_peer_id
        agent.ice_controlling = role is Role.OFFERER
        self._hooks.peer_found(role, remote_peer_id)
        local = sdp.Description(
            ice_ufrag=agent.local_username, ice_pwd=agent.local_password, fingerprints=self._fingerprints,
            setup="actpass", max_message_size=MAX_MESSAGE_SIZE,
        )
        self.negotiation = Negotiation(role, local, new_credentials=self._monitor.new_credentials)
        actions = self.negotiation.start()
        early, self._early = self._early, []
        for candidate in early:
            actions += self.negotiation.local_candidate(candidate)
        self._run(actions)

    def on_signal(self, data: Any) -> None:
        negotiation = self.negotiation
        if negotiation is None:
            logger.info("a message from the peer before it joined: ignored")
            return
        if negotiation.is_reoffer(data) and not self._monitor.remote_restart_allowed():
            return
        try:
            actions = negotiation.receive(data)
        except BadDescription as exc:
            self._hooks.negotiation_failed(exc)
            return
        if isinstance(data, dict) and data.get("candidate"):
            kind = str(data["candidate"]).partition(" typ ")[2].split(" ")[0] or "unknown"
            self.remote_types[kind] = self.remote_types.get(kind, 0) + 1
        self._run(actions)

    def local_candidate(self, agent: Agent, candidate: Candidate | None) -> None:
        """A candidate of ``agent`` (``None``: its gathering is over), to trickle to the peer."""
        negotiation = self.negotiation
        if negotiation is None:
            self._early.append(candidate)
        elif agent.local_username == negotiation.local.ice_ufrag:  # else a replaced ICE generation
            self._run(negotiation.local_candidate(candidate))

    def restart(self) -> None:
        """Offer an ICE restart (nothing happens while an offer is pending)."""
        if self.negotiation is not None:
            self._run(self.negotiation.restart())

    def _run(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Send):
                self._link.send(action.data)
            elif isinstance(action, StartIce):
                self._hooks.start_ice(action.remote)
            elif isinstance(action, RestartIce):
                self._hooks.restart_ice(action.local[0], action.remote)
            elif isinstance(action, AddRemoteCandidate):
                self._hooks.add_remote_candidate(action)
            elif isinstance(action, PeerBye):
                self.bye = True
