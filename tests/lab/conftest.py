"""Lab-tier helpers: a lab built once per module, sockets inside its namespaces."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from typing import Self

import pytest

from icepeer.lab.kinds import NatKind
from icepeer.lab.lab import Lab
from icepeer.lab.netns import inside
from icepeer.lab.topology import Options, Topology, new_prefix
from tests.conftest import require_root_netns


class BuiltLab:
    """A lab without servers, built and removed with its own event loop (sockets only)."""

    def __init__(self, kinds: list[NatKind], options: Options | None = None) -> None:
        self.loop = asyncio.new_event_loop()
        self.lab = Lab(Topology.make(new_prefix(), kinds, options), services=False)

    def __enter__(self) -> Self:
        self.loop.run_until_complete(self.lab.__aenter__())
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.run_until_complete(self.lab.close())
        self.loop.close()

    @property
    def topology(self) -> Topology:
        return self.lab.topology


def udp(netns: str, addr: tuple[str, int] = ("0.0.0.0", 0), timeout: float = 0.3) -> socket.socket:
    with inside(netns):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(addr)
    s.settimeout(timeout)
    return s


def tcp(netns: str) -> socket.socket:
    with inside(netns):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(2)
    return s


def recv(s: socket.socket) -> tuple[bytes, tuple[str, int]] | None:
    try:
        data, addr = s.recvfrom(2048)
        return data, addr
    except TimeoutError:
        return None


@pytest.fixture(scope="module")
def every_kind() -> Iterator[BuiltLab]:
    """One site of every kind, no servers."""
    require_root_netns()
    with BuiltLab(list(NatKind)) as lab:
        yield lab
