"""The NAT lab: emulated NATs in Linux network namespaces, and the real CLI run across them.

Layers, data flowing down:

- :mod:`.kinds` (router kinds), :mod:`.options` (delay, jitter, rate, loss,
  IPv6) and :mod:`.profiles` (named sets of them), :mod:`.rules`
  (iptables/nft rulesets per kind), :mod:`.shaping` (access links and their
  rate), :mod:`.ipv6` (the IPv6 plan), :mod:`.delayline` (when a delayed
  frame leaves), :mod:`.topology` (names, addresses, the commands that
  build the lab), :mod:`.cell` (modes, a peer's JSON transcript, results),
  :mod:`.matrix` (pairs, reports), :mod:`.png` and :mod:`.plot` (pictures):
  plain data, no I/O;
- :mod:`.executor` runs commands and cleans up, :mod:`.netns` opens sockets
  inside a namespace, :mod:`.wire` is the delay line's process, :mod:`.lab`
  holds a running lab with its servers, :mod:`.runner` runs two peers in it.

See docs/lab.md.
"""

from __future__ import annotations

from .cell import CellResult, Mode
from .errors import LabError, LabUnavailable
from .kinds import NatKind
from .options import Options
from .profiles import PROFILES, Profile
from .topology import Topology

__all__ = [
    "PROFILES",
    "CellResult",
    "LabError",
    "LabUnavailable",
    "Mode",
    "NatKind",
    "Options",
    "Profile",
    "Topology",
]
