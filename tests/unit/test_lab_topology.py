"""The lab as a list of commands: names, addresses, isolation, impairments. No root needed."""

from __future__ import annotations

import pytest

from icepeer.lab.command import Command
from icepeer.lab.kinds import NatKind
from icepeer.lab.runner import cell_topology, peer_namespaces
from icepeer.lab.shaping import tbf_sizes
from icepeer.lab.topology import (
    IFNAMSIZ,
    PREFIX_PATTERN,
    Options,
    Topology,
    new_prefix,
)

PREFIX = "ipl0a1b2"


def build(kinds: list[NatKind], options: Options | None = None) -> tuple[Topology, list[Command]]:
    t = Topology.make(PREFIX, kinds, options)
    return t, t.build()


def created_links(cmds: list[Command]) -> list[str]:
    names = []
    for c in cmds:
        a = c.argv
        if a[:3] == ("ip", "link", "add"):
            names.append(a[3])
            if "peer" in a:
                names.append(a[a.index("peer") + 2])
    return names


def test_every_name_carries_the_run_prefix_and_fits() -> None:
    t, cmds = build(list(NatKind))
    assert all(ns.startswith(PREFIX + "-") for ns in t.namespaces)
    links = created_links(cmds)
    assert len(links) == len(set(links)) > 20
    for name in links:
        assert PREFIX_PATTERN.match(name), name
        assert len(name) <= IFNAMSIZ, name


def test_nothing_is_created_in_the_root_namespace() -> None:
    _, cmds = build(list(NatKind))
    for c in cmds:
        if c.netns is None:
            assert c.argv[:3] == ("ip", "netns", "add"), c
        # both ends of a veth are placed in lab namespaces: the peer end with "netns",
        # or both in the namespace the command runs in
        if c.argv[:3] == ("ip", "link", "add") and "veth" in c.argv and "netns" in c.argv:
            assert c.argv[c.argv.index("netns") + 1].startswith(PREFIX + "-")


def test_public_namespace_routes_everything_else_into_the_sink() -> None:
    t, cmds = build([NatKind.PRC])
    pub = [c for c in cmds if c.netns == t.pub_ns]
    defaults = [c for c in pub if c.argv[:4] == ("ip", "route", "add", "default")]
    assert len(defaults) == 1 and defaults[0].argv[-1] == t.link("sk0")
    assert any(c.argv[:3] == ("ip", "neigh", "add") and "permanent" in c.argv for c in pub)
    # the coturn pair of addresses, for RFC 5780
    assert {"198.51.100.2/24", "198.51.100.3/24"} <= {c.argv[3] for c in pub if c.argv[1:3] == ("addr", "add")}


def test_every_default_route_stays_inside_the_lab() -> None:
    _, cmds = build(list(NatKind), Options(ipv6=True))
    defaults = [c for c in cmds if "default" in c.argv and "route" in c.argv]
    assert len(defaults) > 20
    for c in defaults:
        via = c.argv[c.argv.index("via") + 1]
        assert via.startswith(("198.51.100.", "10.", "100.64.", "192.0.2.", "2001:db8:")), c


def test_kinds_shape_the_sites() -> None:
    t, _ = build([NatKind.NONE, NatKind.DOUBLE, NatKind.SAME_LAN])
    none, double, lan = t.sites
    assert none.router_ns is None and none.hosts[0].address == "198.51.100.10"
    assert double.cgn_ns and [r.wan_ip for _, r in double.routers] == ["198.51.100.11", "100.64.2.2"]
    assert [h.address for h in lan.hosts] == ["10.3.0.2", "10.3.0.3"]
    assert none.capture_point == (none.hosts[0].netns, none.hosts[0].iface)
    assert double.capture_point == (double.cgn_ns, double.link("cw"))


