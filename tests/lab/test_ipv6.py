"""Dual-stack cells: global IPv6 behind stateful firewalls, and ICE going direct over it."""

from __future__ import annotations

import socket

from icepeer.lab import ipv6 as v6
from icepeer.lab.cell import Mode
from icepeer.lab.kinds import NatKind
from icepeer.lab.netns import inside
from icepeer.lab.options import Options
from icepeer.lab.runner import run_pair
from tests.conftest import require_coturn, require_root_netns

from .conftest import BuiltLab, recv


def udp6(netns: str, address: str) -> socket.socket:
    with inside(netns):
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.bind((address, 0))
    s.settimeout(0.3)
    return s


def test_firewalls_drop_unsolicited_inbound_and_let_replies_in() -> None:
    require_root_netns()
    with BuiltLab([NatKind.SYM, NatKind.DOUBLE, NatKind.NONE], Options(ipv6=True)) as lab:
        sym, double, none = lab.topology.sites
        a = udp6(sym.hosts[0].netns, v6.lan6(0, 2))
        b = udp6(double.hosts[0].netns, v6.lan6(1, 2))
        open_host = udp6(none.hosts[0].netns, v6.public6(2))
        pa, pb = a.getsockname()[:2], b.getsockname()[:2]
        try:
            # Global addresses, no translation: the source seen is the host's own.
            open_host.sendto(b"unsolicited", pa)
            assert recv(a) is None  # dropped by A's router
            a.sendto(b"hello", open_host.getsockname()[:2])
            got = recv(open_host)
            assert got is not None and got[1][0] == v6.lan6(0, 2)
            open_host.sendto(b"reply", pa)
            assert recv(a) is not None  # a reply to A's own flow comes in
            # Two firewalled hosts: the first packet is dropped, and it opened the way back.
            a.sendto(b"first", pb)
            assert recv(b) is None
            b.sendto(b"answer", pa)
            assert recv(a) is not None
            a.sendto(b"again", pb)
            assert recv(b) is not None
        finally:
            for s in (a, b, open_host):
                s.close()


async def test_symmetric_nats_connect_directly_over_ipv6() -> None:
    require_root_netns()
    require_coturn()
    [r] = await run_pair(NatKind.SYM, NatKind.SYM, [Mode.ICE_NO_TURN], options=Options(ipv6=True),
                         timeout=10)
    assert r.connected, r.error  # over IPv4 alone this cell fails (tests/lab/test_cells.py)
    assert r.outcome == "direct" and r.ip_version == 6, r.path
    assert r.path == "host -> host (udp, IPv6)"
    assert (r.sent, r.lost) == (6, 0)
