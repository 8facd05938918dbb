"""The lab's namespaces, links and addresses, and the commands that build and remove them.

::

                       sink (drops everything)
                         |  default route
    [pub]  198.51.100.1 signaling, .2 and .3 STUN/TURN (two addresses: RFC 5780)
      |  bridge
      +-- 198.51.100.10 [a router] -- 10.1.0.0/24 -- [a host]
      +-- 198.51.100.11 [b router] -- 10.2.0.0/24 -- [b host]
      +-- 198.51.100.12 [c cgn] -- 100.64.3.0/24 -- [c router] -- 10.3.0.0/24 -- [c host]
      +-- 198.51.100.13 [d host]                      (kind none)

Every namespace and interface name starts with the run's prefix
(``ipl`` and five hex digits), so parallel runs do not collide and
``icepeer lab clean`` can find leftovers. Links are created directly inside
the lab's namespaces: nothing is attached to the root namespace, and the only
default route of the public namespace leads into the sink, so no packet can
leave the lab.

Each site reaches the bridge over one access link (its uplink): a veth pair,
or with a delay two TAP devices joined by the delay line
(:mod:`icepeer.lab.shaping`, :mod:`icepeer.lab.wire`); a rate limit sits on
both ends. Dual-stack cells add IPv6 beside all of this
(:mod:`icepeer.lab.ipv6`).
"""

from __future__ import annotations

import ipaddress
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from . import ipv6 as v6
from .command import Command, ip, sysctl
from .delayline import WireSpec
from .kinds import NatKind
from .options import Options
from .rules import Router, host_loss_ruleset, ip6tables_ruleset, iptables_ruleset, nft_ruleset
from .shaping import link_commands, tbf_command

__all__ = [
    "GATEWAY_IP",
    "PREFIX_PATTERN",
    "PUBLIC_NET",
    "STUN_ALT_IP",
    "STUN_IP",
    "Host",
    "Options",
    "Site",
    "SiteSpec",
    "Topology",
    "new_prefix",
    "site_letters",
]

#: Names made by any lab run: ``ipl`` + five hex digits + ``-``.
PREFIX_PATTERN = re.compile(r"^ipl[0-9a-f]{5}-")

PUBLIC_NET = ipaddress.IPv4Network("198.51.100.0/24")
GATEWAY_IP = "198.51.100.1"  # the public namespace itself; the signaling server
STUN_IP = "198.51.100.2"  # coturn's primary address
STUN_ALT_IP = "198.51.100.3"  # coturn's second address, for RFC 5780 OTHER-ADDRESS
SINK_NET = "192.0.2.0/30"  # TEST-NET-1: the public namespace's default route
SINK_LOCAL, SINK_GW, SINK_MAC = "192.0.2.1/30", "192.0.2.2", "02:00:00:00:00:02"
IFNAMSIZ = 15

#: Sysctls every lab namespace gets unless the cells are dual-stack: no IPv6
#: (no router solicitations or link-local candidates).
_QUIET = (("net.ipv6.conf.all.disable_ipv6", 1), ("net.ipv6.conf.default.disable_ipv6", 1))


def new_prefix(taken: Iterable[str] = ()) -> str:
    """A fresh run prefix such as ``ipl3fa2c``, not a prefix of any name in ``taken``."""
    taken = list(taken)
    while True:
        prefix = "ipl" + secrets.token_hex(3)[:5]
        if not any(name.startswith(prefix + "-") for name in taken):
            return prefix


def site_letters(n: int) -> list[str]:
    if not 0 < n <= 26:
        raise ValueError("a lab has 1 to 26 sites")
    return [chr(ord("a") + i) for i in range(n)]


@dataclass(frozen=True)
class SiteSpec:
    """One site: a router of ``kind`` and its hosts (two for the shared-LAN kinds)."""

    name: str
    kind: NatKind

    @property
    def hosts(self) -> int:
        return 2 if self.kind.shared_lan else 1


@dataclass(frozen=True)
class Host:
    netns: str
    address: str
    iface: str