def test_loss_lands_once_per_site() -> None:
    t, cmds = build([NatKind.PRC, NatKind.DOUBLE, NatKind.NONE], Options(loss_percent=5))
    restores = [c for c in cmds if c.argv == ("iptables-restore",)]
    with_loss = [c.netns for c in restores if "statistic" in (c.stdin or "")]
    assert with_loss == [t.sites[0].ns("rt"), t.sites[1].ns("rt")]  # not the carrier NAT
    netdev = [c.netns for c in cmds if c.argv == ("nft", "-f", "-") and "netdev" in (c.stdin or "")]
    assert netdev == [t.sites[2].hosts[0].netns, t.pub_ns]


def test_udp_timeout_is_set_in_each_router_namespace() -> None:
    t, cmds = build([NatKind.DOUBLE], Options(udp_timeout=30))
    sets = [(c.netns, c.argv[-1]) for c in cmds if c.argv[0] == "sysctl" and "udp_timeout" in c.argv[-1]]
    site = t.sites[0]
    assert sorted(sets) == sorted(
        (ns, f"net.netfilter.nf_conntrack_udp_timeout{s}=30")
        for ns in (site.ns("cgn"), site.ns("rt")) for s in ("", "_stream"))


def uplink_devices(cmds: list[Command]) -> dict[str, str]:
    """Device name -> how it was made (veth or tap)."""
    made = {}
    for c in cmds:
        if c.argv[:3] == ("ip", "link", "add") and "veth" in c.argv:
            made[c.argv[3]] = made[c.argv[c.argv.index("peer") + 2]] = "veth"
        if c.argv[:3] == ("ip", "tuntap", "add"):
            made[c.argv[4]] = c.argv[-1]
    return made


def test_delay_makes_each_uplink_a_tap_pair_for_the_delay_line() -> None:
    t, cmds = build([NatKind.PRC, NatKind.NONE, NatKind.DOUBLE], Options(delay_ms=40, jitter_ms=6))
    made = uplink_devices(cmds)
    wires = t.wires()
    assert len(wires) == 3
    for site, wire in zip(t.sites, wires):
        ns, dev, outer = site.uplink
        assert (wire.a_ns, wire.a_dev, wire.b_ns, wire.b_dev) == (ns, dev, t.pub_ns, outer)
        # half the one-way delay on each uplink, each way: 2 x 20 ms between two hosts
        assert (wire.delay_ms, wire.jitter_ms) == (20, 3)
        assert made[dev] == made[outer] == "tap"
    # inside the sites, links stay veth; nothing netem
    assert made[t.sites[0].hosts[0].iface] == "veth"
    assert not [c for c in cmds if "netem" in c.argv]


def test_without_delay_uplinks_are_veth_and_no_wire_runs() -> None:
    t, cmds = build([NatKind.PRC, NatKind.NONE])
    assert t.wires() == []
    made = uplink_devices(cmds)
    assert all(made[site.uplink[1]] == "veth" for site in t.sites)
    assert "tap" not in made.values()


def test_rate_puts_a_token_bucket_on_both_ends_of_each_uplink() -> None:
    t, cmds = build([NatKind.PRC, NatKind.DOUBLE], Options(rate_mbit=50, delay_ms=10))
    tbf = sorted((c.netns or "", c.argv[4]) for c in cmds if c.argv[:3] == ("tc", "qdisc", "add"))
    want = sorted((ns, d) for site in t.sites for ns, d in ((site.uplink[0], site.uplink[1]),
                                                              (t.pub_ns, site.uplink[2])))
    assert tbf == want
    argv = next(c.argv for c in cmds if c.argv[0] == "tc")
    # 1 ms of 50 Mbit/s burst; a queue of one 20 ms round trip at the rate
    assert argv[5:] == ("root", "tbf", "rate", "50mbit", "burst", "6250", "limit", "125000")
    _, plain = build([NatKind.PRC])
    assert not [c for c in plain if c.argv[0] == "tc"]


def test_token_bucket_sizes() -> None:
    assert tbf_sizes(10, 80) == (3028, 100_000)  # at least two frames of burst; BDP queue
    assert tbf_sizes(20, 0) == (3028, 50_000)  # no delay: 20 ms of queue
    burst, limit = tbf_sizes(0.1, 0)
    assert limit > burst  # a slow link still queues a frame beyond its burst


