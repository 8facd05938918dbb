"""Each router kind behaves as its name says, seen with plain UDP sockets (RFC 4787).

Servers are sockets in the public namespace on the two coturn addresses
(no coturn runs here); hosts are sockets in the site's host namespace.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import pytest

from icepeer.lab.kinds import NatKind
from icepeer.lab.topology import STUN_ALT_IP, STUN_IP, Options, Site
from tests.conftest import require_root_netns

from .conftest import BuiltLab, recv, tcp, udp

# What each kind lets in after the host sent to S1 = (STUN_IP, 40001):
#   (reply from S1, from S1's IP other port, from another IP, same mapping towards another IP)
EXPECTED = {
    NatKind.NONE: (True, True, True, True),
    NatKind.FULL: (True, True, True, True),
    NatKind.ADDR: (True, True, False, True),
    NatKind.PRC: (True, False, False, True),
    NatKind.DOUBLE: (True, False, False, True),
    NatKind.SAME_LAN: (True, False, False, True),
    NatKind.SAME_LAN_HAIRPIN: (True, False, False, True),
    NatKind.SYM: (True, False, False, False),
}


class Servers:
    def __init__(self, lab: BuiltLab, base: int) -> None:
        pub = lab.topology.pub_ns
        self.s1 = udp(pub, (STUN_IP, base))
        self.s1_port = udp(pub, (STUN_IP, base + 1))
        self.s2 = udp(pub, (STUN_ALT_IP, base))

    def close(self) -> None:
        for s in (self.s1, self.s1_port, self.s2):
            s.close()


@pytest.fixture
def servers(every_kind: BuiltLab, request: pytest.FixtureRequest) -> Iterator[Servers]:
    s = Servers(every_kind, 40000 + 10 * (abs(hash(request.node.name)) % 2000))
    yield s
    s.close()


def site(lab: BuiltLab, kind: NatKind) -> Site:
    return next(s for s in lab.topology.sites if s.kind is kind)


@pytest.mark.parametrize("kind", list(EXPECTED), ids=lambda k: k.value)
def test_mapping_and_filtering(every_kind: BuiltLab, servers: Servers, kind: NatKind) -> None:
    st = site(every_kind, kind)
    h = udp(st.hosts[0].netns)
    h.sendto(b"hello", servers.s1.getsockname())
    got = recv(servers.s1)
    assert got is not None, "the first packet out did not arrive"
    mapped = got[1]
    assert mapped[0] == st.public_ip  # translated to the site's public address (or none at all)
    if kind is not NatKind.SYM:
        assert mapped[1] == h.getsockname()[1]  # Linux keeps the port when it can
    servers.s1.sendto(b"reply", mapped)
    servers.s1_port.sendto(b"other port", mapped)
    servers.s2.sendto(b"other address", mapped)
    seen = set()
    while (r := recv(h)) is not None:
        seen.add(r[0])
    h.sendto(b"again", servers.s2.getsockname())
    got2 = recv(servers.s2)
    assert got2 is not None
    actual = (b"reply" in seen, b"other port" in seen, b"other address" in seen, got2[1] == mapped)
    assert actual == EXPECTED[kind]
    h.close()


def test_symmetric_maps_every_destination_to_a_new_port(every_kind: BuiltLab, servers: Servers) -> None:
    h = udp(site(every_kind, NatKind.SYM).hosts[0].netns)
    ports = set()
    for s in (servers.s1, servers.s1_port, servers.s2):
        h.sendto(b"x", s.getsockname())
        got = recv(s)
        assert got is not None
        ports.add(got[1][1])
    assert len(ports) == 3


def test_unsolicited_inbound_does_not_turn_a_cone_symmetric(every_kind: BuiltLab, servers: Servers) -> None:
    """A peer's check reaching the router before the host sent anything must not steal the mapping.

    A router that only MASQUERADEs delivers that unsolicited check to its own
    closed port, conntrack confirms the flow, and the host's later packet to
    that peer gets a new source port: the NAT turns symmetric. Real home routers
    (and the lab's) drop unsolicited WAN traffic in the filter table instead.
    """
    st = site(every_kind, NatKind.PRC)
    h = udp(st.hosts[0].netns)
    port = h.getsockname()[1]
    # B's first check arrives before A has sent anything to B
    servers.s2.sendto(b"early check", (st.public_ip, port))
    assert recv(h) is None
    h.sendto(b"to stun", servers.s1.getsockname())
    got_stun = recv(servers.s1)
    h.sendto(b"to peer", servers.s2.getsockname())
    got_peer = recv(servers.s2)
    assert got_stun is not None and got_peer is not None
    assert got_stun[1] == got_peer[1] == (st.public_ip, port)
    servers.s2.sendto(b"now solicited", got_peer[1])
    assert recv(h) == (b"now solicited", servers.s2.getsockname())


def test_udpblock_blocks_udp_but_not_tcp(every_kind: BuiltLab, servers: Servers) -> None:
    st = site(every_kind, NatKind.UDPBLOCK)
    h = udp(st.hosts[0].netns)
    h.sendto(b"x", servers.s1.getsockname())
    assert recv(servers.s1) is None
    listener = tcp(every_kind.topology.pub_ns)
    listener.bind((STUN_IP, 40999))
    listener.listen()
    client = tcp(st.hosts[0].netns)
    client.connect((STUN_IP, 40999))
    conn, peer = listener.accept()
    assert peer[0] == st.public_ip
    for s in (client, conn, listener, h):
        s.close()


def test_double_nat_translates_twice(every_kind: BuiltLab, servers: Servers) -> None:
    st = site(every_kind, NatKind.DOUBLE)
    assert st.cgn_ns is not None
    h = udp(st.hosts[0].netns)
    h.sendto(b"x", servers.s1.getsockname())
    got = recv(servers.s1)
    assert got is not None and got[1][0] == st.public_ip
    # the home router's WAN address is carrier-grade NAT space, not public
    home_wan = [r.wan_ip for _, r in st.routers][1]
    assert home_wan.startswith("100.64.")


@pytest.mark.parametrize("kind", [NatKind.SAME_LAN_HAIRPIN, NatKind.SAME_LAN], ids=lambda k: k.value)
def test_hairpinning(every_kind: BuiltLab, servers: Servers, kind: NatKind) -> None:
    st = site(every_kind, kind)
    h1, h2 = (udp(h.netns) for h in st.hosts)
    h1.sendto(b"x", servers.s1.getsockname())
    got = recv(servers.s1)
    h2.sendto(b"y", servers.s1.getsockname())
    got2 = recv(servers.s1)
    assert got is not None and got2 is not None
    mapped1, mapped2 = got[1], got2[1]
    h2.sendto(b"via the public address", mapped1)
    arrived = recv(h1)
    if kind is NatKind.SAME_LAN_HAIRPIN:
        # RFC 4787 REQ-9: the packet comes back in, from h2's public mapping
        assert arrived == (b"via the public address", mapped2)
    else:
        assert arrived is None
    # on the LAN itself the hosts always reach each other
    h2.sendto(b"on the lan", (st.hosts[0].address, h1.getsockname()[1]))
    assert recv(h1) == (b"on the lan", (st.hosts[1].address, h2.getsockname()[1]))


def test_public_namespace_sinks_unknown_destinations(every_kind: BuiltLab) -> None:
    """Packets to unknown destinations are routed into the sink, not refused.

    Without a default route, coturn relaying to an address that is not on the
    public segment (a host's private candidate) gets ENETUNREACH and closes the
    whole allocation; on the internet such a packet is simply lost.
    """
    t = every_kind.topology
    sink = t.link("sk1")

    def rx() -> int:
        out = subprocess.run(["ip", "-n", t.pub_ns, "-s", "-j", "link", "show", sink],
                             capture_output=True, text=True, check=True).stdout
        return int(json.loads(out)[0]["stats64"]["rx"]["packets"])

    before = rx()
    s = udp(t.pub_ns)
    # a lab host's private address: not routable on the public segment
    private = site(every_kind, NatKind.PRC).hosts[0].address
    s.sendto(b"to a private address", (private, 9))  # no ENETUNREACH
    s.close()
    assert rx() == before + 1
    route = subprocess.run(["ip", "-n", t.pub_ns, "route", "get", "8.8.8.8"], capture_output=True,
                           text=True, check=True).stdout
    assert f"dev {t.link('sk0')}" in route


def test_conntrack_timeout_is_per_namespace() -> None:
    require_root_netns()

    def read(ns: str | None) -> str:
        argv = ["sysctl", "-n", "net.netfilter.nf_conntrack_udp_timeout"]
        if ns:
            argv = ["ip", "netns", "exec", ns, *argv]
        return subprocess.run(argv, capture_output=True, text=True, check=True).stdout.strip()

    root_before = read(None)
    with BuiltLab([NatKind.PRC], Options(udp_timeout=7)) as lab:
        assert read(lab.topology.sites[0].router_ns) == "7"
        assert read(None) == root_before


def test_sockets_are_really_inside(every_kind: BuiltLab) -> None:
    st = site(every_kind, NatKind.PRC)
    s = udp(st.hosts[0].netns)
    s.connect((STUN_IP, 9))
    assert s.getsockname()[0] == st.hosts[0].address
    s.close()
