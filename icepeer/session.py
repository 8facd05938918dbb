"""Offer, answer and trickled candidates between two peers: the negotiation, with no I/O.

The messages are WebRTC's own JSON forms, carried in the signaling
``data`` field (docs/protocol.md, "Peer messages")::

    {"type": "offer" | "answer", "sdp": "v=0..."}                      RTCSessionDescriptionInit
    {"candidate": "candidate:...", "sdpMid": "0", "sdpMLineIndex": 0,
     "usernameFragment": "F7gI"}                                         RTCIceCandidateInit
    {"candidate": "", "sdpMid": "0", "sdpMLineIndex": 0, ...}           end-of-candidates
    {"type": "bye"}                                                      icepeer: closing on purpose

Roles are fixed when the second peer arrives: the peer that was in the room
first offers (and is ICE-controlling and the DTLS server, RFC 8842 section
5.3); the newcomer answers. Either side may later restart ICE (RFC 8445
section 9, RFC 8839 section 4.4.1.1.1) with a new offer; if both do at once,
the original answerer yields, as in WebRTC's "perfect negotiation".

:class:`Negotiation` turns events (``start``, ``local_candidate``,
``receive``, ``restart``) into actions for the I/O layer.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from aioice import Candidate

from . import sdp
from .errors import BadDescription
from .sctp.chunks import InitChunk

#: The ICE option of SPED (draft-hancke-webrtc-sped-00 section 6).
SPED = "sped"

__all__ = [
    "Role",
    "Send",
    "StartIce",
    "RestartIce",
    "AddRemoteCandidate",
    "PeerBye",
    "Action",
    "Negotiation",
    "candidate_to_json",
    "candidate_from_json",
]

logger = logging.getLogger(__name__)

Credentials = tuple[str, str]


class Role(enum.Enum):
    OFFERER = "offerer"
    ANSWERER = "answerer"


class State(enum.Enum):
    NEW = "new"
    HAVE_LOCAL_OFFER = "have-local-offer"
    STABLE = "stable"
    CLOSED = "closed"


# -- actions for the I/O layer ------------------------------------------------


@dataclass(frozen=True)
class Send:
    """Send ``data`` to the peer through the signaling server."""

    data: dict[str, Any]


@dataclass(frozen=True)
class StartIce:
    """The remote description is known: start ICE checks and then DTLS."""

    remote: sdp.Description


@dataclass(frozen=True)
class RestartIce:
    """ICE restarts: a new agent with ``local`` credentials, checking against ``remote``."""

    local: Credentials
    remote: sdp.Description


@dataclass(frozen=True)
class AddRemoteCandidate:
    """A trickled remote candidate (``None``: end-of-candidates) for ICE generation ``ufrag``."""

    candidate: Candidate | None
    ufrag: str


@dataclass(frozen=True)
class PeerBye:
    """The peer is closing on purpose."""


Action = Send | StartIce | RestartIce | AddRemoteCandidate | PeerBye


# -- candidate JSON (RTCIceCandidateInit) -------------------------------------


def candidate_to_json(candidate: Candidate | None, ufrag: str) -> dict[str, Any]:
    line = f"candidate:{candidate.to_sdp()}" if candidate is not None else ""
    return {"candidate": line, "sdpMid": sdp.MID, "sdpMLineIndex": 0, "usernameFragment": ufrag}


def candidate_from_json(data: dict[str, Any]) -> Candidate | None:
    """Parse an RTCIceCandidateInit; ``None`` for end-of-candidates."""
    line = data.get("candidate")
    if not isinstance(line, str):
        raise BadDescription("a candidate message needs a 'candidate' string")
    if line == "":
        return None
    text = line.removeprefix("a=").removeprefix("candidate:")
    try:
        candidate = Candidate.from_sdp(text)
    except (ValueError, IndexError) as exc:
        raise BadDescription(f"malformed candidate {line[:120]!r}: {exc}") from None
    if candidate.transport.lower() != "udp":
        # ICE-TCP candidates (RFC 6544) are not supported by aioice: skip them.
        raise BadDescription(f"unsupported candidate transport {candidate.transport!r}")
    return candidate


# -- the negotiation ------------------------------------------------------------


class Negotiation:
    """One peer's side of the offer/answer exchange and candidate trickling."""

    def __init__(
        self,
        role: Role,
        local: sdp.Description,
        *,
        new_credentials: Callable[[], Credentials],
    ) -> None:
        self.role = role
        self.local = local
        self.state = State.NEW
        self.remote: sdp.Description | None = None
        self._new_credentials = new_credentials
        self._pending: Credentials | None = None  # our restart offer's credentials
        self._queued_local: list[Candidate | None] = []
        self._queued_remote: list[dict[str, Any]] = []
        self._description_sent = False

    @property
    def polite(self) -> bool:
        """The original answerer yields when both sides offer at once."""
        return self.role is Role.ANSWERER

    @property
    def dtls_role(self) -> str:
        """``server`` or ``client``, fixed by the first offer/answer (RFC 8842 section 5)."""
        if self.local.setup == "active":
            return "client"
        if self.local.setup == "passive":
            return "server"
        assert self.remote is not None, "DTLS role is known once the answer is"
        return "server" if self.remote.setup == "active" else "client"

    @property
    def snap(self) -> InitChunk | None:
        """The peer's SCTP INIT when both descriptions carried one (SNAP): no SCTP handshake then."""
        if self.local.sctp_init is None or self.remote is None:
            return None
        return self.remote.snap_init

    @property
    def sped(self) -> bool:
        """Whether both descriptions have the ``sped`` ICE option (SPED: DTLS inside the ICE checks)."""
        return self.remote is not None and SPED in self.local.ice_options and SPED in self.remote.ice_options

    @property
    def preagreed(self) -> bool:
        """Whether both sides are icepeer (``a=icepeer``): channels by label are pre-agreed."""
        return self.remote is not None and bool(self.local.icepeer) and bool(self.remote.icepeer)

    def is_reoffer(self, data: Any) -> bool:
        """Whether ``data`` is an offer that would restart ICE (a new generation of candidates)."""
        return (
            isinstance(data, dict) and data.get("type") == "offer"
            and self.remote is not None and self.state in (State.STABLE, State.HAVE_LOCAL_OFFER)
        )

    # -- events -----------------------------------------------------------

    def start(self) -> list[Action]:
        """The peer is here. The offerer sends its offer now; the answerer waits."""
        if self.role is Role.ANSWERER or self.state is not State.NEW:
            return []
        self.state = State.HAVE_LOCAL_OFFER
        return self._send_description("offer")

    def local_candidate(self, candidate: Candidate | None) -> list[Action]:
        """A local candidate was gathered (``None``: gathering is over)."""
        if not self._description_sent:
            self._queued_local.append(candidate)
            return []
        return [Send(candidate_to_json(candidate, self.local.ice_ufrag))]

    def restart(self) -> list[Action]:
        """Restart ICE with fresh credentials (RFC 8445 section 9)."""
        if self.state is not State.STABLE:
            return []
        ufrag, pwd = self._pending = self._new_credentials()
        self.local = replace(self.local, ice_ufrag=ufrag, ice_pwd=pwd, setup=self._settled_setup())
        self.state = State.HAVE_LOCAL_OFFER
        self._description_sent = False
        return self._send_description("offer")

    def receive(self, data: Any) -> list[Action]:
        """A ``signal`` from the peer. Raises :class:`BadDescription` if it is malformed."""
        if not isinstance(data, dict):
            raise BadDescription(f"peer message must be an object, got {type(data).__name__}")
        kind = data.get("type")
        if kind == "bye":
            self.state = State.CLOSED
            return [PeerBye()]
        if "candidate" in data and kind is None:
            return self._remote_candidate(data)
        if kind in ("offer", "answer"):
            text = data.get("sdp")
            if not isinstance(text, str):
                raise BadDescription(f"{kind} without an 'sdp' string")
            description = sdp.parse(text)
            return self._receive_offer(description) if kind == "offer" else self._receive_answer(description)
        raise BadDescription(f"unknown peer message {str(kind)[:40]!r}")

    # -- internals ----------------------------------------------------------

    def _settled_setup(self) -> str:
        return "passive" if self.dtls_role == "server" else "active"

    def _send_description(self, kind: str) -> list[Action]:
        actions: list[Action] = [Send({"type": kind, "sdp": self.local.to_sdp()})]
        self._description_sent = True
        queued, self._queued_local = self._queued_local, []
        actions += [Send(candidate_to_json(c, self.local.ice_ufrag)) for c in queued]
        return actions

    def _receive_offer(self, offer: sdp.Description) -> list[Action]:
        if self.state is State.NEW and self.role is Role.ANSWERER:
            self.remote = offer
            # RFC 8842 section 5.3: the answerer picks active, becoming the DTLS client.
            # SNAP and SPED only if the offer has them (each draft's "Generating the SDP Answer").
            self.local = replace(
                self.local, setup="active" if offer.setup != "active" else "passive",
                sctp_init=self.local.sctp_init if offer.sctp_init is not None else None,
                ice_options=tuple(o for o in self.local.ice_options if o != SPED or SPED in offer.ice_options),
            )
            self.state = State.STABLE
            actions: list[Action] = [StartIce(offer)]
            actions += self._send_description("answer")
            return actions + self._flush_remote(offer)
        if self.state is State.HAVE_LOCAL_OFFER and not self.polite:
            logger.info("both sides offered at once: ignoring the peer's offer (we are impolite)")
            return []
        if self.state in (State.STABLE, State.HAVE_LOCAL_OFFER) and self.remote is not None:
            # A re-offer: ICE restart. A polite peer rolls back its own offer
            # and answers with the credentials it had picked for it.
            if offer.ice_ufrag == self.remote.ice_ufrag:
                raise BadDescription("re-offer without new ICE credentials (only ICE restarts are supported)")
            credentials = self._pending if self.state is State.HAVE_LOCAL_OFFER and self._pending else self._new_credentials()
            self._pending = None
            self.remote = offer
            self.local = replace(self.local, ice_ufrag=credentials[0], ice_pwd=credentials[1], setup=self._settled_setup())
            self.state = State.STABLE
            self._description_sent = False
            actions = [RestartIce(credentials, offer)]
            actions += self._send_description("answer")
            return actions + self._flush_remote(offer)
        raise BadDescription(f"unexpected offer in state {self.state.value}")

    def _receive_answer(self, answer: sdp.Description) -> list[Action]:
        if self.state is not State.HAVE_LOCAL_OFFER:
            raise BadDescription(f"unexpected answer in state {self.state.value}")
        # RFC 8842 section 5.3: the answerer picks active or passive, never
        # actpass; and a role the opposite of ours, or both sides would be
        # DTLS clients (or servers) and the handshake could never finish.
        if answer.setup == "actpass":
            raise BadDescription("a=setup:actpass in an answer (RFC 8842 section 5.3: active or passive)")
        if answer.setup == self.local.setup:
            raise BadDescription(f"a=setup:{answer.setup} in the answer, the same role as our offer")
        first = self.remote is None
        self.remote = answer
        self.state = State.STABLE
        actions: list[Action]
        if first:
            actions = [StartIce(answer)]
        else:
            assert self._pending is not None
            actions = [RestartIce(self._pending, answer)]
            self._pending = None
        return actions + self._flush_remote(answer)

    def _flush_remote(self, description: sdp.Description) -> list[Action]:
        actions: list[Action] = [AddRemoteCandidate(c, description.ice_ufrag) for c in description.candidates]
        if description.end_of_candidates:
            actions.append(AddRemoteCandidate(None, description.ice_ufrag))
        queued, self._queued_remote = self._queued_remote, []
        for data in queued:
            actions += self._remote_candidate(data)
        return actions

    def _remote_candidate(self, data: dict[str, Any]) -> list[Action]:
        if self.remote is None:
            # Trickled before the description arrived: keep it for later.
            self._queued_remote.append(data)
            return []
        ufrag = data.get("usernameFragment") or self.remote.ice_ufrag
        if ufrag != self.remote.ice_ufrag:
            # A candidate of another ICE generation (RFC 8838 section 11): drop it,
            # unless it belongs to a restart we have not heard of yet.
            if self.state is State.HAVE_LOCAL_OFFER:
                self._queued_remote.append(data)
            else:
                logger.debug("dropping a candidate of ICE generation %s", ufrag)
            return []
        try:
            candidate = candidate_from_json(data)
        except BadDescription as exc:
            # One bad candidate does not spoil the others (RFC 8838 section 11.4).
            logger.info("ignoring remote candidate: %s", exc)
            return []
        return [AddRemoteCandidate(candidate, ufrag)]
