"""What the lab's paths are like: delay, jitter, a bottleneck, loss, NAT timeouts, IPv6. No I/O.

The path model: every site reaches the public segment over one access link
(its uplink). Delay, jitter and the rate limit sit on those links, the same
in both directions, so a packet from host A to host B crosses two of them
(A's up, B's down) and one to the signaling or TURN server crosses one. The
servers sit in the middle of the path:

- ``delay_ms`` is the one-way delay between two sites' hosts: each uplink
  adds half of it each way, so a round trip between the peers takes
  ``2 x delay_ms`` and one to a server ``delay_ms``; a relayed path is as
  long as a direct one;
- ``jitter_ms`` spreads each packet's one-way delay over ``delay_ms ±
  jitter_ms`` (each link ± half), never reordering a link's packets;
- ``rate_mbit`` caps each uplink in each direction: the bottleneck between
  two sites;
- ``loss_percent`` drops packets at random at each site, each direction
  (so a path through two sites loses about twice that).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Options"]

#: The smallest queue a rate-limited link gets, in milliseconds of its rate.
MIN_QUEUE_MS = 20.0


@dataclass(frozen=True)
class Options:
    """Impairments applied at every site's access link, and the lab's address families."""

    loss_percent: float = 0.0
    """Packets dropped at random, each direction, at each site (iptables statistic)."""
    delay_ms: float = 0.0
    """One-way delay between two sites' hosts; each uplink adds half each way (the delay line)."""
    jitter_ms: float = 0.0
    """Each packet's one-way delay varies uniformly within ± this (each uplink ± half)."""
    rate_mbit: float | None = None
    """Each uplink's rate in Mbit/s, each direction (tc tbf); ``None``: as fast as veth goes."""
    udp_timeout: int | None = None
    """Router conntrack UDP timeout in seconds (``None``: the kernel's 30 s / 120 s)."""
    ipv6: bool = False
    """Dual stack: global IPv6 (2001:db8::/32) beside IPv4, behind stateful firewalls."""

    def __post_init__(self) -> None:
        if not 0 <= self.loss_percent < 100:
            raise ValueError("loss must be a percentage from 0 to below 100")
        if self.delay_ms < 0 or self.jitter_ms < 0:
            raise ValueError("delay and jitter cannot be negative")
        if self.jitter_ms and not self.delay_ms:
            raise ValueError("jitter needs a delay")
        if self.jitter_ms > self.delay_ms:
            raise ValueError("jitter cannot be more than the delay (a packet cannot arrive early)")
        if self.delay_ms > 10_000:
            raise ValueError("a delay of more than 10 s is not a network path")
        if self.rate_mbit is not None and not 0.01 <= self.rate_mbit <= 10_000:
            raise ValueError("the rate is from 0.01 to 10000 Mbit/s")
        if self.udp_timeout is not None and self.udp_timeout < 1:
            raise ValueError("the UDP timeout is at least one second")

    @property
    def delay_line(self) -> bool:
        """Whether the uplinks need the user-space delay line (:mod:`icepeer.lab.wire`)."""
        return self.delay_ms > 0

    @property
    def link_delay_ms(self) -> float:
        """What one uplink adds, each direction."""
        return self.delay_ms / 2

    @property
    def link_jitter_ms(self) -> float:
        return self.jitter_ms / 2

    @property
    def rtt_ms(self) -> float:
        """The round trip between two sites' hosts that the delay makes (before queueing)."""
        return 2 * self.delay_ms

    def to_json(self) -> dict[str, object]:
        """The options that differ from the defaults, for reports."""
        out: dict[str, object] = {}
        for name, default in (("loss_percent", 0.0), ("delay_ms", 0.0), ("jitter_ms", 0.0),
                              ("rate_mbit", None), ("udp_timeout", None), ("ipv6", False)):
            value = getattr(self, name)
            if value != default:
                out[name] = value
        return out

    def describe(self) -> str:
        """A few words for a person: ``20 ms RTT, 50 Mbit/s, 1% loss per site``."""
        parts = []
        if self.delay_ms:
            jitter = f" (± {self.jitter_ms:g} ms one way)" if self.jitter_ms else ""
            parts.append(f"{self.rtt_ms:g} ms RTT{jitter}")
        if self.rate_mbit is not None:
            parts.append(f"{self.rate_mbit:g} Mbit/s")
        if self.loss_percent:
            parts.append(f"{self.loss_percent:g}% loss per site")
        if self.udp_timeout is not None:
            parts.append(f"UDP timeout {self.udp_timeout} s")
        if self.ipv6:
            parts.append("dual stack")
        return ", ".join(parts) or "no impairments"
