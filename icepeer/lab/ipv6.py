"""The lab's IPv6 plan for dual-stack cells: global addresses, routes, no NAT. No I/O.

With ``Options(ipv6=True)`` every namespace gets IPv6 beside its IPv4, all
from the documentation prefix 2001:db8::/32 (RFC 3849):

- the public segment is 2001:db8::/64, the public namespace ``::1`` on it,
  routing each site's prefix to that site and everything else into the sink
  (as for IPv4: a relay or router sending to an address nobody has must not
  get ``ENETUNREACH``);
- site ``i`` (0 for a) has ``2001:db8::a+i`` on the segment and the prefix
  ``2001:db8:i+1::/64`` on its LAN (router ``::1``, hosts ``::2``, ``::3``);
  a ``double`` site's carrier link is ``2001:db8:100:i+1::/64``;
- routers forward IPv6 untranslated: every host has a global address, and
  the home router's stateful firewall (:func:`icepeer.lab.rules.ip6tables_ruleset`)
  is what keeps unsolicited traffic out. The carrier NAT of ``double`` only
  routes IPv6, as carriers do.

Addresses are added with ``nodad`` and duplicate address detection is off
(``accept_dad=0``): nothing else shares these links, and DAD would hold each
address back for about a second.
"""

from __future__ import annotations

import ipaddress

from .command import Command, ip, sysctl

__all__ = [
    "GATEWAY6",
    "PUBLIC6",
    "SINK6_GW",
    "SINK6_LOCAL",
    "addr6",
    "carrier6",
    "enable",
    "lan6",
    "public6",
    "route6",
]

PUBLIC6 = ipaddress.IPv6Network("2001:db8::/64")
GATEWAY6 = "2001:db8::1"
SINK6_LOCAL, SINK6_GW = "2001:db8:ffff::1/64", "2001:db8:ffff::2"


def enable(netns: str) -> list[Command]:
    """Switch IPv6 on in a fresh namespace (before its interfaces exist: they inherit ``default``)."""
    return [sysctl(netns, f"net.ipv6.conf.{scope}.{name}", value)
            for scope in ("all", "default")
            for name, value in (("disable_ipv6", 0), ("accept_dad", 0), ("accept_ra", 0))]


def public6(index: int) -> str:
    """Site ``index``'s address on the public segment (its router's WAN, or a ``none`` host)."""
    return str(PUBLIC6.network_address + 10 + index)


def lan6(index: int, host: int | None = None) -> str:
    """Site ``index``'s LAN prefix, or the address ``::host`` in it."""
    net = ipaddress.IPv6Network(f"2001:db8:{index + 1:x}::/64")
    return str(net) if host is None else str(net.network_address + host)


def carrier6(index: int, host: int | None = None) -> str:
    """The link between a ``double`` site's carrier NAT and its home router, or ``::host`` on it."""
    net = ipaddress.IPv6Network(f"2001:db8:100:{index + 1:x}::/64")
    return str(net) if host is None else str(net.network_address + host)


def addr6(netns: str, address: str, dev: str) -> Command:
    """``address`` (without a length: /64) on ``dev``, usable at once."""
    return ip(netns, "-6", "addr", "add", f"{address}/64", "dev", dev, "nodad")


def route6(netns: str, destination: str, via: str) -> Command:
    return ip(netns, "-6", "route", "add", destination, "via", via)
