"""``icepeer nat-type`` names every router kind of the lab, run as a user runs it."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from icepeer.coturn import Coturn
from icepeer.lab.kinds import NatKind
from icepeer.lab.lab import Lab
from icepeer.lab.topology import Topology, new_prefix
from tests.conftest import require_coturn, require_root_netns

CLI = [sys.executable, "-c", "import sys; from icepeer.cli import main; sys.exit(main())"]


async def nat_type(lab: Lab, netns: str, url: str) -> tuple[dict[str, Any], str]:
    proc = await lab.spawn(netns, [*CLI, "nat-type", "--ice-server", url, "--json", "--timeout", "1.5"])
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return json.loads(out), err.decode()


async def test_nat_type_names_every_kind() -> None:
    require_root_netns()
    require_coturn()
    async with Lab(Topology.make(new_prefix(), list(NatKind))) as lab:
        sites = lab.topology.sites
        results = await asyncio.gather(*(nat_type(lab, s.hosts[0].netns, lab.stun_url) for s in sites))
        named = {s.kind.value: r["nat_type"] for s, (r, _) in zip(sites, results)}
        assert named == {k.value: k.expected_nat_type for k in NatKind}
        by_kind = {s.kind: r for s, (r, _) in zip(sites, results)}
        assert by_kind[NatKind.ADDR]["filtering"] == "address-dependent"
        assert by_kind[NatKind.SYM]["mapping"] == "address-and-port-dependent"
        assert by_kind[NatKind.FULL]["filtering"] == "endpoint-independent"
        assert by_kind[NatKind.NONE]["nat"] is False
        assert by_kind[NatKind.PRC]["other_address"] == "198.51.100.3:3479"
        assert by_kind[NatKind.PRC]["mapped"].startswith(sites[3].public_ip + ":")


async def test_one_address_server_is_honest() -> None:
    require_root_netns()
    require_coturn()
    topology = Topology.make(new_prefix(), [NatKind.PRC, NatKind.NONE])
    async with Lab(topology) as lab:
        proc = await asyncio.create_subprocess_exec(
            "ip", "-n", topology.pub_ns, "addr", "add", "198.51.100.4/24", "dev", topology.link("pbr"))
        assert await proc.wait() == 0
        async with Coturn(host="198.51.100.4", port=3478, netns=topology.pub_ns,
                          users={"u": "p"}, allow_loopback_peers=False):
            behind, _ = await nat_type(lab, topology.sites[0].hosts[0].netns, "stun:198.51.100.4")
            public, _ = await nat_type(lab, topology.sites[1].hosts[0].netns, "stun:198.51.100.4")
    assert behind["nat_type"] == "NAT of unknown type"
    assert behind["mapping"] == behind["filtering"] == "unknown"
    assert "only one address" in behind["notes"][0]
    assert public["nat_type"] == "no NAT, filtering unknown"
