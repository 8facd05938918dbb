"""The impairments really happen: loss drops, the delay line delays, the rate limit caps, profiles build."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from icepeer.lab.kinds import NatKind
from icepeer.lab.netns import inside
from icepeer.lab.options import Options
from icepeer.lab.profiles import PROFILES
from icepeer.lab.topology import STUN_IP
from tests.conftest import require_root_netns

from .conftest import BuiltLab, udp


def count_through(lab: BuiltLab, kind: NatKind, n: int = 300) -> int:
    site = next(s for s in lab.topology.sites if s.kind is kind)
    server = udp(lab.topology.pub_ns, (STUN_IP, 41000), timeout=0.5)
    host = udp(site.hosts[0].netns)
    host.settimeout(None)
    for i in range(n):
        host.sendto(b"%d" % i, (STUN_IP, 41000))
    got = 0
    try:
        while True:
            server.recvfrom(100)
            got += 1
    except TimeoutError:
        pass
    server.close()
    host.close()
    return got


@pytest.mark.parametrize("kind", [NatKind.PRC, NatKind.NONE], ids=["router", "no-router"])
def test_loss_drops_about_the_asked_share(kind: NatKind) -> None:
    require_root_netns()
    with BuiltLab([kind], Options(loss_percent=30)) as lab:
        got = count_through(lab, kind)
    # 300 packets, 30 % loss: 210 expected, sd ~8; far outside this range means it is not applied
    assert 160 < got < 260, got


def test_no_loss_by_default() -> None:
    require_root_netns()
    with BuiltLab([NatKind.PRC]) as lab:
        assert count_through(lab, NatKind.PRC, 100) == 100


def echo_rtt(client_ns: str, server_ns: str, server: tuple[str, int], tries: int = 5,
             timeout: float = 2) -> float:
    """The smallest round trip of a few UDP pings from ``client_ns`` to an echo in ``server_ns``."""
    srv = udp(server_ns, server, timeout=timeout)
    cli = udp(client_ns, timeout=timeout)
    best = float("inf")
    try:
        for i in range(tries):
            started = time.monotonic()
            cli.sendto(b"ping %d" % i, server)
            try:
                data, addr = srv.recvfrom(100)
                srv.sendto(data, addr)
                cli.recvfrom(100)
            except TimeoutError:
                continue  # lost (a profile with loss): try again
            best = min(best, time.monotonic() - started)
    finally:
        srv.close()
        cli.close()
    return best


def wire_processes(prefix: str) -> list[int]:
    """Delay line processes serving the lab ``prefix`` (its device names are in the command line)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if b"icepeer.lab.wire" in cmdline and prefix.encode() in cmdline:
            found.append(int(entry.name))
    return found


def test_delay_line_adds_its_latency() -> None:
    require_root_netns()
    # 50 ms one way between two sites' hosts: 25 ms on each uplink, each way.
    with BuiltLab([NatKind.PRC, NatKind.NONE], Options(delay_ms=50)) as lab:
        t = lab.topology
        prc, none = t.sites
        assert len(wire_processes(t.prefix)) >= 1
        to_server = echo_rtt(prc.hosts[0].netns, t.pub_ns, (STUN_IP, 41001))
        between_sites = echo_rtt(prc.hosts[0].netns, none.hosts[0].netns, (none.public_ip, 41002))
    assert 0.050 <= to_server < 0.5, to_server  # one uplink there and back
    assert 0.100 <= between_sites < 0.6, between_sites  # two uplinks there and back
    assert wire_processes(t.prefix) == []  # the delay line stopped with the lab


def test_without_delay_there_is_no_delay_line() -> None:
    require_root_netns()
    with BuiltLab([NatKind.PRC]) as lab:
        assert lab.topology.wires() == []
        rtt = echo_rtt(lab.topology.sites[0].hosts[0].netns, lab.topology.pub_ns, (STUN_IP, 41003))
    assert rtt < 0.02, rtt  # plain veth: well under a millisecond, with room for a busy machine


def tcp_transfer_seconds(client_ns: str, server_ns: str, address: str, size: int, *,
                         upload: bool) -> float:
    """Seconds for ``size`` bytes over TCP (client to server, or back), until the last arrived."""
    with inside(server_ns):
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind((address, 0))
    listener.listen(1)
    listener.settimeout(10)
    with inside(client_ns):
        client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    client.settimeout(30)
    client.connect((address, listener.getsockname()[1]))
    server, _ = listener.accept()
    server.settimeout(30)
    listener.close()
    sender, receiver = (client, server) if upload else (server, client)
    thread = threading.Thread(target=sender.sendall, args=(b"x" * size,))
    started = time.monotonic()
    thread.start()
    total = 0
    while total < size:
        chunk = receiver.recv(65536)
        assert chunk, "the transfer stopped"
        total += len(chunk)
    seconds = time.monotonic() - started
    thread.join(10)
    client.close()
    server.close()
    return seconds


def test_rate_caps_a_transfer_both_ways() -> None:
    require_root_netns()
    size = 500_000  # 4 Mbit: a second at 4 Mbit/s
    with BuiltLab([NatKind.PRC], Options(rate_mbit=4)) as lab:
        host, pub = lab.topology.sites[0].hosts[0], lab.topology.pub_ns
        up = tcp_transfer_seconds(host.netns, pub, STUN_IP, size, upload=True)
        down = tcp_transfer_seconds(host.netns, pub, STUN_IP, size, upload=False)
    for seconds in (up, down):
        mbit = size * 8 / seconds / 1e6
        # Capped: never above the rate (plus the bucket's burst); well above nothing.
        assert 1.5 < mbit < 4.6, (mbit, up, down)


@pytest.mark.parametrize("name", list(PROFILES))
def test_every_profile_builds(name: str) -> None:
    require_root_netns()
    options = PROFILES[name].options
    with BuiltLab([NatKind.PRC, NatKind.SYM], options) as lab:
        t = lab.topology
        ns, dev, outer = t.sites[0].uplink
        qdiscs = subprocess.run(["tc", "-n", ns, "qdisc", "show", "dev", dev], capture_output=True,
                                text=True, check=True).stdout
        rtt = echo_rtt(t.sites[0].hosts[0].netns, t.pub_ns, (STUN_IP, 41004), tries=8, timeout=0.5)
    if options.rate_mbit:
        assert "tbf" in qdiscs and f"rate {options.rate_mbit:g}Mbit" in qdiscs, qdiscs
    else:
        assert "tbf" not in qdiscs
    # To the server: one uplink each way, so the profile's one-way delay (half its RTT).
    assert options.delay_ms / 1000 <= rtt < options.delay_ms / 1000 + 0.3, rtt
