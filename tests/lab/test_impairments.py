"""Loss really drops packets; delay works where netem exists and is refused plainly where not."""

from __future__ import annotations

import time

import pytest

from icepeer.lab import executor
from icepeer.lab.errors import LabUnavailable
from icepeer.lab.kinds import NatKind
from icepeer.lab.lab import Lab
from icepeer.lab.topology import STUN_IP, Options, Topology, new_prefix
from tests.conftest import require_root_netns

from .conftest import BuiltLab, udp


def count_through(lab: BuiltLab, kind: NatKind, n: int = 300) -> int:
    site = next(s for s in lab.topology.sites if s.kind is kind)
    server = udp(lab.topology.pub_ns, (STUN_IP, 41000), timeout=0.5)
    host = udp(site.hosts[0].netns)
    host.settimeout(None)
    for i in range(n):
        host.sendto(b"%d" % i, (STUN_IP, 41000))
    got = 0
    try:
        while True:
            server.recvfrom(100)
            got += 1
    except TimeoutError:
        pass
    server.close()
    host.close()
    return got


@pytest.mark.parametrize("kind", [NatKind.PRC, NatKind.NONE], ids=["router", "no-router"])
def test_loss_drops_about_the_asked_share(kind: NatKind) -> None:
    require_root_netns()
    with BuiltLab([kind], Options(loss_percent=30)) as lab:
        got = count_through(lab, kind)
    # 300 packets, 30 % loss: 210 expected, sd ~8; far outside this range means it is not applied
    assert 160 < got < 260, got


def test_no_loss_by_default() -> None:
    require_root_netns()
    with BuiltLab([NatKind.PRC]) as lab:
        assert count_through(lab, NatKind.PRC, 100) == 100


async def test_delay_applies_or_is_refused() -> None:
    require_root_netns()
    available, why = await executor.netem_available(new_prefix())
    topology = Topology.make(new_prefix(), [NatKind.PRC], Options(delay_ms=50))
    if not available:
        assert why  # tc's own words, e.g. "Specified qdisc kind is unknown."
        with pytest.raises(LabUnavailable, match="netem"):
            async with Lab(topology, services=False):
                pass
        assert await executor.lab_namespaces(topology.prefix) == []
        return
    async with Lab(topology, services=False) as lab:
        site = lab.topology.sites[0]
        server = udp(lab.topology.pub_ns, (STUN_IP, 41001), timeout=2)
        host = udp(site.hosts[0].netns, timeout=2)
        started = time.monotonic()
        host.sendto(b"ping", (STUN_IP, 41001))
        _, addr = server.recvfrom(100)
        server.sendto(b"pong", addr)
        host.recvfrom(100)
        rtt = time.monotonic() - started
        server.close()
        host.close()
    assert rtt >= 0.05  # 50 ms on the router's WAN egress, once per round trip
