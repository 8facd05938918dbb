"""Router rulesets per NAT kind, as text: what each kind lets in and how it maps."""

from __future__ import annotations

import pytest

from icepeer.lab.kinds import NatKind, parse_kind
from icepeer.lab.rules import (
    Inbound,
    Router,
    host_loss_ruleset,
    ip6tables_ruleset,
    iptables_ruleset,
    nft_ruleset,
)

ROUTED = [k for k in NatKind if k.has_router]


def router(kind: NatKind, **kw: object) -> Router:
    return Router.for_kind(kind, wan="w0", lan="l0", wan_ip="198.51.100.10", lan_net="10.1.0.0/24", **kw)


def lines(text: str) -> list[str]:
    return text.splitlines()


@pytest.mark.parametrize("kind", ROUTED)
def test_every_router_drops_unsolicited_inbound(kind: NatKind) -> None:
    rules = lines(iptables_ruleset(router(kind)))
    est_in = rules.index("-A INPUT -i w0 -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT")
    assert rules.index("-A INPUT -i w0 -j DROP") == est_in + 1
    est_fwd = rules.index("-A FORWARD -i w0 -o l0 -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT")
    assert rules.index("-A FORWARD -i w0 -j DROP") > est_fwd
    assert ":FORWARD DROP [0:0]" in rules


@pytest.mark.parametrize("kind", ROUTED)
def test_mapping_random_only_for_symmetric(kind: NatKind) -> None:
    text = iptables_ruleset(router(kind))
    assert "-A POSTROUTING -o w0 -j MASQUERADE" in text
    assert ("--random-fully" in text) == (kind is NatKind.SYM)


def test_udpblock_drops_outbound_udp_before_accepting_the_rest() -> None:
    rules = lines(iptables_ruleset(router(NatKind.UDPBLOCK)))
    drop = rules.index("-A FORWARD -i l0 -o w0 -p udp -j DROP")
    assert drop < rules.index("-A FORWARD -i l0 -o w0 -j ACCEPT")
    assert not any("-p udp -j DROP" in r for r in lines(iptables_ruleset(router(NatKind.PRC))))


@pytest.mark.parametrize("kind", [NatKind.PRC, NatKind.SYM, NatKind.UDPBLOCK, NatKind.DOUBLE,
                                  NatKind.SAME_LAN])
def test_conntrack_only_kinds_need_no_nft(kind: NatKind) -> None:
    assert nft_ruleset(router(kind)) is None
    assert "--ctstate DNAT" not in iptables_ruleset(router(kind))


def test_full_cone_dnats_any_new_inbound_flow_to_a_mapped_port() -> None:
    r = router(NatKind.FULL)
    assert r.inbound is Inbound.ANY
    text = nft_ruleset(r)
    assert text is not None
    assert 'iifname "w0" meta l4proto udp dnat ip to udp dport map @mapped' in text
    # learned after source NAT, from the original direction only
    assert "priority 200" in text and "ct direction original update @mapped" in text
    assert "@contacted" not in text
    assert "-A FORWARD -i w0 -o l0 -m conntrack --ctstate DNAT -j ACCEPT" in iptables_ruleset(r)


def test_address_restricted_screens_new_flows_by_remote_address_before_dnat() -> None:
    text = nft_ruleset(router(NatKind.ADDR))
    assert text is not None
    assert "update @contacted { ip daddr . udp sport }" in text
    screen = text.index("chain screen")
    # -150 runs after conntrack (-200) and before destination NAT (-100)
    assert "priority -150" in text[screen:]
    assert "ct state new ip saddr . udp dport != @contacted drop" in text


def test_hairpin_dnats_lan_packets_to_the_public_address_and_snats_them() -> None:
    r = router(NatKind.SAME_LAN_HAIRPIN)
    text = nft_ruleset(r)
    assert text is not None
    assert 'iifname "l0" ip daddr 198.51.100.10 meta l4proto udp dnat ip to udp dport map @mapped' in text
    assert ("-A POSTROUTING -o l0 -s 10.1.0.0/24 -m conntrack --ctstate DNAT "
            "-j SNAT --to-source 198.51.100.10") in iptables_ruleset(r)
    assert nft_ruleset(router(NatKind.SAME_LAN)) is None


def test_state_timeout_reaches_the_sets() -> None:
    text = nft_ruleset(router(NatKind.ADDR, state_timeout=30))
    assert text is not None and text.count("timeout 30s;") == 2


def test_loss_is_the_first_forward_rule() -> None:
    rules = lines(iptables_ruleset(router(NatKind.PRC, loss=0.05)))
    first = next(r for r in rules if r.startswith("-A FORWARD"))
    assert first == "-A FORWARD -m statistic --mode random --probability 0.05 -j DROP"
    assert "statistic" not in iptables_ruleset(router(NatKind.PRC))


def test_host_loss_uses_ingress_of_the_device() -> None:
    text = host_loss_ruleset("eth9", 0.1)
    assert 'hook ingress device "eth9"' in text
    assert "meta protocol ip numgen random mod 1000000 < 100000 drop" in text


def test_none_has_no_router() -> None:
    with pytest.raises(ValueError):
        router(NatKind.NONE)


def test_parse_kind() -> None:
    assert parse_kind(" PRC ") is NatKind.PRC
    with pytest.raises(ValueError, match="choose from none, full"):
        parse_kind("cone")
    assert {k.expected_nat_type for k in NatKind} >= {
        "open internet", "full cone", "address-restricted cone", "port-restricted cone",
        "symmetric", "UDP blocked"}


@pytest.mark.parametrize("kind", ROUTED)
def test_ipv6_firewall_drops_unsolicited_inbound_and_translates_nothing(kind: NatKind) -> None:
    text = ip6tables_ruleset(router(kind))
    rules = lines(text)
    assert ":FORWARD DROP [0:0]" in rules
    est = rules.index("-A FORWARD -i w0 -o l0 -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT")
    assert rules.index("-A FORWARD -i w0 -j DROP") == est + 1
    assert rules.index("-A INPUT -i w0 -j DROP") > rules.index(
        "-A INPUT -i w0 -p ipv6-icmp --icmpv6-type neighbour-solicitation -j ACCEPT")
    assert "*nat" not in text and "MASQUERADE" not in text and "DNAT" not in text
    assert ("-A FORWARD -i l0 -o w0 -p udp -j DROP" in rules) == (kind is NatKind.UDPBLOCK)


def test_ipv6_firewall_loses_as_ipv4_does() -> None:
    rules = lines(ip6tables_ruleset(router(NatKind.PRC, loss=0.05)))
    assert rules[4] == "-A FORWARD -m statistic --mode random --probability 0.05 -j DROP"


def test_host_loss_spares_neighbour_discovery() -> None:
    plain = host_loss_ruleset("h0", 0.05)
    assert "ip6" not in plain and "< 50000 drop" in plain
    dual = lines(host_loss_ruleset("h0", 0.05, ipv6=True))
    nd = next(i for i, line in enumerate(dual) if "nd-neighbor-solicit" in line)
    assert dual[nd].endswith("accept")
    assert dual[nd + 1].strip() == "meta protocol ip6 numgen random mod 1000000 < 50000 drop"
