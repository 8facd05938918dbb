"""SPED behind real NATs: the DTLS handshake ends with the checks, not on DTLS's own timer.

Two icepeer peers in a port-restricted x port-restricted cell of the lab
(no added delay). Each child connects, then says how often its DTLS flight
timer had to resend a flight. Before the fix, the client's second flight,
made after its last check had gone, waited for that timer (250 ms) in most
runs: nothing was left to carry it, and it went straight out nowhere.
"""

from __future__ import annotations

import json
import sys

from icepeer.lab.cell import Mode, ice_server_args
from icepeer.lab.kinds import NatKind
from icepeer.lab.lab import Lab
from icepeer.lab.runner import cell_topology, peer_namespaces
from icepeer.lab.topology import Options
from tests.conftest import require_coturn, require_root_netns

CHILD = """
import asyncio, json, sys
import icepeer

async def main():
    signal, room, *servers = sys.argv[1:]
    peer = await icepeer.connect(signal, room, ice_servers=servers, timeout=15)
    stack = peer._conn.stack
    sped = peer._conn.monitor.agent.sped
    print(json.dumps({"role": peer.role.value, "server": stack.dtls.server,
                      "timer_resends": stack.dtls.timer_resends, "sped": sped is not None}), flush=True)
    await asyncio.sleep(0.3)
    await peer.close()

asyncio.run(main())
"""


async def test_the_dtls_handshake_never_waits_for_its_timer_behind_nats() -> None:
    require_root_netns()
    require_coturn()
    topology = cell_topology(NatKind.PRC, NatKind.PRC, Options())
    namespaces = peer_namespaces(topology)
    servers = [a for a in ice_server_args(Mode.ICE) if a != "--ice-server"]
    async with Lab(topology) as lab:
        for run in range(4):
            argv = [sys.executable, "-c", CHILD, lab.signal_url, f"sped-{run}", *servers]
            procs = [await lab.spawn(ns, argv) for ns in namespaces]
            reports = []
            for proc in procs:
                out, err = await proc.communicate()
                assert proc.returncode == 0, err.decode()[-2000:]
                reports.append(json.loads(out.decode().splitlines()[0]))
            assert all(r["sped"] for r in reports)
            assert [r["timer_resends"] for r in reports] == [0, 0], reports
