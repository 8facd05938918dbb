"""The only place that touches private names of the libraries icepeer builds on.

icepeer repairs aioice 0.13 from the outside (docs/peer.md lists each
repair and the test that shows the fault). Some repairs need its private
state: the check list, the pair it nominated, the TURN client behind a relay
candidate. Every such access lives in :mod:`icepeer.compat.aioice`, one
module per library, and each name is declared once in its ``PRIVATE_NAMES``,
with the signature icepeer relies on. :func:`problems` (run by
``tests/unit/test_compat.py``) verifies them all against the installed
version, so an upgrade that renames one fails there, in one place, instead
of somewhere deep in a connection. ``pyproject.toml`` pins aioice to the
minor series this layer was written for. (DTLS and SCTP are icepeer's own,
:mod:`icepeer.dtls` and :mod:`icepeer.sctp`, on pyOpenSSL's public API:
aiortc is no longer used by the peer, only by the tests and benchmarks as
the stock peer to interoperate with and to beat.)
"""

from __future__ import annotations

import hashlib
import inspect
import re
import textwrap
from dataclasses import dataclass
from typing import Literal

__all__ = ["Private", "Copied", "problems"]

Kind = Literal["method", "attribute"]


@dataclass(frozen=True)
class Private:
    """A private name of a library class that icepeer uses.

    ``method``: looked up on the class; ``params`` are its parameter names
    (``self`` included), checked when given. ``attribute``: an instance
    attribute, found assigned (``self.name =`` or ``self.name:``) in the
    class's ``__init__`` (or that of a base class).
    """

    owner: type
    name: str
    kind: Kind = "attribute"
    params: tuple[str, ...] | None = None
    why: str = ""

    @property
    def qualname(self) -> str:
        return f"{self.owner.__module__}.{self.owner.__qualname__}.{self.name}"

    def problem(self) -> str | None:
        """What is wrong with this name in the installed version, or ``None``."""
        if self.kind == "method":
            member = inspect.getattr_static(self.owner, self.name, None)
            if member is None:
                return f"{self.qualname}: missing"
            if not callable(member) and not isinstance(member, (staticmethod, classmethod)):
                return f"{self.qualname}: no longer a method"
            if self.params is not None:
                found = tuple(inspect.signature(getattr(self.owner, self.name)).parameters)
                if found != self.params:
                    return f"{self.qualname}: parameters {found}, icepeer expects {self.params}"
            return None
        pattern = re.compile(rf"\bself\.{re.escape(self.name)}\s*(:[^=]+)?=(?!=)")
        for klass in self.owner.__mro__:
            init = klass.__dict__.get("__init__")
            if init is None or not inspect.isfunction(init):
                continue
            if pattern.search(inspect.getsource(init)):
                return None
        return f"{self.qualname}: no longer set in __init__"


@dataclass(frozen=True)
class Copied:
    """A library method whose body icepeer copied and changed: its source must not change."""

    owner: type
    name: str
    sha256: str
    why: str = ""

    def digest(self) -> str:
        source = textwrap.dedent(inspect.getsource(getattr(self.owner, self.name)))
        return hashlib.sha256(source.encode()).hexdigest()

    def problem(self) -> str | None:
        if self.digest() != self.sha256:
            return (f"{self.owner.__module__}.{self.owner.__qualname__}.{self.name}: its source changed "
                    f"since icepeer copied it ({self.why})")
        return None


def problems() -> list[str]:
    """Every private name or copied body that does not match the installed libraries."""
    from . import aioice

    found: list[str] = []
    for entry in (*aioice.PRIVATE_NAMES, *aioice.OVERRIDDEN):
        problem = entry.problem()
        if problem is not None:
            found.append(problem)
    for copied in aioice.COPIED:
        problem = copied.problem()
        if problem is not None:
            found.append(problem)
    return found
