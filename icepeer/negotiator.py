"""The session at run time: signaling into :class:`~icepeer.session.Negotiation`, its actions out.

:class:`Negotiator` decides nothing itself. It fixes the roles when the
other peer appears (the one already in the room offers), builds our
description from the first ICE agent and the DTLS certificate, feeds what
the peer signals into the negotiation, trickles our candidates, and hands
each action to the connection (:class:`SessionHooks`): start ICE, restart
it, add a remote candidate. Re-offers beyond the path policy's limit are
ignored before they can cost a new agent.

With a code (:mod:`icepeer.pake`), the PAKE messages go first, the offer
waits for the key, every offer and answer carries its ``mac``, and one
that does not verify is never used: the connection fails with
:class:`~icepeer.errors.AuthenticationFailed`, and the peer is told
(``{"type": "pake-failed"}``) so that it stops at once too.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from aioice.candidate import Candidate

from . import sdp
from .agent import Agent
from .channel import MAX_MESSAGE_SIZE
from .errors import AuthenticationFailed, BadDescription
from .monitor import PathMonitor
from .pake import MISMATCH, Pake
from .session import (
    SPED,
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

__all__ = ["Negotiator", "SessionHooks", "ICEPEER_FEATURES"]

#: The version of icepeer's own features in ``a=icepeer`` (1: channels by label are pre-agreed).
ICEPEER_FEATURES = 1

logger = logging.getLogger(__name__)


class SessionHooks(Protocol):
    """What the negotiation asks of the connection."""

    def start_ice(self, remote: sdp.Description) -> None: ...

    def restart_ice(self, ufrag: str, remote: sdp.Description) -> None: ...

    def add_remote_candidate(self, action: AddRemoteCandidate) -> None: ...

    def negotiation_failed(self, exc: BadDescription) -> None: ...

    def peer_found(self, role: Role, remote_peer_id: str) -> None: ...

    def authentication_failed(self, exc: AuthenticationFailed) -> None: ...


class Negotiator:
    def __init__(
        self, link: SignalingLink, monitor: PathMonitor, hooks: SessionHooks,
        fingerprints: tuple[sdp.Fingerprint, ...], pake: Pake | None = None,
        *, sctp_init: bytes | None = None, accelerate: bool = False,
    ) -> None:
        self._link = link
        self._monitor = monitor
        self._hooks = hooks
        self._fingerprints = fingerprints
        self.pake = pake
        self._sctp_init = sctp_init
        # SPED and icepeer's own pre-agreed channels, offered with SNAP's INIT.
        self._ice_options = ("trickle", SPED) if accelerate else ("trickle",)
        self._icepeer = ICEPEER_FEATURES if accelerate else None
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
            setup="actpass", max_message_size=MAX_MESSAGE_SIZE, sctp_init=self._sctp_init,
            ice_options=self._ice_options, icepeer=self._icepeer,
        )
        self.negotiation = Negotiation(role, local, new_credentials=self._monitor.new_credentials)
        if self.pake is not None:
            self._link.send(self.pake.message())
            actions: list[Action] = []  # the offer waits for the key
        else:
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
        if self.pake is not None and not self._authenticated(negotiation, data):
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

    def _authenticated(self, negotiation: Negotiation, data: Any) -> bool:
        """With a code: take the PAKE message, check an offer's or answer's mac. True to go on."""
        pake = self.pake
        assert pake is not None
        kind = data.get("type") if isinstance(data, dict) else None
        try:
            if kind == "pake":
                pake.receive(data)
                if self.role is Role.OFFERER:
                    self._run(negotiation.start())
                return False
            if kind == "pake-failed":
                raise AuthenticationFailed(MISMATCH)
            if kind in ("offer", "answer"):
                text = data.get("sdp")
                if not isinstance(text, str):
                    raise BadDescription(f"{kind} without an 'sdp' string")
                pake.check(kind, text, data.get("mac"))
        except BadDescription as exc:
            self._hooks.negotiation_failed(exc)
            return False
        except AuthenticationFailed as exc:
            if kind != "pake-failed":
                self._link.send({"type": "pake-failed"})
            self._hooks.authentication_failed(exc)
            return False
        return True

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
                data = action.data
                if self.pake is not None and data.get("type") in ("offer", "answer"):
                    data = {**data, "mac": self.pake.seal(data["type"], data["sdp"])}
                self._link.send(data)
            elif isinstance(action, StartIce):
                self._hooks.start_ice(action.remote)
            elif isinstance(action, RestartIce):
                self._hooks.restart_ice(action.local[0], action.remote)
            elif isinstance(action, AddRemoteCandidate):
                self._hooks.add_remote_candidate(action)
            elif isinstance(action, PeerBye):
                self.bye = True
