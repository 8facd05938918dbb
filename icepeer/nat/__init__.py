"""NAT behaviour discovery (RFC 5780): what kind of NAT is between us and a STUN server.

- :mod:`icepeer.nat.behavior`: the classifier, pure functions of what the
  tests observed;
- :mod:`icepeer.nat.discovery`: the asyncio code that runs the tests against a
  STUN server.
"""

from __future__ import annotations

from .behavior import (
    Binding,
    Filtering,
    Mapping,
    NatType,
    Observations,
    Verdict,
    classify,
)
from .discovery import discover

__all__ = [
    "Binding",
    "Filtering",
    "Mapping",
    "NatType",
    "Observations",
    "Verdict",
    "classify",
    "discover",
]
