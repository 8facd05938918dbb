"""The RFC 5780 classifier, with plain calls: observations in, behaviours and a name out."""

from __future__ import annotations

import pytest

from icepeer.nat.behavior import (
    Behaviour,
    Binding,
    NatType,
    Observations,
    classify,
    filtering_behaviour,
    mapping_behaviour,
    nat_type,
)

E, A, AP, U = (Behaviour.ENDPOINT_INDEPENDENT, Behaviour.ADDRESS_DEPENDENT,
               Behaviour.ADDRESS_AND_PORT_DEPENDENT, Behaviour.UNKNOWN)
LOCAL = ("10.1.0.2", 40000)
OTHER = ("198.51.100.3", 3479)


def b(port: int, ip: str = "198.51.100.10", other: tuple[str, int] | None = OTHER) -> Binding:
    return Binding((ip, port), other)


def obs(m1: int, m2: int | None, m3: int | None, f2: bool, f3: bool, *, ip: str = "198.51.100.10",
        local: tuple[str, int] = LOCAL) -> Observations:
    return Observations(
        local, b(m1, ip), b(m2, ip) if m2 else None, b(m3, ip) if m3 else None,
        filter_local=(local[0], local[1] + 1), filter1=b(m1 + 1, ip), filter2=f2, filter3=f3)


def test_mapping_rules() -> None:
    x = ("198.51.100.10", 1)
    y = ("198.51.100.10", 2)
    z = ("198.51.100.10", 3)
    assert mapping_behaviour(x, x, None) is E  # test III not needed
    assert mapping_behaviour(x, y, y) is A
    assert mapping_behaviour(x, y, z) is AP
    assert mapping_behaviour(x, None, None) is U
    assert mapping_behaviour(x, y, None) is U


def test_filtering_rules() -> None:
    assert filtering_behaviour(True, True) is E
    assert filtering_behaviour(True, False) is E  # change-IP-and-port answered: anything gets in
    assert filtering_behaviour(False, True) is A
    assert filtering_behaviour(False, False) is AP


@pytest.mark.parametrize(("observations", "mapping", "filtering", "name"), [
    (obs(5000, 5000, 5000, True, True), E, E, NatType.FULL_CONE),
    (obs(5000, 5000, 5000, False, True), E, A, NatType.ADDRESS_RESTRICTED),
    (obs(5000, 5000, 5000, False, False), E, AP, NatType.PORT_RESTRICTED),
    (obs(5000, 6000, 6000, False, False), A, AP, NatType.SYMMETRIC),
    (obs(5000, 6000, 7000, False, False), AP, AP, NatType.SYMMETRIC),
    (obs(5000, 6000, 7000, True, True), AP, E, NatType.SYMMETRIC),
    (obs(40000, 40000, 40000, True, True, ip="10.1.0.2"), E, E, NatType.OPEN_INTERNET),
    (obs(40000, 40000, 40000, False, False, ip="10.1.0.2"), E, AP, NatType.FIREWALL),
])
def test_classify(observations: Observations, mapping: Behaviour, filtering: Behaviour,
                  name: NatType) -> None:
    v = classify(observations)
    assert (v.mapping, v.filtering, v.nat_type) == (mapping, filtering, name)
    assert v.name == name.value and v.notes == ()


def test_no_answer_means_udp_blocked() -> None:
    v = classify(Observations(LOCAL, None))
    assert v.nat_type is NatType.UDP_BLOCKED and v.name == "UDP blocked"
    assert v.nat is None and v.mapped is None
    assert "UDP is blocked" in v.notes[0]


def test_one_address_server_says_what_it_cannot_tell() -> None:
    v = classify(Observations(LOCAL, b(5000, other=None)))
    assert (v.mapping, v.filtering, v.nat_type) == (U, U, NatType.NAT_UNKNOWN)
    assert v.nat is True
    assert "only one address" in v.notes[0] and "that there is a NAT" in v.notes[0]
    public = classify(Observations(("198.51.100.10", 5000), b(5000, other=None)))
    assert public.nat_type is NatType.NO_NAT_UNKNOWN and "that there is no NAT" in public.notes[0]


def test_partial_answers_leave_behaviours_unknown() -> None:
    no_other = Observations(LOCAL, b(5000), None, None, filter_local=LOCAL, filter1=b(5001))
    v = classify(no_other)
    assert v.mapping is U and v.nat_type is NatType.NAT_UNKNOWN
    assert any("other address" in n for n in v.notes)
    no_filter = Observations(LOCAL, b(5000), b(5000), b(5000))
    v = classify(no_filter)
    assert v.mapping is E and v.filtering is U and v.nat_type is NatType.NAT_UNKNOWN


def test_ignored_change_request_is_not_endpoint_independent_filtering() -> None:
    o = Observations(LOCAL, b(5000), b(5000), b(5000), filter_local=LOCAL, filter1=b(5001),
                     filter2=False, filter3=False, change_ignored=True)
    v = classify(o)
    assert v.filtering is U and "CHANGE-REQUEST" in v.notes[0]


def test_names() -> None:
    assert nat_type(True, A, E) is NatType.SYMMETRIC
    assert nat_type(False, E, U) is NatType.NO_NAT_UNKNOWN
    assert nat_type(True, E, U) is NatType.NAT_UNKNOWN
