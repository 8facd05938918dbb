"""Candidates and the offer the two peers swap over signaling.

A candidate is an address at which a peer might be reached (RFC 8445
section 5.1.1): ``host`` (an address of one of its interfaces),
``srflx`` (server-reflexive: its NAT's public mapping, learned with STUN) and
``prflx`` (peer-reflexive: an address seen only when a packet arrived, e.g. a
port the NAT rewrote, RFC 8445 section 7.2.5.3.1).

The offer travels in the signaling ``data`` field::

    {"punch": {"v": 1, "token": "<16 hex>", "key": "<32 hex>",
               "candidates": [{"type": "host", "address": "10.0.0.2", "port": 40000,
                               "protocol": "udp"}, ...]}}
"""

from __future__ import annotations

import enum
import ipaddress
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .wire import KEY_SIZE, TOKEN_SIZE

__all__ = [
    "MAX_CANDIDATES",
    "BadOffer",
    "Candidate",
    "CandidateType",
    "Offer",
    "candidate_at",
    "dedupe",
    "ip_version",
]

#: An offer with more candidates is refused: each costs up to 30 probes.
MAX_CANDIDATES = 16

Address = tuple[str, int]


class CandidateType(str, enum.Enum):
    HOST = "host"
    SRFLX = "srflx"
    PRFLX = "prflx"


class BadOffer(ValueError):
    """The peer's offer is not valid."""


@dataclass(frozen=True)
class Candidate:
    type: CandidateType
    address: str
    port: int

    @property
    def addr(self) -> Address:
        return (self.address, self.port)

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type.value, "address": self.address, "port": self.port,
                "protocol": "udp"}

    @classmethod
    def from_json(cls, obj: Any) -> Candidate:
        if not isinstance(obj, dict):
            raise BadOffer(f"a candidate must be an object, got {obj!r}")
        try:
            kind = CandidateType(obj.get("type"))
        except ValueError:
            raise BadOffer(f"unknown candidate type {obj.get('type')!r}") from None
        if kind is CandidateType.PRFLX:
            raise BadOffer("peer-reflexive candidates are learned, never offered")
        address, port = obj.get("address"), obj.get("port")
        if not isinstance(address, str):
            raise BadOffer(f"bad candidate address {address!r}")
        try:
            address = str(ipaddress.ip_address(address))
        except ValueError:
            raise BadOffer(f"a candidate address must be an IP literal, got {address!r}") from None
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise BadOffer(f"bad candidate port {port!r}")
        if obj.get("protocol", "udp") != "udp":
            raise BadOffer(f"unsupported protocol {obj.get('protocol')!r}")
        return cls(kind, address, port)

    def __str__(self) -> str:
        return f"{self.type.value} {self.address}:{self.port}"


def candidate_at(addr: Address, known: Iterable[Candidate]) -> Candidate:
    """The candidate of ``known`` at ``addr``, else a peer-reflexive one.

    RFC 8445 section 7.2.5.3.1: an address never offered, seen as a packet's source.
    """
    return {c.addr: c for c in known}.get(addr) or Candidate(CandidateType.PRFLX, *addr)


def ip_version(address: str) -> int | None:
    """4 or 6; None if ``address`` is not an IP address."""
    try:
        return ipaddress.ip_address(address).version
    except ValueError:
        return None


def dedupe(candidates: Iterable[Candidate]) -> list[Candidate]:
    """Drop candidates whose address an earlier one already has (RFC 8445 section 5.1.3)."""
    seen: set[Address] = set()
    out: list[Candidate] = []
    for cand in candidates:
        if cand.addr not in seen:
            seen.add(cand.addr)
            out.append(cand)
    return out


def _hex(obj: dict[str, Any], name: str, size: int) -> bytes:
    value = obj.get(name)
    if not isinstance(value, str) or len(value) != 2 * size:
        raise BadOffer(f"'{name}' must be {2 * size} hex digits")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise BadOffer(f"'{name}' must be {2 * size} hex digits") from None


@dataclass(frozen=True)
class Offer:
    """What one peer tells the other: who it is on the wire, its secret, where to punch."""

    token: bytes
    key: bytes
    candidates: tuple[Candidate, ...] = field(default=())

    @classmethod
    def fresh(cls, candidates: Iterable[Candidate] = ()) -> Offer:
        """An offer with a new random token and key (RFC 8445 section 5.3: 128 bits of key)."""
        return cls(secrets.token_bytes(TOKEN_SIZE), secrets.token_bytes(KEY_SIZE),
                   tuple(candidates))

    def with_candidates(self, candidates: Iterable[Candidate]) -> Offer:
        return Offer(self.token, self.key, tuple(candidates))

    def to_json(self) -> dict[str, Any]:
        """The signaling ``data``: ``{"punch": {...}}``."""
        return {"punch": {"v": 1, "token": self.token.hex(), "key": self.key.hex(),
                          "candidates": [c.to_json() for c in self.candidates]}}

    @staticmethod
    def is_offer(data: Any) -> bool:
        return isinstance(data, dict) and "punch" in data

    @classmethod
    def from_json(cls, data: Any) -> Offer:
        """Parse and validate signaling ``data``; raise :class:`BadOffer`."""
        if not cls.is_offer(data):
            raise BadOffer("not a punch offer")
        obj = data["punch"]
        if not isinstance(obj, dict):
            raise BadOffer("'punch' must be an object")
        if obj.get("v") != 1:
            raise BadOffer(f"unsupported punch offer version {obj.get('v')!r}")
        cands = obj.get("candidates")
        if not isinstance(cands, list):
            raise BadOffer("'candidates' must be a list")
        if len(cands) > MAX_CANDIDATES:
            raise BadOffer(f"{len(cands)} candidates, at most {MAX_CANDIDATES}")
        return cls(_hex(obj, "token", TOKEN_SIZE), _hex(obj, "key", KEY_SIZE),
                   tuple(dedupe(Candidate.from_json(c) for c in cands)))
