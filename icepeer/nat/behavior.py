"""Classify a NAT from the results of the RFC 5780 behaviour tests. No I/O.

The tests (RFC 5780 section 4), each a STUN Binding request:

- test I: to the server's primary address; the answer gives our mapped
  address and the server's OTHER-ADDRESS (its second IP and port);
- mapping (section 4.3), on one socket: test II to (other IP, primary port),
  test III to (other IP, other port). Same mapped address in I and II:
  endpoint-independent; else same in II and III: address-dependent; else
  address-and-port-dependent;
- filtering (section 4.4), on a second socket that has only ever sent to the
  primary address: test II asks the server to answer from the other IP and
  port (CHANGE-REQUEST change-IP and change-port), test III from the other
  port only. An answer to II: endpoint-independent; else an answer to III:
  address-dependent; else address-and-port-dependent.

The filtering tests use their own socket because the mapping tests open the
NAT's filter towards the other address.

A server with one address sends no OTHER-ADDRESS (coturn answers RFC 5780
only when it listens on two): then only test I runs, and all we can tell is
whether UDP gets through and whether there is a NAT at all.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = [
    "Address",
    "Binding",
    "Filtering",
    "Mapping",
    "NatType",
    "Observations",
    "Verdict",
    "classify",
    "filtering_behaviour",
    "mapping_behaviour",
    "nat_type",
]

Address = tuple[str, int]


class Behaviour(str, enum.Enum):
    """RFC 4787 sections 4.1 and 5."""

    ENDPOINT_INDEPENDENT = "endpoint-independent"
    ADDRESS_DEPENDENT = "address-dependent"
    ADDRESS_AND_PORT_DEPENDENT = "address-and-port-dependent"
    UNKNOWN = "unknown"


Mapping = Behaviour
Filtering = Behaviour


class NatType(str, enum.Enum):
    """The familiar names (RFC 3489 section 5), with the cases it had no name for."""

    OPEN_INTERNET = "open internet"
    FIREWALL = "no NAT, firewalled"
    FULL_CONE = "full cone"
    ADDRESS_RESTRICTED = "address-restricted cone"
    PORT_RESTRICTED = "port-restricted cone"
    SYMMETRIC = "symmetric"
    UDP_BLOCKED = "UDP blocked"
    NAT_UNKNOWN = "NAT of unknown type"
    NO_NAT_UNKNOWN = "no NAT, filtering unknown"


@dataclass(frozen=True)
class Binding:
    """One Binding success response."""

    mapped: Address
    """XOR-MAPPED-ADDRESS: our address as the server saw it."""
    other: Address | None = None
    """OTHER-ADDRESS: the server's alternate IP and port, if it has them."""


@dataclass(frozen=True)
class Observations:
    """What the tests saw. ``None`` for a test means: no answer (or not run, see below)."""

    local: Address
    """Our socket's own address (its real IP, not 0.0.0.0)."""
    test1: Binding | None
    mapping2: Binding | None = None
    mapping3: Binding | None = None
    filter_local: Address | None = None
    """The filtering socket's own address; ``None`` if the filtering tests did not run."""
    filter1: Binding | None = None
    filter2: bool = False
    """An answer came back from the other IP and port (change-IP and change-port)."""
    filter3: bool = False
    """An answer came back from the primary IP's other port (change-port)."""
    change_ignored: bool = False
    """The server answered a CHANGE-REQUEST from the primary address, or refused it."""


@dataclass(frozen=True)
class Verdict:
    mapping: Behaviour
    filtering: Behaviour
    nat_type: NatType
    nat: bool | None
    """Whether our address is translated; ``None`` if UDP got no answer at all."""
    mapped: Address | None
    notes: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.nat_type.value


def mapping_behaviour(test1: Address, test2: Address | None, test3: Address | None) -> Behaviour:
    """RFC 5780 section 4.3, from the mapped addresses of tests I, II and III."""
    if test2 is None:
        return Behaviour.UNKNOWN
    if test2 == test1:
        return Behaviour.ENDPOINT_INDEPENDENT
    if test3 is None:
        return Behaviour.UNKNOWN
    if test3 == test2:
        return Behaviour.ADDRESS_DEPENDENT
    return Behaviour.ADDRESS_AND_PORT_DEPENDENT


def filtering_behaviour(change_both_answered: bool, change_port_answered: bool) -> Behaviour:
    """RFC 5780 section 4.4, from whether tests II and III got an answer."""
    if change_both_answered:
        return Behaviour.ENDPOINT_INDEPENDENT
    if change_port_answered:
        return Behaviour.ADDRESS_DEPENDENT
    return Behaviour.ADDRESS_AND_PORT_DEPENDENT


def nat_type(nat: bool, mapping: Behaviour, filtering: Behaviour) -> NatType:
    """The familiar name for a combination of behaviours."""
    E, A = Behaviour.ENDPOINT_INDEPENDENT, Behaviour.ADDRESS_DEPENDENT
    if not nat:
        if filtering is Behaviour.UNKNOWN:
            return NatType.NO_NAT_UNKNOWN
        return NatType.OPEN_INTERNET if filtering is E else NatType.FIREWALL
    if mapping in (A, Behaviour.ADDRESS_AND_PORT_DEPENDENT):
        return NatType.SYMMETRIC
    if mapping is Behaviour.UNKNOWN or filtering is Behaviour.UNKNOWN:
        return NatType.NAT_UNKNOWN
    return {
        E: NatType.FULL_CONE,
        A: NatType.ADDRESS_RESTRICTED,
        Behaviour.ADDRESS_AND_PORT_DEPENDENT: NatType.PORT_RESTRICTED,
    }[filtering]


def classify(obs: Observations) -> Verdict:
    """The behaviours and the familiar name, with notes on what could not be told."""
    U = Behaviour.UNKNOWN
    if obs.test1 is None:
        note = ("no answer from the STUN server over UDP: UDP is blocked on the way, "
                "or the server is down")
        return Verdict(U, U, NatType.UDP_BLOCKED, None, None, (note,))
    mapped = obs.test1.mapped
    nat = mapped != obs.local
    notes: list[str] = []
    if obs.test1.other is None:
        notes.append(
            "the STUN server has only one address (no OTHER-ADDRESS in its answer), so the "
            "RFC 5780 mapping and filtering tests cannot run: all that can be told is "
            + ("that there is a NAT" if nat else "that there is no NAT")
            + " and that UDP gets through; use a server listening on two IP addresses"
        )
        return Verdict(U, U, nat_type(nat, U, U), nat, mapped, tuple(notes))
    if nat:
        mapping = mapping_behaviour(
            mapped,
            obs.mapping2.mapped if obs.mapping2 else None,
            obs.mapping3.mapped if obs.mapping3 else None,
        )
        if obs.mapping2 is None:
            notes.append("no answer from the server's other address: mapping unknown")
        elif mapping is U:
            notes.append("no answer from the server's other port: mapping unknown")
    else:
        # RFC 5780 section 4.3: no translation, so the mapping is not an issue.
        mapping = Behaviour.ENDPOINT_INDEPENDENT
    if obs.filter1 is None:
        filtering = U
        notes.append("the filtering tests got no first answer: filtering unknown")
    elif obs.change_ignored:
        filtering = U
        notes.append("the STUN server does not honour CHANGE-REQUEST (RFC 5780 section 7.2): "
                     "filtering unknown")
    else:
        filtering = filtering_behaviour(obs.filter2, obs.filter3)
    return Verdict(mapping, filtering, nat_type(nat, mapping, filtering), nat, mapped, tuple(notes))
