"""A site's access link as commands: a veth pair or a delayed TAP pair, and its rate limit. No I/O.

- **The link.** Without delay, a veth pair (the kernel joins the ends). With
  delay, two TAP devices (``ip tuntap add ... mode tap``, ip-tuntap(8)) that
  nothing joins until the delay line (:mod:`icepeer.lab.wire`) attaches to
  both: the site's WAN interface is one of them, a port of the public
  bridge the other. Names and addresses are the same either way.
- **The bottleneck.** A token bucket (tc-tbf(8)) on the egress of both ends,
  so each direction is capped at the rate. tbf delays packets up to its
  queue's size and drops beyond it, as a real bottleneck does: the queue
  holds one round trip of the path at the rate (the bandwidth-delay
  product, Villamizar and Song 1994), at least 20 ms of it. The queue sits
  before the delay line on the way out, so a packet waits for the
  bottleneck first, then travels.
- **Loss** is not here: the routers drop in netfilter (:mod:`.rules`), where
  a dropped packet never reaches conntrack.
"""

from __future__ import annotations

from .command import Command, ip
from .options import MIN_QUEUE_MS, Options

__all__ = ["link_commands", "tbf_command", "tbf_sizes"]

ETHERNET_FRAME = 1514


def link_commands(inner_ns: str, inner: str, outer_ns: str, outer: str, *, wire: bool) -> list[Command]:
    """Make the link: ``inner`` in ``inner_ns`` to ``outer`` in ``outer_ns`` (both down, unaddressed)."""
    if wire:
        return [ip(inner_ns, "tuntap", "add", "dev", inner, "mode", "tap"),
                ip(outer_ns, "tuntap", "add", "dev", outer, "mode", "tap")]
    return [ip(inner_ns, "link", "add", inner, "type", "veth", "peer", "name", outer, "netns", outer_ns)]


def tbf_sizes(rate_mbit: float, rtt_ms: float) -> tuple[int, int]:
    """(burst, limit) in bytes for a ``rate_mbit`` bucket on a path of ``rtt_ms`` round trip."""
    bytes_per_ms = rate_mbit * 1_000_000 / 8 / 1000
    burst = max(round(bytes_per_ms), 2 * ETHERNET_FRAME)  # one millisecond of the rate
    limit = max(round(bytes_per_ms * max(rtt_ms, MIN_QUEUE_MS)), burst + ETHERNET_FRAME)
    return burst, limit


def tbf_command(netns: str, dev: str, options: Options) -> Command:
    """The rate limit on ``dev``'s egress, sized for the path the options make."""
    assert options.rate_mbit is not None
    burst, limit = tbf_sizes(options.rate_mbit, options.rtt_ms)
    return Command(("tc", "qdisc", "add", "dev", dev, "root", "tbf", "rate",
                    f"{options.rate_mbit:g}mbit", "burst", str(burst), "limit", str(limit)), netns)
