"""The delay line's schedule: how long each frame is held, in what order, what passes at once."""

from __future__ import annotations

import random

from icepeer.lab.delayline import SLACK, Direction, WireSpec, delayed

MAC = b"\x02\x00\x00\x00\x00\x01" * 2


def ipv4(n: int = 0) -> bytes:
    return MAC + b"\x08\x00" + bytes(20) + n.to_bytes(4, "big")


def ipv6(next_header: int, icmp_type: int = 0) -> bytes:
    header = bytes(6) + bytes([next_header]) + bytes(33)
    return MAC + b"\x86\xdd" + header + bytes([icmp_type]) + bytes(23)


ARP = MAC + b"\x08\x06" + bytes(28)


def test_ip_is_held_link_chatter_is_not() -> None:
    assert delayed(ipv4())
    assert delayed(ipv6(17))  # UDP
    assert delayed(ipv6(58, 128))  # ICMPv6 echo: a packet like any other
    assert not delayed(ipv6(58, 135))  # neighbour solicitation
    assert not delayed(ipv6(58, 136))
    assert not delayed(ARP)


def test_a_frame_leaves_after_its_delay_not_before() -> None:
    d = Direction(25)
    assert d.push(ipv4(1), now=10.0)
    assert d.next_due == 10.025
    assert list(d.pop_due(10.025 - SLACK - 0.001)) == []
    assert list(d.pop_due(10.025)) == [ipv4(1)]
    assert len(d) == 0 and d.next_due is None


def test_link_frames_are_not_queued() -> None:
    d = Direction(25)
    assert not d.push(ARP, now=0.0)
    assert not d.push(ipv6(58, 136), now=0.0)
    assert len(d) == 0


def test_jitter_spreads_delays_but_never_reorders() -> None:
    d = Direction(20, 10, rng=random.Random(7))
    for n in range(200):
        d.push(ipv4(n), now=n * 0.001)
    leaving: list[tuple[float, int]] = []
    t = 0.0
    while len(d):
        t += 0.0005
        for frame in d.pop_due(t):
            leaving.append((t, int.from_bytes(frame[-4:], "big")))
    order = [n for _, n in leaving]
    assert order == sorted(order)  # first in, first out
    held = [when - n * 0.001 for when, n in leaving]
    assert min(held) >= 0.010 - SLACK  # delay minus jitter at the least
    assert max(held) <= 0.030 + 0.001  # delay plus jitter, give or take one step
    assert max(held) - min(held) > 0.010  # the jitter is really there


def test_a_full_queue_drops_rather_than_grows() -> None:
    d = Direction(1000, limit=3)
    for n in range(5):
        assert d.push(ipv4(n), now=0.0)
    assert len(d) == 3 and d.dropped == 2


def test_spec_round_trips_through_json() -> None:
    spec = WireSpec("ns-a", "a-w", "ns-pub", "a-p", 10.0, 2.5)
    assert WireSpec.from_json(spec.to_json()) == spec
