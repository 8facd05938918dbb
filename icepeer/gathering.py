"""Trickle gathering (RFC 8838): server-reflexive and relay candidates, each as its server answers.

aioice 0.13 returns from ``gather_candidates()`` only when every STUN and
TURN server has answered or 5 s have passed, and takes one server of each
kind. Here host candidates are reported at once (the agent binds them), and
each STUN or TURN server, any number of them, is asked in the background:
its candidate is reported the moment it answers, and a dead server delays
nothing that another candidate can do. A server that gives no candidate is
recorded with the reason (:class:`GatherFailure`).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol

from aioice import stun
from aioice.candidate import Candidate, candidate_foundation, candidate_priority

from icecommon.urls import IceServerUrl

from .candidate_socket import CandidateSocket
from .turn import TurnFixes, allocate

__all__ = ["AgentStats", "GatherFailure", "Gatherer", "GatherTarget"]

logger = logging.getLogger(__name__)


@dataclass
class GatherFailure:
    """A STUN or TURN server that gave us no candidate, and why."""

    server: str
    reason: str


@dataclass
class AgentStats:
    """What one ICE agent did, for the connection report."""

    checks_sent: int = 0
    checks_answered: int = 0
    consent_sent: int = 0
    consent_answered: int = 0
    malformed: int = 0
    foreign: int = 0
    rtt: float | None = None
    gathered: dict[str, int] = field(default_factory=dict)
    failures: list[GatherFailure] = field(default_factory=list)
    #: Servers still being asked when the connection was made (their answers were not needed).
    abandoned: list[str] = field(default_factory=list)


class GatherTarget(Protocol):
    """What the :class:`Gatherer` hands its candidates to (the ICE agent)."""

    stats: AgentStats

    def new_socket(self) -> CandidateSocket: ...

    def srflx_gathered(self, candidate: Candidate) -> None: ...

    def relay_gathered(self, socket: CandidateSocket, client: TurnFixes) -> None: ...

    def relay_lost(self, reason: str) -> None: ...

    def gathering_over(self) -> None: ...


class Gatherer:
    """Asks every STUN and TURN server in the background, each within ``timeout`` seconds."""

    def __init__(
        self,
        target: GatherTarget,
        *,
        stun_servers: list[IceServerUrl],
        turn_servers: list[IceServerUrl],
        timeout: float,
        tls_context: ssl.SSLContext | None,
        hide_related_address: bool,
    ) -> None:
        self._target = target
        self.stun_servers = stun_servers
        self.turn_servers = turn_servers
        self._timeout = timeout
        self._tls_context = tls_context
        self._hide_related = hide_related_address
        self._tasks: set[asyncio.Task[None]] = set()
        self.started = False

    @property
    def in_progress(self) -> bool:
        return bool(self._tasks)

    def start(self, host_sockets: list[CandidateSocket], component: int) -> None:
        """Ask the STUN servers through each IPv4 host socket, and every TURN server."""
        self.started = True
        for sock in host_sockets:
            if ":" in sock.local_candidate.host:
                continue  # aioice's STUN client is IPv4 only
            for server in self.stun_servers:
                self._background(self._srflx(sock, server), server)
        for server in self.turn_servers:
            self._background(self._relay(component, server), server)

    def stop(self) -> list[str]:
        """Stop asking; the servers that had not answered."""
        names = [task.get_name() for task in self._tasks]
        for task in list(self._tasks):
            task.cancel()
        return names

    def _background(self, work: Coroutine[Any, Any, None], server: IceServerUrl) -> None:
        async def guarded() -> None:
            try:
                async with asyncio.timeout(self._timeout):
                    await work
            except Exception as exc:  # noqa: BLE001 - reported, never fatal
                reason = describe(exc, self._timeout)
                self._target.stats.failures.append(GatherFailure(str(server), reason))
                logger.info("no candidate from %s: %s", server, reason)

        task = asyncio.create_task(guarded(), name=str(server))
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not self._tasks:
            self._target.gathering_over()

    async def _srflx(self, sock: CandidateSocket, server: IceServerUrl) -> None:
        address = await resolve(server)
        request = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST)
        response, _ = await sock.request(request, address)
        mapped = response.attributes["XOR-MAPPED-ADDRESS"]
        base = sock.local_candidate
        if (mapped[0], mapped[1]) == (base.host, base.port):
            return  # no NAT: the same as the host candidate (RFC 8445 section 5.1.3)
        self._target.srflx_gathered(
            Candidate(
                foundation=candidate_foundation("srflx", "udp", base.host),
                component=base.component,
                transport="udp",
                priority=candidate_priority(base.component, "srflx"),
                host=mapped[0],
                port=mapped[1],
                type="srflx",
                related_address=base.host,
                related_port=base.port,
            )
        )

    async def _relay(self, component: int, server: IceServerUrl) -> None:
        address = await resolve(server)
        tls: ssl.SSLContext | bool | None = None
        if server.secure:
            tls = self._tls_context or ssl.create_default_context()
        candidate, sock, client = await allocate(
            self._target.new_socket,
            server=address,
            username=server.username,
            password=server.password,
            transport=server.transport,
            ssl=tls,
            server_hostname=server.host,
            component=component,
            hide_related_address=self._hide_related,
            on_lost=self._target.relay_lost,
        )
        sock.local_candidate = candidate
        sock.turn_url = server
        self._target.relay_gathered(sock, client)


async def resolve(server: IceServerUrl) -> tuple[str, int]:
    """The IPv4 address of a STUN/TURN server (aioice gathers over IPv4 only)."""
    infos = await asyncio.get_running_loop().getaddrinfo(server.host, server.port, family=socket.AF_INET)
    host, port = infos[0][4][:2]
    return str(host), int(port)


def describe(exc: BaseException, timeout: float) -> str:
    """Why a server gave no candidate, in words."""
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout:g} s"
    if isinstance(exc, stun.TransactionFailed):
        code, reason = exc.response.attributes.get("ERROR-CODE", (0, "error"))
        if code == 401:
            return f"401 {reason}: wrong TURN username or password"
        return f"{code} {reason}"
    if isinstance(exc, stun.TransactionTimeout):
        return "no answer (STUN transaction timed out)"
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed: {exc.reason or exc}"
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return f"{type(exc).__name__}: {exc}"
