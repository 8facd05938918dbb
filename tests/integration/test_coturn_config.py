"""examples/coturn/turnserver.conf run by a real coturn: no relaying to loopback or private peers.

coturn starts with the file itself (``turnserver -c FILE``), minus what only
a real host has: the TLS certificate lines (there is no certificate here;
:class:`Coturn` passes ``--no-tls``), the log destination (coturn 4.6.1 lets
the file's ``log-file`` win over the command line's) and the placeholder
secret. Addresses and ports come from the command line, which wins over the
file for single-valued options.

Only permission answers are checked: a CreatePermission or ChannelBind
installs a permission and sends nothing to the peer (RFC 8656 sections 9
and 12), so no packet leaves the machine, not even towards the public-looking
documentation addresses that must be allowed.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aioice import stun

from icepeer.coturn import Coturn, turnserver_path
from icepeer.turn import TurnFixes, allocate
from signaling.turn_rest import mint
from tests.conftest import require, require_coturn

CONFIG = Path(__file__).resolve().parents[2] / "examples" / "coturn" / "turnserver.conf"
SECRET = "test-secret-not-the-placeholder"
#: Options the test leaves out of the file (see the module docstring).
HOST_ONLY = {
    "cert",
    "pkey",
    "tls-listening-port",
    "cipher-list",
    "log-file",
    "syslog",
    "static-auth-secret",
}

DENIED_V4 = [
    "127.0.0.1",
    "127.1.2.3",
    "0.0.0.0",
    "0.1.2.3",  # loopback, "this network"
    "10.0.0.1",
    "10.255.255.254",
    "172.16.0.1",
    "172.31.255.254",
    "192.168.0.1",
    "192.168.255.254",
    "100.64.0.1",
    "100.127.255.254",  # carrier-grade NAT
    "169.254.169.254",  # link-local: the cloud metadata service
    "224.0.0.1",
    "239.255.255.250",  # multicast (no-multicast-peers)
    "198.18.0.1",
    "240.0.0.1",
]
#: Documentation ranges (RFC 5737, RFC 3849): public-looking, never routed;
#: a permission towards them sends nothing.
ALLOWED_V4 = ["203.0.113.5", "198.51.100.7", "192.0.2.33"]
DENIED_V6 = [
    "::1",
    "::",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "::ffff:192.168.1.1",
    "::ffff:100.64.0.1",  # IPv4-mapped
    "::ffff:169.254.169.254",
    "::ffff:203.0.113.5",
    "fc00::1",
    "fd12:3456:789a::1",
    "fe80::1",
    "febf::1",  # unique local, link-local
    "64:ff9b::a00:1",
    "2002:a00:1::1",  # NAT64 and 6to4 encodings of 10.0.0.1
    "ff02::1",  # multicast
]
ALLOWED_V6 = ["2001:db8::5", "2001:db8:ffff::1"]


def config_for_test(directory: Path) -> Path:
    """The example file without the lines only a real host can have."""
    kept = [
        line
        for line in CONFIG.read_text().splitlines()
        if line.strip().split("=", 1)[0].strip() not in HOST_ONLY
    ]
    path = directory / "turnserver.conf"
    path.write_text("\n".join(kept) + "\n")
    return path


def coturn_version() -> tuple[int, ...]:
    binary = turnserver_path()
    assert binary is not None
    out = subprocess.run(
        [binary, "--version"], capture_output=True, text=True, timeout=5, check=False
    ).stdout
    match = re.search(r"(\d+)\.(\d+)\.(\d+)", out)
    return tuple(int(x) for x in match.groups()) if match else (0,)


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


@contextlib.asynccontextmanager
async def hardened_coturn(
    tmp_path: Path, host: str = "127.0.0.1", *, config: bool = True
) -> AsyncIterator[Coturn]:
    require_coturn()
    # An IPv6 client gets an IPv6 relay ("keep"): without it coturn allocates IPv4
    # (RFC 6156) and answers 443 to every IPv6 peer before looking at the ranges.
    extra = ["--allocation-default-address-family=keep"] if ":" in host else []
    async with Coturn(
        host=host,
        config_file=str(config_for_test(tmp_path)) if config else None,
        secret=SECRET,
        allow_loopback_peers=False,
        extra_args=extra,
    ) as turn:
        yield turn


@contextlib.asynccontextmanager
async def allocation(turn: Coturn) -> AsyncIterator[TurnFixes]:
    """A relay allocated with credentials minted as the signaling server mints them."""
    assert turn.port is not None
    creds = mint(SECRET, "probe", 600)
    _, _, client = await allocate(
        asyncio.DatagramProtocol,
        server=(turn.host, turn.port),
        username=creds.username,
        password=creds.password,
    )
    try:
        yield client
    finally:
        client.closing()
        client.transport.close()


async def answer(client: TurnFixes, method: stun.Method, peer: str, channel: int = 0x4000) -> str:
    """'ok', or the error code the server answered (403: Forbidden IP)."""
    request = stun.Message(message_method=method, message_class=stun.Class.REQUEST)
    if method == stun.Method.CHANNEL_BIND:
        request.attributes["CHANNEL-NUMBER"] = channel
    request.attributes["XOR-PEER-ADDRESS"] = (peer, 9)
    try:
        await client.request_with_retry(request)
    except stun.TransactionFailed as exc:
        return str(exc.response.attributes["ERROR-CODE"][0])
    return "ok"


async def permissions(client: TurnFixes, peers: list[str]) -> dict[str, str]:
    return {peer: await answer(client, stun.Method.CREATE_PERMISSION, peer) for peer in peers}


def test_the_file_has_what_production_needs():
    options = [
        line.strip().split("=", 1)[0]
        for line in CONFIG.read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    for needed in (
        "use-auth-secret",
        "static-auth-secret",
        "realm",
        "cert",
        "pkey",
        "no-cli",
        "fingerprint",
        "no-multicast-peers",
        "user-quota",
        "total-quota",
        "log-file",
    ):
        assert needed in options, needed
    for forbidden in ("user", "lt-cred-mech", "allow-loopback-peers", "cli-password"):
        assert forbidden not in options, f"{forbidden} does not belong in a production file"


async def test_coturn_accepts_every_line(tmp_path):
    async with hardened_coturn(tmp_path) as turn:
        log = turn.log_path.read_text(errors="replace")
    assert "Bad configuration format" not in log, log
    assert "Black listing: ::ffff:0.0.0.0-::ffff:255.255.255.255" in log  # the file was read


async def test_relaying_to_loopback_and_private_ipv4_is_refused(tmp_path):
    async with hardened_coturn(tmp_path) as turn, allocation(turn) as client:
        got = await permissions(client, DENIED_V4 + ALLOWED_V4)
    assert got == {**dict.fromkeys(DENIED_V4, "403"), **dict.fromkeys(ALLOWED_V4, "ok")}


async def test_channel_bind_is_refused_the_same_way(tmp_path):
    async with hardened_coturn(tmp_path) as turn, allocation(turn) as client:
        private = await answer(client, stun.Method.CHANNEL_BIND, "10.1.2.3", 0x4000)
        loopback = await answer(client, stun.Method.CHANNEL_BIND, "127.0.0.1", 0x4001)
        public = await answer(client, stun.Method.CHANNEL_BIND, "203.0.113.5", 0x4002)
    assert (private, loopback, public) == ("403", "403", "ok")


async def test_ipv4_inside_ipv6_and_private_ipv6_are_refused(tmp_path):
    require(ipv6_loopback(), "no IPv6 loopback (::1) on this machine")
    async with hardened_coturn(tmp_path, "::1") as turn, allocation(turn) as client:
        got = await permissions(client, DENIED_V6 + ALLOWED_V6)
    assert got == {**dict.fromkeys(DENIED_V6, "403"), **dict.fromkeys(ALLOWED_V6, "ok")}


async def test_without_the_file_old_coturn_relays_to_ipv4_mapped_loopback(tmp_path):
    """Why the ::ffff: line is there: coturn < 4.10 relays to ::ffff:127.0.0.1 (CVE-2026-27624)."""
    require(ipv6_loopback(), "no IPv6 loopback (::1) on this machine")
    require_coturn()
    if coturn_version() >= (4, 10):
        pytest.skip("coturn 4.10 and later deny IPv4-mapped loopback by themselves")
    async with hardened_coturn(tmp_path, "::1", config=False) as turn, allocation(turn) as client:
        got = await permissions(client, ["::ffff:127.0.0.1", "::1"])
    assert got == {"::ffff:127.0.0.1": "ok", "::1": "403"}
