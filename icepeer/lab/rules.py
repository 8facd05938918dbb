"""Router rulesets: how each NAT kind is made, as ``iptables-restore`` and ``nft`` text.

Every router drops unsolicited traffic arriving on its WAN side, as real home
routers do. Without that, the first connectivity check from a peer reaches a
cone NAT before its own host has sent anything, the router delivers it to its
own closed port, conntrack confirms that flow, and the host's later packet to
that peer clashes with it and gets a new source port: the cone NAT behaves
symmetric. A packet dropped in the filter table is never confirmed into
conntrack.

The behaviours (RFC 4787 section 4.1 mapping, section 5 filtering):

- port-restricted cone: ``MASQUERADE`` (Linux keeps the source port when it
  can, and reuses one mapping per internal address and port), inbound only for
  established flows: endpoint-independent mapping, address+port-dependent
  filtering.
- symmetric: ``MASQUERADE --random-fully``: every new flow gets a random
  port, so the mapping depends on address and port.
- full cone: port-restricted plus an nftables map of *mapped port ->
  internal address and port*, written on the way out and used to DNAT any
  new inbound flow to a mapped port: endpoint-independent filtering.
- address-restricted cone: full cone plus an nftables set of *(remote
  address, mapped port)* written on the way out; a new inbound flow whose
  (source address, destination port) is not in it is dropped before DNAT.
- UDP blocked: port-restricted, and UDP from the LAN to the WAN is dropped.
- hairpinning (RFC 4787 section 6, REQ-9): the same map DNATs a LAN packet
  sent to the router's public address and a mapped port to the host owning
  that mapping, and SNATs it to the public address, so the target sees the
  sender's public mapping.

Random loss uses the iptables ``statistic`` match in FORWARD (both
directions), so a dropped packet never reaches conntrack.

IPv6 (dual-stack cells) is routed, not translated: every host has a global
address, and the router is a stateful firewall (RFC 6092, "simple
security" for IPv6 CPE): replies to flows from the LAN come in, nothing else
does (section 3.2.3's address-and-port-dependent filtering, the strictest of
REC-11's choices). Neighbour discovery (RFC 4861) is let in to the router
itself, or its WAN side could not resolve a next hop.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .kinds import NatKind

__all__ = ["Inbound", "Router", "host_loss_ruleset", "ip6tables_ruleset", "iptables_ruleset", "nft_ruleset"]

NFT_TABLE = "icepeer"


class Inbound(enum.Enum):
    """Which new inbound UDP flows to a mapped port a router lets in."""

    ESTABLISHED = "established"  # port-restricted: only replies (conntrack)
    ADDRESS = "address"  # address-restricted: from any port of an address the host sent to
    ANY = "any"  # full cone: from anyone


@dataclass(frozen=True)
class Router:
    """One NAT router: its interfaces and behaviour."""

    wan: str
    lan: str
    wan_ip: str
    lan_net: str
    random_ports: bool = False
    inbound: Inbound = Inbound.ESTABLISHED
    block_udp: bool = False
    hairpin: bool = False
    loss: float = 0.0
    """Probability (0-1) of dropping a forwarded packet, each direction."""
    state_timeout: int = 120
    """Seconds a full-cone/address-restricted mapping lives without traffic."""

    @classmethod
    def for_kind(cls, kind: NatKind, **fields: object) -> Router:
        """The router for ``kind`` (for ``double``, each of its two layers)."""
        behaviour: dict[str, object] = {
            NatKind.FULL: {"inbound": Inbound.ANY},
            NatKind.ADDR: {"inbound": Inbound.ADDRESS},
            NatKind.PRC: {},
            NatKind.DOUBLE: {},
            NatKind.SYM: {"random_ports": True},
            NatKind.UDPBLOCK: {"block_udp": True},
            NatKind.SAME_LAN: {},
            NatKind.SAME_LAN_HAIRPIN: {"hairpin": True},
        }.get(kind)  # type: ignore[assignment]
        if behaviour is None:
            raise ValueError(f"kind {kind.value!r} has no router")
        return cls(**{**behaviour, **fields})  # type: ignore[arg-type]

    @property
    def needs_map(self) -> bool:
        return self.inbound is not Inbound.ESTABLISHED or self.hairpin


def _probability(p: float) -> str:
    return f"{p:.6f}".rstrip("0").rstrip(".")


def iptables_ruleset(r: Router) -> str:
    """The ``iptables-restore`` input for router ``r`` (filter and nat tables)."""
    w, lan = r.wan, r.lan
    f = ["*filter", ":INPUT ACCEPT [0:0]", ":FORWARD DROP [0:0]", ":OUTPUT ACCEPT [0:0]"]
    if r.loss > 0:
        f.append(f"-A FORWARD -m statistic --mode random --probability {_probability(r.loss)} -j DROP")
    # Unsolicited inbound traffic is dropped, never confirmed into conntrack.
    f.append(f"-A INPUT -i {w} -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT")
    f.append(f"-A INPUT -i {w} -j DROP")
    f.append(f"-A FORWARD -i {w} -o {lan} -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT")
    if r.inbound is not Inbound.ESTABLISHED:
        # New flows the nft table DNATed (after its address check) are solicited.
        f.append(f"-A FORWARD -i {w} -o {lan} -m conntrack --ctstate DNAT -j ACCEPT")
    f.append(f"-A FORWARD -i {w} -j DROP")
    if r.block_udp:
        f.append(f"-A FORWARD -i {lan} -o {w} -p udp -j DROP")
    f.append(f"-A FORWARD -i {lan} -o {w} -j ACCEPT")
    # Hosts on one LAN bridge talk directly; hairpinned packets come back out of the LAN.
    f.append(f"-A FORWARD -i {lan} -o {lan} -j ACCEPT")
    f.append("COMMIT")
    n = ["*nat", ":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]",
         ":POSTROUTING ACCEPT [0:0]"]
    n.append(f"-A POSTROUTING -o {w} -j MASQUERADE" + (" --random-fully" if r.random_ports else ""))
    if r.hairpin:
        n.append(f"-A POSTROUTING -o {lan} -s {r.lan_net} -m conntrack --ctstate DNAT "
                 f"-j SNAT --to-source {r.wan_ip}")
    n.append("COMMIT")
    return "\n".join(f + n) + "\n"


NDP_TYPES = ("router-solicitation", "router-advertisement", "neighbour-solicitation",
             "neighbour-advertisement", "redirect")


def ip6tables_ruleset(r: Router) -> str:
    """The ``ip6tables-restore`` input for router ``r``: a stateful firewall, no translation."""
    w, lan = r.wan, r.lan
    f = ["*filter", ":INPUT ACCEPT [0:0]", ":FORWARD DROP [0:0]", ":OUTPUT ACCEPT [0:0]"]
    if r.loss > 0:
        f.append(f"-A FORWARD -m statistic --mode random --probability {_probability(r.loss)} -j DROP")
    f.append(f"-A INPUT -i {w} -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT")
    f += [f"-A INPUT -i {w} -p ipv6-icmp --icmpv6-type {t} -j ACCEPT" for t in NDP_TYPES]
    f.append(f"-A INPUT -i {w} -j DROP")
    f.append(f"-A FORWARD -i {w} -o {lan} -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT")
    f.append(f"-A FORWARD -i {w} -j DROP")
    if r.block_udp:
        f.append(f"-A FORWARD -i {lan} -o {w} -p udp -j DROP")
    f.append(f"-A FORWARD -i {lan} -o {w} -j ACCEPT")
    f.append(f"-A FORWARD -i {lan} -o {lan} -j ACCEPT")
    f.append("COMMIT")
    return "\n".join(f) + "\n"


def nft_ruleset(r: Router) -> str | None:
    """The ``nft -f -`` input for the state conntrack does not keep, or ``None``."""
    if not r.needs_map:
        return None
    t = r.state_timeout
    lines = [
        f"table ip {NFT_TABLE} {{",
        # mapped port -> internal address . port, for endpoint-independent inbound DNAT.
        "  map mapped {",
        "    type inet_service : ipv4_addr . inet_service",
        f"    flags dynamic, timeout; timeout {t}s;",
        "  }",
    ]
    if r.inbound is Inbound.ADDRESS:
        lines += [
            # (remote address, mapped port) the host has sent to: RFC 4787 section 5.
            "  set contacted {",
            "    type ipv4_addr . inet_service",
            f"    flags dynamic, timeout; timeout {t}s;",
            "  }",
        ]
    lines += [
        # After source NAT (priority 100): udp sport is the mapped port here.
        "  chain learn {",
        "    type filter hook postrouting priority 200; policy accept;",
        (f'    oifname "{r.wan}" meta l4proto udp ct direction original '
         "update @mapped { udp sport : ct original ip saddr . ct original proto-src }"),
    ]
    if r.inbound is Inbound.ADDRESS:
        lines.append(f'    oifname "{r.wan}" meta l4proto udp update @contacted {{ ip daddr . udp sport }}')
    lines.append("  }")
    if r.inbound is Inbound.ADDRESS:
        lines += [
            # Before DNAT (priority -100): drop new flows from addresses never sent to.
            "  chain screen {",
            "    type filter hook prerouting priority -150; policy accept;",
            (f'    iifname "{r.wan}" meta l4proto udp ct state new '
             "ip saddr . udp dport != @contacted drop"),
            "  }",
        ]
    lines += [
        "  chain inbound {",
        "    type nat hook prerouting priority dstnat; policy accept;",
    ]
    if r.inbound is not Inbound.ESTABLISHED:
        lines.append(f'    iifname "{r.wan}" meta l4proto udp dnat ip to udp dport map @mapped')
    if r.hairpin:
        lines.append(f'    iifname "{r.lan}" ip daddr {r.wan_ip} meta l4proto udp '
                     "dnat ip to udp dport map @mapped")
    lines += ["  }", "}"]
    return "\n".join(lines) + "\n"


def host_loss_ruleset(device: str, loss: float, *, ipv6: bool = False) -> str:
    """Loss on one interface's ingress (``nft`` netdev family), for hosts without a router.

    A drop on a host's own output would fail ``sendto()`` with EPERM instead of
    losing the packet, so each direction is dropped where it arrives. Only IP
    packets: losing ARP or IPv6 neighbour discovery would stall resolving the
    next hop, which the routed kinds (loss in FORWARD) never see either.
    """
    n = round(loss * 1_000_000)
    lines = [
        f"table netdev {NFT_TABLE} {{",
        "  chain loss {",
        f'    type filter hook ingress device "{device}" priority 0; policy accept;',
        f"    meta protocol ip numgen random mod 1000000 < {n} drop",
    ]
    if ipv6:
        lines += [
            "    icmpv6 type { nd-router-solicit, nd-router-advert, nd-neighbor-solicit, "
            "nd-neighbor-advert, nd-redirect } accept",
            f"    meta protocol ip6 numgen random mod 1000000 < {n} drop",
        ]
    lines += ["  }", "}"]
    return "\n".join(lines) + "\n"
