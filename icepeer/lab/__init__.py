"""The NAT lab: emulated NATs in Linux network namespaces, and the real CLI run across them.

Layers, data flowing down:

- :mod:`.kinds` (router kinds), :mod:`.rules` (iptables/nft rulesets per
  kind), :mod:`.topology` (names, addresses, the commands that build the
  lab), :mod:`.cell` (modes, a peer's JSON transcript, results),
  :mod:`.matrix` (pairs, reports), :mod:`.png`: plain data, no I/O;
- :mod:`.executor` runs commands and cleans up, :mod:`.netns` opens sockets
  inside a namespace, :mod:`.lab` holds a running lab with its servers,
  :mod:`.runner` runs two peers in it.

See docs/lab.md.
"""

from __future__ import annotations

from .cell import CellResult, Mode
from .errors import LabError, LabUnavailable
from .kinds import NatKind
from .topology import Options, Topology

__all__ = ["CellResult", "LabError", "LabUnavailable", "Mode", "NatKind", "Options", "Topology"]
