"""The ICE transport as aiortc's DTLS layer sees it.

``aiortc.RTCDtlsTransport`` needs from its ICE transport only ``role``,
``await _recv()`` and ``await _send(data)`` (``../shared/NOTES.md``). This
adapter provides them over an :class:`icepeer.agent.Agent`, and can move to a
new agent after an ICE restart without DTLS noticing: datagrams lost during
the switch are retransmitted by SCTP.
"""

from __future__ import annotations

import asyncio
import logging

from .agent import Agent

__all__ = ["IceTransport"]

logger = logging.getLogger(__name__)


class IceTransport:
    def __init__(self, agent: Agent, *, controlling: bool) -> None:
        self._agent = agent
        self._role = "controlling" if controlling else "controlled"
        self._switched = asyncio.Event()
        self._closed = False

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
        self._switched.set()
        self._switched = asyncio.Event()

    def close(self) -> None:
        self._closed = True
        self._switched.set()

    async def _recv(self) -> bytes:
        while True:
            agent = self._agent
            try:
                return await agent.recv()
            except ConnectionError:
                if self._closed:
                    raise
                if self._agent is not agent:
                    continue  # switched while we were waiting
                raise

    async def _send(self, data: bytes) -> None:
        try:
            await self._agent.send(data)
        except ConnectionError:
            if self._closed:
                raise
            # The path is being repaired (ICE restart): drop, SCTP retransmits.
            logger.debug("dropped %d bytes: no selected pair", len(data))
