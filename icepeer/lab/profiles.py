"""Named path profiles: the common kinds of internet path, as lab :class:`Options`. No I/O.

Round trips are between the two peers' hosts (``2 x delay``, see
:mod:`icepeer.lab.options`); the rate is each site's uplink, each direction;
loss is per site, each direction, as ``--loss``.

==================  ===========  ===========  ===============
profile             RTT          bottleneck   loss per site
==================  ===========  ===========  ===============
lan                 (none)       (none)       0
broadband           20 ms        50 Mbit/s    0
mobile              80 ms        10 Mbit/s    1 %
intercontinental    150 ms       20 Mbit/s    0
lossy-wifi          10 ms        (none)       5 %
==================  ===========  ===========  ===============
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .options import Options

__all__ = ["PROFILES", "Profile", "get_profile"]


@dataclass(frozen=True)
class Profile:
    name: str
    summary: str
    options: Options

    def apply(self, **overrides: object) -> Options:
        """The profile's options with the given fields replaced (``None`` leaves one alone)."""
        changes = {k: v for k, v in overrides.items() if v is not None}
        return dataclasses.replace(self.options, **changes)  # type: ignore[arg-type]


def _rtt(ms: float) -> float:
    return ms / 2  # one-way delay between the hosts


PROFILES: dict[str, Profile] = {p.name: p for p in (
    Profile("lan", "no added delay, rate limit or loss (veth: well under 1 ms)", Options()),
    Profile("broadband", "20 ms RTT, 50 Mbit/s",
            Options(delay_ms=_rtt(20), rate_mbit=50)),
    Profile("mobile", "80 ms RTT, 10 Mbit/s, 1% loss per site",
            Options(delay_ms=_rtt(80), rate_mbit=10, loss_percent=1)),
    Profile("intercontinental", "150 ms RTT, 20 Mbit/s",
            Options(delay_ms=_rtt(150), rate_mbit=20)),
    Profile("lossy-wifi", "10 ms RTT, 5% loss per site",
            Options(delay_ms=_rtt(10), loss_percent=5)),
)}


def get_profile(name: str) -> Profile:
    """The profile called ``name``; a :class:`ValueError` naming the choices otherwise."""
    try:
        return PROFILES[name.strip().lower()]
    except KeyError:
        raise ValueError(f"unknown profile {name!r}: choose from {', '.join(PROFILES)}") from None
