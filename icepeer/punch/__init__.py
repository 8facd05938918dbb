"""A hand-rolled UDP hole puncher: the baseline icepeer's ICE is measured against.

It swaps candidates over icepeer's signaling server, punches with
authenticated probes, and carries datagrams and acknowledged messages over
the path it finds. See ``docs/puncher.md``.

Layers: :mod:`.wire` (packet format), :mod:`.candidates` (the offer),
:mod:`.binding` (STUN Binding, RFC 8489), :mod:`.reliable` (acknowledged
mode), :mod:`.session` (the state machine, no I/O; its parts are
:mod:`.config`, :mod:`.demux`, :mod:`.punching`, :mod:`.connected`,
:mod:`.outbox` and :mod:`.report`), :mod:`.link` (asyncio; with
:mod:`.startup`, :mod:`.pump`, :mod:`.rendezvous` and :mod:`.inbox`).
"""

from __future__ import annotations

import logging

from .candidates import BadOffer, Candidate, CandidateType, Offer
from .events import Closed, Connected, DatagramReceived, Event, Failed, Gathered, MessageReceived
from .link import PunchLink, punch_connect
from .report import PunchReport
from .session import Ignored, PunchConfig, PunchSession, State

__all__ = [
    "BadOffer",
    "Candidate",
    "CandidateType",
    "Closed",
    "Connected",
    "DatagramReceived",
    "Event",
    "Failed",
    "Gathered",
    "Ignored",
    "MessageReceived",
    "Offer",
    "PunchConfig",
    "PunchLink",
    "PunchReport",
    "PunchSession",
    "State",
    "punch_connect",
]

logging.getLogger(__name__).addHandler(logging.NullHandler())
