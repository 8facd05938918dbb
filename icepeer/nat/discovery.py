"""Run the RFC 5780 behaviour tests against a STUN server (asyncio, UDP).

The decisions live in :mod:`icepeer.nat.behavior`; this module only sends
Binding requests (with CHANGE-REQUEST where a test needs it) and records what
came back.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
from dataclasses import dataclass

from aioice import stun

from ..errors import ConfigError
from .behavior import Address, Binding, Observations, Verdict, classify

__all__ = ["CHANGE_IP", "CHANGE_PORT", "Discovery", "discover"]

logger = logging.getLogger(__name__)

# RFC 5780 section 7.2: CHANGE-REQUEST flags.
CHANGE_IP = 0x04
CHANGE_PORT = 0x02

#: Retransmission times in seconds after the first send (RFC 8489 section 6.2.1
#: doubles from 500 ms; these are shorter, the whole test is bounded by ``timeout``).
RETRANSMIT = (0.25, 0.75, 1.5, 2.5, 4.0)


@dataclass(frozen=True)
class Answer:
    message: stun.Message
    source: Address


class _StunSocket(asyncio.DatagramProtocol):
    """One UDP socket sending Binding requests and matching answers by transaction ID."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.pending: dict[bytes, asyncio.Future[Answer]] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            message = stun.parse_message(data)
        except (ValueError, struct.error):
            return  # aioice raises struct.error on some malformed attributes
        future = self.pending.pop(message.transaction_id, None)
        if future is not None and not future.done():
            future.set_result(Answer(message, (addr[0], addr[1])))

    def error_received(self, exc: Exception) -> None:
        logger.debug("socket error: %s", exc)

    async def request(self, dest: Address, *, change: int = 0, timeout: float) -> Answer | None:
        """A Binding request to ``dest``, retransmitted until an answer or ``timeout``."""
        assert self.transport is not None
        message = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST)
        if change:
            message.attributes["CHANGE-REQUEST"] = change
        message.add_fingerprint()
        data = bytes(message)
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self.pending[message.transaction_id] = future
        try:
            async with asyncio.timeout(timeout):
                waited = 0.0
                for at in (*RETRANSMIT, float("inf")):
                    self.transport.sendto(data, dest)
                    try:
                        return await asyncio.wait_for(asyncio.shield(future), at - waited)
                    except TimeoutError:
                        waited = at
        except TimeoutError:
            return None
        finally:
            self.pending.pop(message.transaction_id, None)
        return None  # pragma: no cover


def _binding(answer: Answer | None) -> Binding | None:
    if answer is None or answer.message.message_class != stun.Class.RESPONSE:
        return None
    attrs = answer.message.attributes
    mapped = attrs.get("XOR-MAPPED-ADDRESS") or attrs.get("MAPPED-ADDRESS")
    if mapped is None:
        return None
    # RFC 3489 servers say CHANGED-ADDRESS for what RFC 5780 calls OTHER-ADDRESS.
    other = attrs.get("OTHER-ADDRESS") or attrs.get("CHANGED-ADDRESS")
    return Binding((mapped[0], mapped[1]), (other[0], other[1]) if other else None)


def _local_ip(server: Address) -> str:
    """The address the kernel would send from towards ``server`` (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(server)
        ip: str = probe.getsockname()[0]
        return ip


@dataclass(frozen=True)
class Discovery:
    observations: Observations
    verdict: Verdict
    server: Address


async def discover(host: str, port: int = 3478, *, timeout: float = 3.0) -> Discovery:
    """Classify the NAT between us and the STUN server ``host:port`` (IPv4, UDP)."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, family=socket.AF_INET, type=socket.SOCK_DGRAM)
    except socket.gaierror as exc:
        raise ConfigError(f"cannot resolve STUN server {host!r}: {exc}") from None
    server: Address = (str(infos[0][4][0]), int(infos[0][4][1]))
    local_ip = _local_ip(server)
    endpoints = []
    try:
        for _ in range(2):
            transport, protocol = await loop.create_datagram_endpoint(
                _StunSocket, local_addr=("0.0.0.0", 0), family=socket.AF_INET)
            protocol.transport = transport  # connection_made() runs only on the next loop turn
            endpoints.append((transport, protocol))
        (mt, m), (ft, f) = endpoints
        m_local: Address = (local_ip, mt.get_extra_info("sockname")[1])
        f_local: Address = (local_ip, ft.get_extra_info("sockname")[1])
        # Test I, on both sockets: the filtering socket only ever talks to the primary address.
        a1, f1 = await asyncio.gather(m.request(server, timeout=timeout),
                                      f.request(server, timeout=timeout))
        test1, filter1 = _binding(a1), _binding(f1)
        if test1 is None or test1.other is None:
            obs = Observations(m_local, test1)
        else:
            other = test1.other
            a2, a3, f2, f3 = await asyncio.gather(
                m.request((other[0], server[1]), timeout=timeout),
                m.request(other, timeout=timeout),
                f.request(server, change=CHANGE_IP | CHANGE_PORT, timeout=timeout),
                f.request(server, change=CHANGE_PORT, timeout=timeout),
            )
            # An answer to a CHANGE-REQUEST must come from the changed address; one from
            # the primary address, or an error, means the server ignored or refused it.
            ignored = any(
                a is not None and (a.source == server or a.message.message_class != stun.Class.RESPONSE)
                for a in (f2, f3)
            )
            obs = Observations(
                m_local, test1, _binding(a2), _binding(a3),
                filter_local=f_local, filter1=filter1,
                filter2=f2 is not None and f2.source[0] != server[0],
                filter3=f3 is not None and f3.source[1] != server[1],
                change_ignored=ignored,
            )
    finally:
        for transport, _ in endpoints:
            transport.close()
    verdict = classify(obs)
    logger.debug("observations %s -> %s", obs, verdict)
    return Discovery(obs, verdict, server)
