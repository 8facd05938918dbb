"""TURN client (RFC 8656) on top of aioice's, with the faults we found fixed.

aioice's TURN client protocols are used as they are, with three repairs
(``tests/integration/test_turn_faults.py`` shows each against a real coturn):

1. A malformed STUN message from the server makes ``stun.parse_message``
   raise ``struct.error``, which aioice does not catch: on TURN over TCP that
   exception closes the connection. Here it is counted and dropped.
2. After ``438 Stale Nonce`` aioice retries the request once; a second 438
   (the nonce went stale again meanwhile) fails the request. Here the retry
   repeats, each time with the newest nonce, up to :data:`MAX_NONCE_RETRIES`.
3. When the allocation is lost (the server restarted or closed it), aioice
   keeps using it. Here the loss is detected: a 437 (Allocation Mismatch),
   a failed refresh, a 400/403 to a ChannelBind or Refresh after a
   re-authentication, or the TCP connection closing, and ``on_lost`` is
   called so that the ICE layer can allocate again.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import ssl as ssl_module
import struct
from collections.abc import Callable
from typing import Any

from aioice import stun, turn
from aioice.candidate import Candidate, candidate_foundation, candidate_priority
from aioice.utils import random_transaction_id

from .compat.aioice import attach_turn

__all__ = ["MAX_NONCE_RETRIES", "allocate", "TurnFixes"]

logger = logging.getLogger(__name__)

MAX_NONCE_RETRIES = 3
#: Error codes meaning "this allocation no longer exists" (RFC 8656 sections 7.3, 8, 11, 12).
LOST_CODES = {437}
#: Codes meaning the same when they follow a re-authentication with a fresh nonce:
#: coturn answers 400 to requests that land in a new server session.
LOST_AFTER_REAUTH = {400, 403}


class TurnFixes(turn.TurnClientMixin):
    """Repairs mixed in before aioice's UDP and TCP TURN client protocols."""

    on_lost: Callable[[str], None] | None = None
    malformed = 0
    lost_reason: str | None = None
    _allocated = False

    def datagram_received(self, data: bytes | str, addr: tuple[str, int]) -> None:
        try:
            super().datagram_received(data, addr)
        except (struct.error, ValueError, KeyError, IndexError, TypeError) as exc:
            # Fault 1: aioice lets struct.error escape stun.parse_message.
            self.malformed += 1
            logger.info("%s dropped a malformed message from %s: %r", self, addr, exc)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._allocated:
            self._lost(f"connection to the TURN server closed ({exc or 'EOF'})")
        super().connection_lost(exc)

    async def connect(self) -> tuple[str, int]:
        address = await super().connect()
        self._allocated = True
        return address

    async def request_with_retry(self, request: stun.Message) -> tuple[stun.Message, tuple[str, int]]:
        reauthenticated = False
        for attempt in range(MAX_NONCE_RETRIES + 1):
            try:
                response = await self.request(request)
                if attempt:
                    logger.debug("%s %s succeeded after %d re-authentications", self, request.message_method, attempt)
                return response
            except stun.TransactionFailed as exc:
                code = exc.response.error_code
                attributes = exc.response.attributes
                can_retry = (
                    "NONCE" in attributes
                    and self.username is not None
                    and self.password is not None
                    and (
                        (code == 401 and "REALM" in attributes and self.integrity_key is None)
                        or (code == 438 and (self.realm is not None or "REALM" in attributes))
                    )
                )
                if self._allocated and (
                    code in LOST_CODES or (reauthenticated and code in LOST_AFTER_REAUTH)
                ):
                    self._lost(f"TURN server answered {code} to {request.message_method.name}: allocation lost")
                if not can_retry or attempt == MAX_NONCE_RETRIES:
                    raise
                # Fault 2: refresh the nonce (and realm) and retry, as often as needed.
                self.nonce = attributes["NONCE"]
                if "REALM" in attributes:
                    self.realm = attributes["REALM"]
                assert self.realm is not None and self.username is not None and self.password is not None
                self.integrity_key = turn.make_integrity_key(self.username, self.realm, self.password)
                request.transaction_id = random_transaction_id()
                reauthenticated = reauthenticated or code == 438
        raise AssertionError("unreachable")  # pragma: no cover

    async def refresh(self, time_to_expiry: int) -> None:
        await super().refresh(time_to_expiry)
        # aioice's refresh() only returns when a refresh failed (it closed the transport).
        self._lost("TURN allocation refresh failed")

    async def probe(self) -> bool:
        """Refresh the allocation now; False (and ``on_lost``) if it is gone (RFC 8656 section 7)."""
        request = stun.Message(message_method=stun.Method.REFRESH, message_class=stun.Class.REQUEST)
        request.attributes["LIFETIME"] = self.lifetime
        try:
            await self.request_with_retry(request)
        except stun.TransactionFailed as exc:
            self._lost(f"TURN refresh answered {exc.response.error_code}: allocation lost")
            return False
        except (stun.TransactionError, ConnectionError) as exc:
            self._lost(f"TURN server unreachable: {exc}")
            return False
        return True

    def closing(self) -> None:
        """We are deleting the allocation ourselves: that is no loss."""
        self._allocated = False
        self.on_lost = None

    def _lost(self, reason: str) -> None:
        if self.lost_reason is not None:
            return
        self.lost_reason = reason
        logger.warning("%s: %s", self, reason)
        if self.on_lost is not None:
            self.on_lost(reason)


