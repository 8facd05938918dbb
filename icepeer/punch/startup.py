"""Start-up of a punched connection: join the room, find the STUN servers, bind, make the session.

Everything here happens once, before the :class:`~.link.PunchLink` exists;
what it returns is what the link runs on. The order matters: the options are
checked before anything touches the network; the signaling server's
``ice_servers`` add STUN servers; the socket the session gathers from is the
socket it punches with (RFC 5128 section 3.3).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import ssl
from collections.abc import Iterable
from dataclasses import dataclass

from icecommon.urls import BadUrl, IceServerUrl, parse_ice_servers
from signaling.client import ServerRefused, SignalingClient, SignalingUnavailable

from ..errors import ConfigError, SignalingFailed
from .config import PunchConfig
from .gather import host_addresses, resolve_stun, stun_urls
from .pump import Endpoint
from .session import PunchSession

__all__ = ["Started", "start"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Started:
    """In the room with a bound socket and a session gathering on it."""

    session: PunchSession
    transport: asyncio.DatagramTransport
    endpoint: Endpoint
    client: SignalingClient
    #: When the whole attempt must be connected (loop time), None for no limit.
    deadline: float | None
    #: STUN servers whose names did not resolve.
    errors: list[str]

    async def abandon(self) -> None:
        """Leave the room without a link (the caller failed before making one)."""
        with contextlib.suppress(Exception):
            await self.client.leave()


async def start(
    signal_url: str,
    room: str,
    *,
    stun: Iterable[str | IceServerUrl],
    timeout: float | None,
    bind: str,
    port: int,
    config: PunchConfig | None,
    ssl_context: ssl.SSLContext | None,
) -> Started:
    """Raises :class:`ConfigError` or :class:`SignalingFailed` (then nothing is left open)."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    deadline = None if timeout is None else started + timeout
    urls = stun_urls(stun)
    try:
        bind_ip = ipaddress.ip_address(bind)
    except ValueError:
        raise ConfigError(f"--bind needs an IP address, got {bind!r}") from None
    if bind_ip.version != 4:
        raise ConfigError("the puncher is IPv4 only: bind to an IPv4 address")
    try:
        client = await SignalingClient.connect(
            signal_url, room, timeout=10.0 if timeout is None else min(10.0, timeout),
            ssl_context=ssl_context)
    except ServerRefused as exc:
        raise SignalingFailed(str(exc), code=exc.code) from exc
    except SignalingUnavailable as exc:
        raise SignalingFailed(str(exc)) from exc
    try:
        joined = loop.time()
        try:
            urls += [u for u in stun_urls(parse_ice_servers(client.ice_servers)) if u not in urls]
        except (BadUrl, ConfigError) as exc:
            logger.warning("ignoring the signaling server's ICE servers: %s", exc)
        servers, errors = await resolve_stun(urls, timeout=(config or PunchConfig()).stun_timeout)
        try:
            transport, endpoint = await loop.create_datagram_endpoint(
                Endpoint, local_addr=(str(bind_ip), port))
        except OSError as exc:
            raise ConfigError(f"cannot bind UDP {bind}:{port}: {exc}") from exc
        sockname = transport.get_extra_info("sockname")
        hosts = host_addresses((str(sockname[0]), int(sockname[1])))
        session = PunchSession(host_candidates=hosts, stun_servers=servers, now=loop.time(),
                               config=config, connect_deadline=deadline, started=started)
        session.mark("joined", joined)
        return Started(session, transport, endpoint, client, deadline, errors)
    except BaseException:
        with contextlib.suppress(Exception):
            await client.leave()
        raise
