"""The I/O half of gathering: local interface addresses and STUN server addresses.

The STUN transactions themselves run in the state machine (:mod:`.binding`).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Iterable

import ifaddr

from icecommon.urls import BadUrl, IceServerUrl, parse_ice_url

from ..errors import ConfigError

__all__ = ["host_addresses", "resolve_stun", "stun_urls"]

logger = logging.getLogger(__name__)

Address = tuple[str, int]


def host_addresses(bound: Address) -> list[Address]:
    """Host candidates for a socket bound to ``bound``.

    A socket bound to one address has that one. A wildcard socket has every
    IPv4 address of the machine's interfaces except loopback and link-local,
    which RFC 8445 section 5.1.1.1 leaves out; a machine with nothing else
    offers loopback, so that two peers on it still meet.
    """
    address, port = bound
    ip = ipaddress.ip_address(address)
    if not ip.is_unspecified:
        return [(str(ip), port)]
    found: list[Address] = []
    for adapter in ifaddr.get_adapters():
        for entry in adapter.ips:
            if not isinstance(entry.ip, str):
                continue  # IPv6 entries are tuples; the puncher is IPv4
            cand = ipaddress.ip_address(entry.ip)
            usable = cand.version == 4 and not (cand.is_loopback or cand.is_link_local)
            if usable and (entry.ip, port) not in found:
                found.append((entry.ip, port))
    return found or [("127.0.0.1", port)]


def stun_urls(urls: Iterable[str | IceServerUrl]) -> list[IceServerUrl]:
    """Keep the ``stun:`` URLs; TURN URLs are accepted and ignored (there is no relay here)."""
    out: list[IceServerUrl] = []
    for url in urls:
        try:
            parsed = parse_ice_url(url) if isinstance(url, str) else url
        except BadUrl as exc:
            raise ConfigError(str(exc)) from None
        if parsed.scheme == "stun":
            if parsed not in out:
                out.append(parsed)
        elif parsed.scheme == "stuns":
            logger.warning("ignoring %s: STUN over TLS is not supported by the puncher", parsed)
        else:
            logger.debug("ignoring %s: the puncher does not relay", parsed)
    return out


async def resolve_stun(urls: Iterable[IceServerUrl], *, timeout: float = 3.0
                       ) -> tuple[list[Address], list[str]]:
    """IPv4 addresses of the STUN servers; a name that does not resolve is an error in the list."""
    loop = asyncio.get_running_loop()
    servers: list[Address] = []
    errors: list[str] = []
    for url in urls:
        try:
            async with asyncio.timeout(timeout):
                infos = await loop.getaddrinfo(url.host, url.port, family=socket.AF_INET,
                                               type=socket.SOCK_DGRAM)
        except (OSError, TimeoutError) as exc:
            errors.append(f"cannot resolve STUN server {url.host}: {exc or 'timed out'}")
            logger.warning("%s", errors[-1])
            continue
        for info in infos[:1]:
            addr = (str(info[4][0]), int(info[4][1]))
            if addr not in servers:
                servers.append(addr)
    return servers, errors