def test_ipv6_is_off_unless_dual_stack() -> None:
    _, cmds = build([NatKind.PRC])
    assert not [c for c in cmds if "-6" in c.argv or "ip6tables-restore" in c.argv]
    assert any(c.argv[-1] == "net.ipv6.conf.default.disable_ipv6=1" for c in cmds)


def test_dual_stack_routes_global_prefixes_and_firewalls_the_home_router() -> None:
    t, cmds = build([NatKind.PRC, NatKind.DOUBLE, NatKind.NONE], Options(ipv6=True))
    prc, double, none = t.sites
    assert any(c.argv[-1] == "net.ipv6.conf.default.disable_ipv6=0" for c in cmds)
    assert not [c for c in cmds if c.argv[-1].endswith("disable_ipv6=1")]
    addrs = {(c.netns, c.argv[4]) for c in cmds if c.argv[1:4] == ("-6", "addr", "add")}
    assert (prc.hosts[0].netns, "2001:db8:1::2/64") in addrs
    assert (prc.ns("rt"), "2001:db8::a/64") in addrs
    assert (none.hosts[0].netns, "2001:db8::c/64") in addrs
    routes = {(c.netns, c.argv[4], c.argv[6]) for c in cmds if c.argv[1:4] == ("-6", "route", "add")}
    assert (t.pub_ns, "2001:db8:1::/64", "2001:db8::a") in routes
    assert (t.pub_ns, "2001:db8:2::/64", "2001:db8::b") in routes  # to the carrier
    assert (double.ns("cgn"), "2001:db8:2::/64", "2001:db8:100:2::2") in routes
    firewalls = [c.netns for c in cmds if c.argv == ("ip6tables-restore",)]
    assert firewalls == [prc.ns("rt"), double.ns("rt")]  # not the carrier NAT, not the none host
    # every address added is a documentation address (RFC 3849)
    assert all(a.startswith("2001:db8:") for _, a in addrs)


@pytest.mark.parametrize("kw", [{"loss_percent": 100}, {"loss_percent": -1}, {"delay_ms": -1},
                                {"jitter_ms": 3}, {"delay_ms": 5, "jitter_ms": 6},
                                {"rate_mbit": 0}, {"udp_timeout": 0}])
def test_bad_options(kw: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Options(**kw)  # type: ignore[arg-type]


def test_teardown_deletes_every_namespace() -> None:
    t, _ = build(list(NatKind))
    deleted = [c.argv[-1] for c in t.teardown()]
    assert sorted(deleted) == sorted(t.namespaces)
    assert all(not c.check for c in t.teardown())


def test_command_rendering() -> None:
    c = Command(("nft", "-f", "-"), "ns1", stdin="table ip t {}\n")
    assert c.full_argv() == ("ip", "netns", "exec", "ns1", "nft", "-f", "-")
    assert str(c).endswith("<<'EOF'\ntable ip t {}\nEOF")
    assert Command(("ip", "link", "show"), "ns1").full_argv() == ("ip", "-n", "ns1", "link", "show")


def test_prefixes() -> None:
    p = new_prefix()
    assert PREFIX_PATTERN.match(p + "-x")
    with pytest.raises(ValueError):
        Topology.make("lab1", [NatKind.PRC])


def test_cell_topology() -> None:
    t = cell_topology(NatKind.PRC, NatKind.SYM, prefix=PREFIX)
    assert [s.kind for s in t.sites] == [NatKind.PRC, NatKind.SYM]
    assert peer_namespaces(t) == (f"{PREFIX}-a-h1", f"{PREFIX}-b-h1")
    shared = cell_topology(NatKind.SAME_LAN, NatKind.SAME_LAN, prefix=PREFIX)
    assert peer_namespaces(shared) == (f"{PREFIX}-a-h1", f"{PREFIX}-a-h2")
    with pytest.raises(ValueError, match="pair it with itself"):
        cell_topology(NatKind.SAME_LAN, NatKind.PRC)
