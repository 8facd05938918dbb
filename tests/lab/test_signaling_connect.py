"""A lost TCP SYN to the signaling server costs a connection attempt delay, not the kernel's 1 s."""

from __future__ import annotations

import subprocess
import sys

from icepeer.lab.kinds import NatKind
from icepeer.lab.lab import SIGNAL_PORT, Lab
from icepeer.lab.topology import GATEWAY_IP, Topology, new_prefix
from tests.conftest import require_root_netns

# Drop exactly the first SYN to the signaling server that the router forwards.
RULE = ["FORWARD", "-p", "tcp", "--syn", "-d", GATEWAY_IP, "--dport", str(SIGNAL_PORT),
        "-m", "statistic", "--mode", "nth", "--every", "1000000", "--packet", "0", "-j", "DROP"]

JOIN = """
import asyncio, sys, time
from signaling.client import SignalingClient
async def main():
    started = time.monotonic()
    delay = None if sys.argv[2] == "none" else float(sys.argv[2])
    client = await SignalingClient.connect(sys.argv[1], "syn-test", timeout=10, attempt_delay=delay)
    print(round(time.monotonic() - started, 3), flush=True)
    await client.leave()
asyncio.run(main())
"""


def dropped(router_ns: str) -> int:
    out = subprocess.run(["ip", "netns", "exec", router_ns, "iptables", "-L", "FORWARD", "-v", "-x",
                          "-n"], capture_output=True, text=True, check=True).stdout
    return sum(int(line.split()[0]) for line in out.splitlines() if "statistic mode nth" in line)


async def join_seconds(lab: Lab, host_ns: str, router_ns: str, attempt_delay: str) -> float:
    subprocess.run(["ip", "netns", "exec", router_ns, "iptables", "-I", *RULE], check=True)
    try:
        proc = await lab.spawn(host_ns, [sys.executable, "-c", JOIN, lab.signal_url, attempt_delay])
        out, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()
        assert dropped(router_ns) == 1  # the first SYN really was lost
    finally:
        subprocess.run(["ip", "netns", "exec", router_ns, "iptables", "-D", *RULE], check=True)
    return float(out.decode().split()[-1])


async def test_a_lost_syn_is_raced_not_waited_for() -> None:
    require_root_netns()
    async with Lab(Topology.make(new_prefix(), [NatKind.PRC])) as lab:
        site = lab.topology.sites[0]
        assert site.router_ns is not None
        raced = await join_seconds(lab, site.hosts[0].netns, site.router_ns, "0.25")
        # The same loss with a single attempt: the kernel's initial retransmission timeout.
        single = await join_seconds(lab, site.hosts[0].netns, site.router_ns, "none")
    assert single >= 1.0, single
    assert raced < 0.9, raced  # the second attempt, 250 ms in, got through
