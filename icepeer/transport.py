"""The ICE transport as aiortc's DTLS layer sees it.

``aiortc.RTCDtlsTransport`` needs from its ICE transport only ``role``,
``await _recv()`` and ``await _send(data)`` (the private interface of
aiortc's ``RTCIceTransport``, declared in :mod:`icepeer.compat.aiortc`).
:class:`IceTransport` provides them over an :class:`icepeer.agent.Agent`,
and can move to a new agent after an ICE restart without DTLS noticing:
datagrams lost during the switch are retransmitted by SCTP.

It also shortens DTLS handshake retransmission. OpenSSL waits 1 s before
resending a lost flight and pyOpenSSL offers no way to change that timer, so
one lost handshake datagram costs a second. Until the handshake is done,
:class:`IceTransport` remembers the last flight sent and, if nothing comes
back within 250 ms (doubling up to 1 s), sends it again: a retransmitted
flight, exactly what the timer would send (RFC 6347 section 4.2.4).
"""

from __future__ import annotations

import asyncio
import logging

from .agent import Agent

__all__ = ["IceTransport"]

logger = logging.getLogger(__name__)

#: DTLS content types that make up handshake flights (RFC 6347 section 4.1).
_HANDSHAKE_TYPES = (20, 21, 22)  # change_cipher_spec, alert, handshake
FLIGHT_RTO_INITIAL = 0.25
FLIGHT_RTO_MAX = 1.0


class IceTransport:
    def __init__(self, agent: Agent, *, controlling: bool) -> None:
        self._agent = agent
        self._role = "controlling" if controlling else "controlled"
        self._closed = False
        # DTLS handshake flight retransmission.
        self._handshaking = True
        self._flight: list[bytes] = []
        self._new_flight = True
        self._flight_rto = FLIGHT_RTO_INITIAL
        self._resend: asyncio.TimerHandle | None = None
        self.flights_resent = 0
        self._sends: set[asyncio.Future[None]] = set()

    @property
    def role(self) -> str:
        # Fixed at the first negotiation: an ICE role conflict resolved later
        # must not change which side is the DTLS server.
        return self._role

    @property
    def agent(self) -> Agent:
        return self._agent

    def switch(self, agent: Agent) -> None:
        """Carry DTLS over ``agent`` from now on (after an ICE restart)."""
        self._agent = agent

    def handshake_done(self) -> None:
        """The DTLS handshake is over: stop resending flights."""
        self._handshaking = False
        self._flight = []
        if self._resend is not None:
            self._resend.cancel()
            self._resend = None

    def close(self) -> None:
        self._closed = True
        self.handshake_done()

    async def _recv(self) -> bytes:
        while True:
            agent = self._agent
            try:
                data = await agent.recv()
            except ConnectionError:
                if self._closed:
                    raise
                if self._agent is not agent:
                    continue  # switched while we were waiting
                raise
            if self._handshaking:
                # The peer answered: our next datagram starts a new flight.
                self._new_flight = True
                if self._resend is not None:
                    self._resend.cancel()
                    self._resend = None
            return data

    async def _send(self, data: bytes) -> None:
        if self._handshaking and data and data[0] in _HANDSHAKE_TYPES:
            if self._new_flight:
                self._flight, self._new_flight = [], False
                self._flight_rto = FLIGHT_RTO_INITIAL
            self._flight.append(data)
            self._arm()
        await self._transmit(data)

    async def _transmit(self, data: bytes) -> None:
        try:
            await self._agent.send(data)
        except ConnectionError:
            if self._closed:
                raise
            # The path is being repaired (ICE restart): drop, SCTP retransmits.
            logger.debug("dropped %d bytes: no selected pair", len(data))

    def _arm(self) -> None:
        if self._resend is not None:
            self._resend.cancel()
        self._resend = asyncio.get_running_loop().call_later(self._flight_rto, self._resend_flight)

    def _resend_flight(self) -> None:
        self._resend = None
        if not self._handshaking or not self._flight:
            return
        self.flights_resent += 1
        logger.debug("resending a DTLS flight of %d datagrams", len(self._flight))
        for datagram in self._flight:
            task = asyncio.ensure_future(self._transmit(datagram))
            self._sends.add(task)
            task.add_done_callback(self._sends.discard)
        self._flight_rto = min(self._flight_rto * 2, FLIGHT_RTO_MAX)
        self._arm()
