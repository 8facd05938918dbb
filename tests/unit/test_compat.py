"""The compat layer: every private name of aioice icepeer uses exists, and is used only there.

The scan also covers aiortc, which the peer no longer uses at all: no module
of icepeer may reach into its private names either.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import re
from pathlib import Path

import aioice
import aiortc
import pytest
from aioice import turn
from aioice.ice import StunProtocol

from icepeer import compat
from icepeer.compat import Copied, Private
from icepeer.compat import aioice as compat_aioice

pytestmark = pytest.mark.unit

PACKAGE = Path(__file__).resolve().parents[2] / "icepeer"
ALL = (*compat_aioice.PRIVATE_NAMES, *compat_aioice.OVERRIDDEN)

#: The library classes icepeer subclasses or reaches into.
LIBRARY_CLASSES = (
    aioice.Connection, StunProtocol, turn.TurnClientMixin, turn.TurnTransport,
    aiortc.RTCDtlsTransport, aiortc.RTCSctpTransport, aiortc.RTCIceTransport, aiortc.RTCDataChannel,
)


def test_every_name_exists_in_the_installed_versions():
    assert compat.problems() == []


def test_each_name_is_listed_once():
    keys = [(entry.owner, entry.name) for entry in ALL]
    assert len(keys) == len(set(keys))


def test_a_method_renamed_upstream_is_reported(monkeypatch):
    monkeypatch.delattr(aioice.Connection, "_check_periodic")
    assert compat.problems() == ["aioice.ice.Connection._check_periodic: missing"]


def test_a_changed_signature_is_reported(monkeypatch):
    monkeypatch.setattr(aioice.Connection, "_find_pair", lambda self, protocol, remote, extra: None)
    [problem] = compat.problems()
    assert "_find_pair: parameters ('self', 'protocol', 'remote', 'extra')" in problem


def test_an_attribute_no_longer_set_is_reported(monkeypatch):
    def init(self: object, *args: object, **kwargs: object) -> None:
        self.something_else = 1  # type: ignore[attr-defined]

    monkeypatch.setattr(aioice.Connection, "__init__", init)
    problems = compat.problems()
    assert any(p.endswith("Connection._nominated: no longer set in __init__") for p in problems), problems


def test_a_changed_copied_body_is_reported(monkeypatch):
    async def connect(self: object) -> None:
        pass

    monkeypatch.setattr(aioice.Connection, "connect", connect)
    [problem] = compat.problems()
    assert "Connection.connect: its source changed" in problem


def test_private_checks_see_base_classes_and_annotations():
    class Base:
        def __init__(self) -> None:
            self._x: dict[
                str, int
            ] = {}

    class Child(Base):
        pass

    assert Private(Child, "_x").problem() is None
    assert Private(Child, "_y").problem() == f"{__name__}.{Child.__qualname__}._y: no longer set in __init__"
    assert Copied(Base, "__init__", "0" * 64).problem() is not None


# -- private names are used in compat/ only -------------------------------------


def _library_private_names() -> set[str]:
    names: set[str] = set()
    for klass in LIBRARY_CLASSES:
        for base in klass.__mro__:
            if base.__module__.split(".")[0] not in ("aioice", "aiortc"):
                continue
            source = inspect.getsource(base)
            names |= set(re.findall(r"\bself\.(_[A-Za-z]\w*)", source))
            names |= set(re.findall(r"\bdef (_[A-Za-z]\w*)", source))
    return {n for n in names if not n.startswith("__")}


def _library_subclasses(tree: ast.Module) -> list[ast.ClassDef]:
    """Classes whose bases come from aioice, aiortc or compat (they inherit private state)."""
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and (
            node.module.split(".")[0] in ("aioice", "aiortc") or "compat" in node.module
        ):
            imported |= {alias.asname or alias.name for alias in node.names}
        elif isinstance(node, ast.Import):
            imported |= {a.asname or a.name for a in node.names if a.name.split(".")[0] in ("aioice", "aiortc")}
    return [
        node for node in ast.walk(tree) if isinstance(node, ast.ClassDef)
        and any(ast.unparse(base).split(".")[0] in imported for base in node.bases)
    ]


def test_no_module_outside_compat_touches_a_private_name_of_aioice_or_aiortc():
    private = _library_private_names()
    assert {"_check_list", "_nominated", "_set_role", "_rto"} <= private  # the scan sees both libraries
    offences = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "compat" in path.parts:
            continue
        tree = ast.parse(path.read_text())
        inheriting = {id(n) for c in _library_subclasses(tree) for n in ast.walk(c)}
        for node in ast.walk(tree):
            if not isinstance(node, ast.Attribute) or node.attr not in private:
                continue
            on_self = isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")
            # Our own classes may have private attributes of the same name; a
            # class that inherits from the libraries may not, nor may anything
            # reach into another object's.
            if on_self and id(node) not in inheriting:
                continue
            offences.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: {ast.unparse(node)}")
    assert offences == []


def test_the_scan_finds_an_offence():
    # The scan above must be able to fail: the same rules on a module that offends.
    source = "class Agent(IceConnection):\n    def f(self):\n        return self._check_list\n"
    tree = ast.parse("from .compat.aioice import IceConnection\n" + source)
    [klass] = _library_subclasses(tree)
    assert klass.name == "Agent"
    found = [n for n in ast.walk(klass) if isinstance(n, ast.Attribute) and n.attr in _library_private_names()]
    assert [ast.unparse(n) for n in found] == ["self._check_list"]


async def test_a_peer_that_gave_no_candidate_is_still_expected_to_check():
    # Chromium with only a loopback interface gathers no candidate: its offer and an
    # empty end-of-candidates come together, and its checks (peer-reflexive
    # candidates) a round trip later. Stock aioice prunes the component and fails
    # the empty check list at once; the browser tests failed one run in two.
    from aioice import Candidate, Connection

    from icepeer.compat.aioice import IceConnection

    stock = Connection(ice_controlling=False)
    await stock.add_remote_candidate(None)
    assert not stock._remote_candidates_expected() and stock._components == set()
    ours = IceConnection(ice_controlling=False)
    await ours.add_remote_candidate(None)
    assert not ours._remote_candidates_expected()  # no candidate of ours: no check can come
    ours._local_candidates.append(Candidate("1", 1, "udp", 2130706431, "127.0.0.1", 9, "host"))
    assert ours._remote_candidates_expected() and ours._components == {1}
    await asyncio.gather(stock.close(), ours.close())
