"""The router kinds a lab site can have, and what each should look like from outside.

Names follow RFC 4787 (NAT behavioural requirements for UDP): mapping
behaviour (section 4.1) and filtering behaviour (section 5), with the
familiar RFC 3489 names alongside.
"""

from __future__ import annotations

import enum

__all__ = ["DEFAULT_KINDS", "NatKind", "parse_kind"]


class NatKind(str, enum.Enum):
    """What sits between a lab host and the emulated internet."""

    NONE = "none"
    """No router: the host has a public address on the public segment."""
    FULL = "full"
    """Full cone: endpoint-independent mapping and filtering."""
    ADDR = "addr"
    """Address-restricted cone: endpoint-independent mapping, address-dependent filtering."""
    PRC = "prc"
    """Port-restricted cone: endpoint-independent mapping, address+port-dependent filtering."""
    SYM = "sym"
    """Symmetric: a new random public port for every destination."""
    UDPBLOCK = "udpblock"
    """A port-restricted NAT that drops all UDP to the internet (TCP still works)."""
    DOUBLE = "double"
    """A home NAT behind a carrier-grade NAT (100.64.0.0/10), both port-restricted."""
    SAME_LAN = "same-lan"
    """Both hosts behind one port-restricted router, which does not hairpin."""
    SAME_LAN_HAIRPIN = "same-lan-hairpin"
    """Both hosts behind one port-restricted router that hairpins (RFC 4787 REQ-9)."""

    @property
    def shared_lan(self) -> bool:
        """Both peers sit behind this one router (a cell of this kind pairs it with itself)."""
        return self in (NatKind.SAME_LAN, NatKind.SAME_LAN_HAIRPIN)

    @property
    def has_router(self) -> bool:
        return self is not NatKind.NONE

    @property
    def description(self) -> str:
        return _DESCRIPTIONS[self]

    @property
    def expected_nat_type(self) -> str:
        """The name ``icepeer nat-type`` must print from a host behind this kind."""
        return _EXPECTED[self]


_DESCRIPTIONS = {
    NatKind.NONE: "no NAT: host on the public segment",
    NatKind.FULL: "full cone (endpoint-independent mapping and filtering)",
    NatKind.ADDR: "address-restricted cone",
    NatKind.PRC: "port-restricted cone",
    NatKind.SYM: "symmetric (random port per destination)",
    NatKind.UDPBLOCK: "port-restricted, outbound UDP blocked",
    NatKind.DOUBLE: "port-restricted home NAT behind a port-restricted carrier NAT",
    NatKind.SAME_LAN: "both hosts behind one port-restricted router, no hairpinning",
    NatKind.SAME_LAN_HAIRPIN: "both hosts behind one port-restricted router with hairpinning",
}

_EXPECTED = {
    NatKind.NONE: "open internet",
    NatKind.FULL: "full cone",
    NatKind.ADDR: "address-restricted cone",
    NatKind.PRC: "port-restricted cone",
    NatKind.SYM: "symmetric",
    NatKind.UDPBLOCK: "UDP blocked",
    # Behaviour discovery sees the outermost behaviour only: two port-restricted
    # layers look like one.
    NatKind.DOUBLE: "port-restricted cone",
    NatKind.SAME_LAN: "port-restricted cone",
    NatKind.SAME_LAN_HAIRPIN: "port-restricted cone",
}

#: The kinds ``icepeer lab matrix`` pairs by default.
DEFAULT_KINDS: tuple[NatKind, ...] = tuple(NatKind)


def parse_kind(text: str) -> NatKind:
    """``"prc"`` -> :attr:`NatKind.PRC`; a :class:`ValueError` naming the choices otherwise."""
    try:
        return NatKind(text.strip().lower())
    except ValueError:
        choices = ", ".join(k.value for k in NatKind)
        raise ValueError(f"unknown NAT kind {text!r}: choose from {choices}") from None