class UdpTurn(TurnFixes, turn.TurnClientUdpProtocol):
    pass


class TcpTurn(TurnFixes, turn.TurnClientTcpProtocol):
    pass


async def allocate(
    protocol_factory: Callable[[], asyncio.DatagramProtocol],
    *,
    server: tuple[str, int],
    username: str | None,
    password: str | None,
    transport: str = "udp",
    ssl: ssl_module.SSLContext | bool | None = None,
    server_hostname: str | None = None,
    component: int = 1,
    hide_related_address: bool = False,
    on_lost: Callable[[str], None] | None = None,
) -> tuple[Candidate, Any, TurnFixes]:
    """Allocate a relayed address; return its candidate, the receiving protocol and the TURN client.

    Mirrors ``aioice.turn.create_turn_endpoint`` and
    ``aioice.ice.relayed_candidate`` with the repaired protocols above.
    """
    loop = asyncio.get_running_loop()
    kwargs: dict[str, Any] = {
        "username": username,
        "password": password,
        "lifetime": turn.DEFAULT_ALLOCATION_LIFETIME,
        "channel_refresh_time": turn.DEFAULT_CHANNEL_REFRESH_TIME,
    }
    inner: TurnFixes
    if transport == "tcp":
        _, inner = await loop.create_connection(
            lambda: TcpTurn(server, **kwargs),
            host=server[0],
            port=server[1],
            ssl=ssl or None,
            server_hostname=(server_hostname or server[0]) if ssl else None,
        )
    else:
        inner_transport, inner = await loop.create_datagram_endpoint(
            lambda: UdpTurn(server, **kwargs), remote_addr=server
        )
        sock = inner_transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, turn.UDP_SOCKET_BUFFER_SIZE)
    inner.on_lost = on_lost
    try:
        protocol = protocol_factory()
        turn_transport = turn.TurnTransport(inner)
        await attach_turn(turn_transport, protocol)
    except BaseException:
        inner.transport.close()
        raise
    relayed = turn_transport.get_extra_info("sockname")
    related = turn_transport.get_extra_info("related_address")
    if hide_related_address:
        # RFC 9429 section 3.5.3, in the form of RFC 8839 section 5.1.
        related = ("0.0.0.0", 9) if ipaddress.ip_address(relayed[0]).version == 4 else ("::", 9)
    candidate = Candidate(
        foundation=candidate_foundation("relay", "udp", relayed[0]),
        component=component,
        transport="udp",
        priority=candidate_priority(component, "relay"),
        host=relayed[0],
        port=relayed[1],
        type="relay",
        related_address=related[0],
        related_port=related[1],
    )
    return candidate, protocol, inner