@dataclass(frozen=True)
class Site:
    """A site with its names and addresses resolved."""

    spec: SiteSpec
    index: int
    prefix: str
    hosts: tuple[Host, ...] = field(default=())

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def kind(self) -> NatKind:
        return self.spec.kind

    def ns(self, role: str) -> str:
        return f"{self.prefix}-{self.name}-{role}"

    def link(self, suffix: str) -> str:
        name = f"{self.prefix}-{self.name}{suffix}"
        assert len(name) <= IFNAMSIZ, name
        return name

    @property
    def public_ip(self) -> str:
        """The site's address on the public segment (router WAN, or the host itself)."""
        return str(PUBLIC_NET.network_address + 10 + self.index)

    @property
    def lan_net(self) -> str:
        return f"10.{self.index + 1}.0.0/24"

    @property
    def cgn_net(self) -> str:
        return f"100.64.{self.index + 1}.0/24"

    @property
    def router_ns(self) -> str | None:
        return self.ns("rt") if self.kind.has_router else None

    @property
    def cgn_ns(self) -> str | None:
        return self.ns("cgn") if self.kind is NatKind.DOUBLE else None

    @property
    def namespaces(self) -> list[str]:
        names = [n for n in (self.cgn_ns, self.router_ns) if n]
        return names + [h.netns for h in self.hosts]

    @property
    def capture_point(self) -> tuple[str, str]:
        """(namespace, interface) of the site's outermost WAN side, for packet captures."""
        ns, dev, _ = self.uplink
        return ns, dev

    @property
    def uplink(self) -> tuple[str, str, str]:
        """(namespace, device) of the site's end of its access link, and the public bridge's port."""
        if self.kind is NatKind.NONE:
            return self.hosts[0].netns, self.hosts[0].iface, self.link("p")
        if self.kind is NatKind.DOUBLE:
            assert self.cgn_ns
            return self.cgn_ns, self.link("cw"), self.link("cp")
        return self.ns("rt"), self.link("w"), self.link("p")

    @property
    def routers(self) -> list[tuple[str, Router]]:
        """(namespace, router) for every NAT layer, the outermost first."""
        out: list[tuple[str, Router]] = []
        if self.kind is NatKind.DOUBLE:
            assert self.cgn_ns
            out.append((self.cgn_ns, Router.for_kind(
                NatKind.PRC, wan=self.link("cw"), lan=self.link("cl"), wan_ip=self.public_ip,
                lan_net=self.cgn_net)))
            out.append((self.ns("rt"), Router.for_kind(
                NatKind.PRC, wan=self.link("w"), lan=self.link("lan"), wan_ip=_nth(self.cgn_net, 2),
                lan_net=self.lan_net)))
        elif self.kind.has_router:
            out.append((self.ns("rt"), Router.for_kind(
                self.kind, wan=self.link("w"), lan=self.link("lan"), wan_ip=self.public_ip,
                lan_net=self.lan_net)))
        return out


def _nth(net: str, n: int) -> str:
    return str(ipaddress.IPv4Network(net).network_address + n)


def _with_len(net: str, n: int) -> str:
    network = ipaddress.IPv4Network(net)
    return f"{network.network_address + n}/{network.prefixlen}"


def _resolve(prefix: str, spec: SiteSpec, index: int) -> Site:
    bare = Site(spec, index, prefix)
    hosts: tuple[Host, ...]
    if spec.kind is NatKind.NONE:
        hosts = (Host(bare.ns("h1"), bare.public_ip, bare.link("h1")),)
    else:
        hosts = tuple(
            Host(bare.ns(f"h{j}"), _nth(bare.lan_net, 1 + j), bare.link(f"h{j}"))
            for j in range(1, spec.hosts + 1)
        )
    return Site(spec, index, prefix, hosts)


@dataclass(frozen=True)
class Topology:
    """A whole lab: the public segment and its sites, with one run prefix."""

    prefix: str
    sites: tuple[Site, ...]
    options: Options = field(default_factory=Options)

    @classmethod
    def make(cls, prefix: str, kinds: Sequence[NatKind], options: Options | None = None) -> Topology:
        """One site per kind, named a, b, c, ... in order."""
        if not PREFIX_PATTERN.match(prefix + "-"):
            raise ValueError(f"bad lab prefix {prefix!r}")
        specs = [SiteSpec(letter, kind) for letter, kind in zip(site_letters(len(kinds)), kinds)]
        return cls(prefix, tuple(_resolve(prefix, s, i) for i, s in enumerate(specs)), options or Options())

    @property
    def pub_ns(self) -> str:
        return f"{self.prefix}-pub"

    def link(self, suffix: str) -> str:
        name = f"{self.prefix}-{suffix}"
        assert len(name) <= IFNAMSIZ, name
        return name

    @property
    def namespaces(self) -> list[str]:
        return [self.pub_ns] + [ns for site in self.sites for ns in site.namespaces]

    def site(self, name: str) -> Site:
        for s in self.sites:
            if s.name == name:
                return s
        raise KeyError(name)

    # -- building -----------------------------------------------------------

    def build(self) -> list[Command]:
        """Every command that makes the lab, in order."""
        cmds: list[Command] = []
        for ns in self.namespaces:
            cmds.append(ip(None, "netns", "add", ns))
            if self.options.ipv6:
                cmds += v6.enable(ns)
            else:
                cmds += [sysctl(ns, k, v) for k, v in _QUIET]
            cmds.append(ip(ns, "link", "set", "lo", "up"))
        cmds += self._public()
        for site in self.sites:
            cmds += self._site(site)
        return cmds

    def wires(self) -> list[WireSpec]:
        """The delayed uplinks the delay line joins (none without a delay)."""
        o = self.options
        if not o.delay_line:
            return []
        return [WireSpec(ns, dev, self.pub_ns, outer, o.link_delay_ms, o.link_jitter_ms)
                for ns, dev, outer in (site.uplink for site in self.sites)]

    def _public(self) -> list[Command]:
        pub, br = self.pub_ns, self.link("pbr")
        sk0, sk1 = self.link("sk0"), self.link("sk1")
        cmds = [
            ip(pub, "link", "add", br, "type", "bridge"),
            ip(pub, "link", "set", br, "up"),
            *(ip(pub, "addr", "add", f"{a}/{PUBLIC_NET.prefixlen}", "dev", br)
              for a in (GATEWAY_IP, STUN_IP, STUN_ALT_IP)),
            # The sink: a veth pair inside this namespace. The gateway's MAC is
            # not the far end's, so the far end drops every frame it gets.
            ip(pub, "link", "add", sk0, "type", "veth", "peer", "name", sk1),
            ip(pub, "link", "set", sk0, "up"),
            ip(pub, "link", "set", sk1, "up"),
            ip(pub, "addr", "add", SINK_LOCAL, "dev", sk0),
            ip(pub, "neigh", "add", SINK_GW, "lladdr", SINK_MAC, "dev", sk0, "nud", "permanent"),
            ip(pub, "route", "add", "default", "via", SINK_GW, "dev", sk0),
            # Route (into the sink) rather than drop what is not on the segment,
            # as the internet does: coturn closes an allocation on ENETUNREACH.
            sysctl(pub, "net.ipv4.ip_forward", 1),
            sysctl(pub, "net.bridge.bridge-nf-call-iptables", 0, check=False),
        ]
        if self.options.ipv6:
            cmds += [
                v6.addr6(pub, v6.GATEWAY6, br),
                ip(pub, "-6", "addr", "add", v6.SINK6_LOCAL, "dev", sk0, "nodad"),
                ip(pub, "-6", "neigh", "add", v6.SINK6_GW, "lladdr", SINK_MAC, "dev", sk0,
                   "nud", "permanent"),
                ip(pub, "-6", "route", "add", "default", "via", v6.SINK6_GW, "dev", sk0),
                sysctl(pub, "net.ipv6.conf.all.forwarding", 1),
            ]
        return cmds

    def _uplink(self, site: Site, address: str) -> list[Command]:
        """The site's link to a port of the public bridge, its addresses and its default route."""
        pub = self.pub_ns
        inner_ns, inner, outer = site.uplink
        cmds = [
            *link_commands(inner_ns, inner, pub, outer, wire=self.options.delay_line),
            ip(pub, "link", "set", outer, "master", self.link("pbr")),
            ip(pub, "link", "set", outer, "up"),
            ip(inner_ns, "addr", "add", f"{address}/{PUBLIC_NET.prefixlen}", "dev", inner),
            ip(inner_ns, "link", "set", inner, "up"),
            ip(inner_ns, "route", "add", "default", "via", GATEWAY_IP),
        ]
        if self.options.rate_mbit is not None:
            cmds += [tbf_command(inner_ns, inner, self.options), tbf_command(pub, outer, self.options)]
        if self.options.ipv6:
            cmds += [v6.addr6(inner_ns, v6.public6(site.index), inner),
                     v6.route6(inner_ns, "default", v6.GATEWAY6)]
            if site.kind.has_router:
                cmds.append(v6.route6(pub, v6.lan6(site.index), v6.public6(site.index)))
        return cmds

    def _site(self, site: Site) -> list[Command]:
        opts = self.options
        loss = opts.loss_percent / 100
        cmds: list[Command] = []
        if site.kind is NatKind.NONE:
            host = site.hosts[0]
            cmds += self._uplink(site, site.public_ip)
            if loss:
                for ns, dev in ((host.netns, host.iface), (self.pub_ns, site.link("p"))):
                    cmds.append(Command(("nft", "-f", "-"), ns,
                                        stdin=host_loss_ruleset(dev, loss, ipv6=opts.ipv6)))
            return cmds
        rt = site.ns("rt")
        cmds += self._uplink(site, site.public_ip)
        if site.kind is NatKind.DOUBLE:
            cmds += self._carrier(site)
        lan = site.link("lan")
        cmds += [
            ip(rt, "link", "add", lan, "type", "bridge"),
            ip(rt, "addr", "add", _with_len(site.lan_net, 1), "dev", lan),
            ip(rt, "link", "set", lan, "up"),
        ]
        if opts.ipv6:
            cmds += [v6.addr6(rt, v6.lan6(site.index, 1), lan),
                     sysctl(rt, "net.ipv6.conf.all.forwarding", 1)]
        for j, host in enumerate(site.hosts, start=1):
            port = site.link(f"r{j}")
            cmds += [
                ip(host.netns, "link", "add", host.iface, "type", "veth", "peer", "name", port,
                   "netns", rt),
                ip(rt, "link", "set", port, "master", lan),
                ip(rt, "link", "set", port, "up"),
                ip(host.netns, "addr", "add", f"{host.address}/24", "dev", host.iface),
                ip(host.netns, "link", "set", host.iface, "up"),
                ip(host.netns, "route", "add", "default", "via", _nth(site.lan_net, 1)),
            ]
            if opts.ipv6:
                cmds += [v6.addr6(host.netns, v6.lan6(site.index, 1 + j), host.iface),
                         v6.route6(host.netns, "default", v6.lan6(site.index, 1))]
        for i, (ns, router) in enumerate(site.routers):
            # Loss once per site: at the innermost (home) router.
            inner = i == len(site.routers) - 1
            router = _with_impairments(router, loss if inner else 0.0, opts.udp_timeout)
            cmds += [
                sysctl(ns, "net.ipv4.ip_forward", 1),
                sysctl(ns, "net.bridge.bridge-nf-call-iptables", 0, check=False),
                Command(("iptables-restore",), ns, stdin=iptables_ruleset(router)),
            ]
            if opts.ipv6 and inner:
                # The home router is IPv6's firewall; a carrier only routes IPv6.
                cmds.append(Command(("ip6tables-restore",), ns, stdin=ip6tables_ruleset(router)))
            ruleset = nft_ruleset(router)
            if ruleset:
                cmds.append(Command(("nft", "-f", "-"), ns, stdin=ruleset))
            if opts.udp_timeout is not None:
                # Per network namespace (checked): the root namespace keeps its own.
                cmds.append(sysctl(ns, "net.netfilter.nf_conntrack_udp_timeout", opts.udp_timeout))
                cmds.append(sysctl(ns, "net.netfilter.nf_conntrack_udp_timeout_stream",
                                   opts.udp_timeout))
        return cmds

    def _carrier(self, site: Site) -> list[Command]:
        """The link from a ``double`` site's carrier NAT down to its home router."""
        cgn, rt = site.ns("cgn"), site.ns("rt")
        cmds = [
            ip(cgn, "link", "add", site.link("cl"), "type", "veth", "peer", "name",
               site.link("w"), "netns", rt),
            ip(cgn, "addr", "add", _with_len(site.cgn_net, 1), "dev", site.link("cl")),
            ip(cgn, "link", "set", site.link("cl"), "up"),
            ip(rt, "addr", "add", _with_len(site.cgn_net, 2), "dev", site.link("w")),
            ip(rt, "link", "set", site.link("w"), "up"),
            ip(rt, "route", "add", "default", "via", _nth(site.cgn_net, 1)),
        ]
        if self.options.ipv6:
            cmds += [
                v6.addr6(cgn, v6.carrier6(site.index, 1), site.link("cl")),
                v6.addr6(rt, v6.carrier6(site.index, 2), site.link("w")),
                v6.route6(rt, "default", v6.carrier6(site.index, 1)),
                v6.route6(cgn, v6.lan6(site.index), v6.carrier6(site.index, 2)),
                sysctl(cgn, "net.ipv6.conf.all.forwarding", 1),
            ]
        return cmds

    def teardown(self) -> list[Command]:
        """Delete every namespace (and so every link) of this run; best effort."""
        return [ip(None, "netns", "del", ns, check=False) for ns in reversed(self.namespaces)]


def _with_impairments(router: Router, loss: float, udp_timeout: int | None) -> Router:
    fields = dict(router.__dict__)
    fields["loss"] = loss
    if udp_timeout is not None:
        fields["state_timeout"] = udp_timeout
    return Router(**fields)
