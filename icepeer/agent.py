"""ICE agent: aioice's ``Connection`` with trickle gathering, many servers, and repairs.

What this adds to aioice 0.13 (each measured in ``../shared/NOTES.md``):

- Trickle gathering (RFC 8838): host candidates are reported at once and
  server-reflexive and relay candidates as each server answers, instead of
  after every server answered or 5 s passed. A dead STUN server delays
  nothing that another candidate can do.
- Any number of STUN and TURN servers (aioice takes one of each), TURN over
  UDP, TCP and TLS, each allocation with the repairs of :mod:`icepeer.turn`.
- Malformed STUN datagrams are counted and dropped (aioice lets
  ``struct.error`` escape ``datagram_received``).
- Only datagrams from addresses of our candidate pairs reach DTLS, and only
  those that look like DTLS (RFC 7983 section 7): a stray empty datagram
  would otherwise stop aiortc's DTLS receive loop.
- Consent freshness (RFC 7675) on the selected pair every ~2.5 s, which also
  keeps NAT bindings open (RFC 8445 section 11: at most every 15 s), and a
  peer timeout: with nothing heard for ``peer_timeout`` seconds the path is
  declared dead.
- Counters for the report: checks sent and answered, round-trip time.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aioice
from aioice import stun
from aioice.candidate import Candidate, candidate_foundation, candidate_priority
from aioice.ice import ICE_COMPLETED, ICE_FAILED, CandidatePair, StunProtocol, TransportPolicy

from icecommon.urls import IceServerUrl

from .turn import TurnFixes, allocate

__all__ = ["Agent", "AgentStats", "GatherFailure"]

logger = logging.getLogger(__name__)

#: Seconds between consent checks on the selected pair (randomized +-20%, RFC 7675 section 5.1).
CONSENT_INTERVAL = 2.5
#: Seconds between starting checks (RFC 8445 section 14.2, Ta), as aioice.
CHECK_PACING = 0.02
#: Seconds after connecting before unused candidates are released; a candidate
#: through which the peer sent DTLS within IN_USE_WINDOW seconds is in use.
FREE_AFTER = 2.0
IN_USE_WINDOW = 6.0
#: Extra early copies of a connectivity check, in seconds after the first.
EARLY_RESENDS = (0.15, 0.3)


@dataclass
class GatherFailure:
    """A STUN or TURN server that gave us no candidate, and why."""

    server: str
    reason: str


@dataclass
class AgentStats:
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


class _Protocol(StunProtocol):
    """aioice's socket protocol, hardened, counting, and filtering what reaches DTLS."""

    receiver: Agent

    def __init__(self, receiver: Agent) -> None:
        super().__init__(receiver)
        #: The connectivity check in progress towards each remote address.
        self.inflight: dict[tuple[str, int], stun.Message] = {}
        #: When the peer last sent us DTLS through this candidate.
        self.last_data = float("-inf")

    def datagram_received(self, data: bytes | str, addr: tuple[Any, ...]) -> None:
        addr = (addr[0], addr[1])
        agent = self.receiver
        if not data:
            agent.stats.foreign += 1
            return
        first = data[0] if isinstance(data, bytes) else 0
        if first < 4:
            # STUN (RFC 7983 section 7): parse it with aioice, catching its escapes.
            try:
                super().datagram_received(data, addr)
            except Exception as exc:  # noqa: BLE001 - aioice raises struct.error, KeyError, ...
                agent.stats.malformed += 1
                logger.info("dropped a malformed STUN datagram from %s: %r", addr, exc)
            else:
                if agent.is_pair_address(self, addr):
                    agent.heard()
            return
        if 19 < first < 64 and agent.is_pair_address(self, addr):
            agent.heard()
            self.last_data = time.monotonic()
            agent.data_received(data if isinstance(data, bytes) else data.encode(), self.local_candidate.component)
            return
        agent.stats.foreign += 1

    def _early_resends(self, request: stun.Message, addr: tuple[str, int]) -> None:
        """Send a connectivity check again at 150 and 300 ms while it is unanswered.

        aioice's first retransmission comes after 500 ms (RFC 8489's default
        RTO); a first check dropped by the peer's NAT, or lost, then costs half
        a second. Extra copies of the same request (same transaction id) are
        retransmissions as far as the peer is concerned, and the answer to any
        of them completes the transaction.
        """
        loop = asyncio.get_running_loop()
        for delay in EARLY_RESENDS:
            loop.call_later(delay, self._resend_if_pending, request, addr)

    def _resend_if_pending(self, request: stun.Message, addr: tuple[str, int]) -> None:
        if self.inflight.get(addr) is request and not self.receiver._check_list_done:
            self.send_stun(request, addr)

    async def request(
        self,
        request: stun.Message,
        addr: tuple[str, int],
        integrity_key: bytes | None = None,
        retransmissions: int | None = None,
    ) -> tuple[stun.Message, tuple[str, int]]:
        agent = self.receiver
        check = "USERNAME" in request.attributes
        consent = check and agent.connected
        if check:
            if consent:
                agent.stats.consent_sent += 1
            else:
                agent.stats.checks_sent += 1
        started = time.monotonic()
        if check:
            self.inflight[addr] = request
            if not consent:
                self._early_resends(request, addr)
        try:
            response = await super().request(request, addr, integrity_key, retransmissions)
        finally:
            if self.inflight.get(addr) is request:
                del self.inflight[addr]
        if check:
            if consent:
                agent.stats.consent_answered += 1
            else:
                agent.stats.checks_answered += 1
            agent.stats.rtt = time.monotonic() - started
            agent.heard()
        return response


class Agent(aioice.Connection):
    """One ICE session. Call :meth:`gather`, set the remote credentials, then ``connect()``."""

    def __init__(
        self,
        *,
        ice_servers: list[IceServerUrl],
        relay_only: bool = False,
        host_addresses: list[str] | None = None,
        on_candidate: Callable[[Candidate | None], None] = lambda c: None,
        on_relay_lost: Callable[[str], None] = lambda reason: None,
        gather_timeout: float = 5.0,
        tls_context: ssl.SSLContext | None = None,
        local_username: str | None = None,
        local_password: str | None = None,
    ) -> None:
        super().__init__(
            ice_controlling=False,
            transport_policy=TransportPolicy.RELAY if relay_only else TransportPolicy.ALL,
            local_username=local_username,
            local_password=local_password,
        )
        self.stun_servers = [u for u in ice_servers if not u.is_turn]
        self.turn_servers = [u for u in ice_servers if u.is_turn]
        self.relay_only = relay_only
        self._host_addresses = host_addresses
        self._on_candidate = on_candidate
        self._on_relay_lost = on_relay_lost
        self._gather_timeout = gather_timeout
        self._tls_context = tls_context
        self._gathering: set[asyncio.Task[None]] = set()
        self._turn_clients: list[TurnFixes] = []
        self._closing_tasks: set[asyncio.Future[None]] = set()
        self._free_handle: asyncio.TimerHandle | None = None
        self.stats = AgentStats()
        self.connected = False
        self.last_heard = time.monotonic()
        self.first_candidate_at: float | None = None
        self.gathering_done = asyncio.Event()
        self._host_gathered = asyncio.Event()
        self._list_done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    # -- gathering ------------------------------------------------------------

    async def gather(self) -> None:
        """Gather host candidates now; server-reflexive and relay ones in the background.

        Every candidate, and finally ``None``, is passed to ``on_candidate``.
        """
        await self.gather_candidates()
        self._host_gathered.set()
        for candidate in self.local_candidates:
            self._report(candidate)
        if not self._gathering:
            self._gathering_over()

    async def get_component_candidates(
        self, component: int, addresses: list[str], timeout: int = 5
    ) -> list[Candidate]:
        # Replaces aioice's: returns host candidates at once and trickles the rest.
        loop = asyncio.get_running_loop()
        host_protocols: list[_Protocol] = []
        if self._transport_policy == TransportPolicy.ALL:
            if self._host_addresses is not None:
                addresses = self._host_addresses
            for address in addresses:
                try:
                    transport, protocol = await loop.create_datagram_endpoint(
                        lambda: _Protocol(self), local_addr=(address, 0)
                    )
                except OSError as exc:
                    logger.info("cannot bind to %s: %s", address, exc)
                    continue
                sock = transport.get_extra_info("socket")
                if sock is not None:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, aioice.turn.UDP_SOCKET_BUFFER_SIZE)
                host = transport.get_extra_info("sockname")
                protocol.local_candidate = Candidate(
                    foundation=candidate_foundation("host", "udp", host[0]),
                    component=component,
                    transport="udp",
                    priority=candidate_priority(component, "host"),
                    host=host[0],
                    port=host[1],
                    type="host",
                )
                host_protocols.append(protocol)
            self._protocols += host_protocols
            for protocol in host_protocols:
                if ipaddress.ip_address(protocol.local_candidate.host).version != 4:
                    continue  # aioice's STUN gathering is IPv4 only
                for server in self.stun_servers:
                    self._background(self._srflx(protocol, server), server)
        for server in self.turn_servers:
            self._background(self._relay(component, server), server)
        return [p.local_candidate for p in host_protocols]

    def _background(self, coro: Any, server: IceServerUrl) -> None:
        async def guarded() -> None:
            try:
                async with asyncio.timeout(self._gather_timeout):
                    await coro
            except Exception as exc:  # noqa: BLE001 - reported, never fatal
                reason = _describe(exc, self._gather_timeout)
                self.stats.failures.append(GatherFailure(str(server), reason))
                logger.info("no candidate from %s: %s", server, reason)

        task = asyncio.create_task(guarded(), name=str(server))
        self._gathering.add(task)
        task.add_done_callback(self._gathered_one)

    def _gathered_one(self, task: asyncio.Task[None]) -> None:
        self._gathering.discard(task)
        if not self._gathering:
            self._gathering_over()

    def _gathering_over(self) -> None:
        if self.gathering_done.is_set():
            return
        self.gathering_done.set()
        self._on_candidate(None)
        # Nothing more is coming from our side: the check list may now fail.
        if self._early_checks_done and not self._check_list_done:
            self._check_list_maybe_fail()

    async def _srflx(self, protocol: _Protocol, server: IceServerUrl) -> None:
        address = await _resolve(server)
        request = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST)
        response, _ = await protocol.request(request, address)
        mapped = response.attributes["XOR-MAPPED-ADDRESS"]
        base = protocol.local_candidate
        if (mapped[0], mapped[1]) == (base.host, base.port):
            return  # no NAT: the same as the host candidate (RFC 8445 section 5.1.3)
        if any(c.type == "srflx" and (c.host, c.port) == tuple(mapped) for c in self._local_candidates):
            return  # another STUN server told us the same
        candidate = Candidate(
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
        self._add_local(candidate)

    async def _relay(self, component: int, server: IceServerUrl) -> None:
        address = await _resolve(server)
        tls: ssl.SSLContext | bool | None = None
        if server.secure:
            tls = self._tls_context or ssl.create_default_context()
        candidate, protocol, client = await allocate(
            lambda: _Protocol(self),
            server=address,
            username=server.username,
            password=server.password,
            transport=server.transport,
            ssl=tls,
            server_hostname=server.host,
            component=component,
            hide_related_address=self.relay_only,
            on_lost=self._on_relay_lost,
        )
        if self._closing:
            protocol.transport.close()
            return
        protocol.local_candidate = candidate
        protocol.turn_url = server
        self._turn_clients.append(client)
        self._protocols.append(protocol)
        # Pair the new local candidate with the remote ones already known.
        for remote in self._remote_candidates:
            if candidate.can_pair_with(remote) and not self._find_pair(protocol, remote):
                self._check_list.append(CandidatePair(protocol, remote))
        self.sort_check_list()
        self._add_local(candidate)

    def _add_local(self, candidate: Candidate) -> None:
        if self._closing:
            return
        self._local_candidates.append(candidate)
        self._report(candidate)

    def _report(self, candidate: Candidate) -> None:
        if self.first_candidate_at is None:
            self.first_candidate_at = time.monotonic()
        self.stats.gathered[candidate.type] = self.stats.gathered.get(candidate.type, 0) + 1
        self._on_candidate(candidate)

    async def add_remote_candidate(self, remote_candidate: Candidate | None) -> None:
        await super().add_remote_candidate(remote_candidate)
        # aioice starts checks on a 20 ms tick (RFC 8445 Ta); a trickled
        # candidate arriving between ticks waited for the next one. When no
        # check is running, start the new pair's check now.
        if (
            remote_candidate is not None
            and self._early_checks_done
            and not self._check_list_done
            and not any(p.state == CandidatePair.State.IN_PROGRESS for p in self._check_list)
        ):
            self._check_periodic()

    def check_incoming(self, message: stun.Message, addr: tuple[str, int], protocol: StunProtocol) -> None:
        super().check_incoming(message, addr, protocol)
        # RFC 8445 section 7.3.1.4: a check received on a pair whose own check
        # is in progress triggers a check at once. aioice waits for its next
        # retransmission instead (500 ms after a first check that the peer's
        # NAT or TURN permission dropped). Resending the pending request now
        # is that triggered check; its answer completes the same transaction.
        pending = getattr(protocol, "inflight", {}).get(addr)
        if pending is not None and not self._check_list_done:
            protocol.send_stun(pending, addr)

    def _remote_candidates_expected(self) -> bool:
        # The check list must not fail while our own candidates are still coming.
        return super()._remote_candidates_expected() or not self.gathering_done.is_set()

    # -- the selected pair ------------------------------------------------------

    @property
    def selected(self) -> CandidatePair | None:
        return self._nominated.get(1)

    def is_pair_address(self, protocol: StunProtocol, addr: tuple[str, int]) -> bool:
        selected = self.selected
        if selected is not None and selected.protocol is protocol and selected.remote_addr == addr:
            return True
        return any(p.protocol is protocol and p.remote_addr == addr for p in self._check_list)

    def turn_client_of(self, pair: CandidatePair | None) -> TurnFixes | None:
        if pair is None or pair.local_candidate.type != "relay":
            return None
        return _turn_client(pair.protocol)

    def heard(self) -> None:
        self.last_heard = time.monotonic()

    async def connect(self) -> None:
        """Perform ICE checks until a pair is nominated; raise ``ConnectionError`` if none works.

        aioice's ``connect()``, with one change: its check loop sleeps 20 ms
        between checks (RFC 8445 Ta) and noticed that the check list completed
        only on its next tick, so every connection waited up to 20 ms for
        nothing. Here the loop also wakes when the check list completes.
        """
        # aioice needs gather_candidates() done; host candidates are enough to start.
        await self._host_gathered.wait()
        if self.remote_username is None or self.remote_password is None:
            raise ConnectionError("Remote username or password is missing")
        # Forming candidate pairs (RFC 8445 section 6.1.2.2).
        for remote_candidate in self._remote_candidates:
            self._pair_remote_candidate(remote_candidate)
        self.sort_check_list()
        self._unfreeze_initial()
        # Handle the checks received before connect().
        for early_check in self._early_checks:
            self.check_incoming(*early_check)
        self._early_checks.clear()
        self._early_checks_done = True
        while self._check_periodic():
            await asyncio.wait({self._list_done}, timeout=CHECK_PACING)
        result = await self._check_list_state.get() if self._check_list else ICE_FAILED
        for pair in self._check_list:
            if pair.task:
                pair.task.cancel()
        if result != ICE_COMPLETED:
            raise ConnectionError("ICE negotiation failed")
        # Consent freshness (RFC 7675).
        self._query_consent_task = asyncio.create_task(self.query_consent())
        self.connected = True
        self.heard()
        self._stop_gathering()
        self._free_handle = asyncio.get_running_loop().call_later(FREE_AFTER, self._free_unused)

    def _check_list_maybe_complete(self) -> bool:
        complete = super()._check_list_maybe_complete()
        self._wake_if_done()
        return complete

    def _check_list_maybe_fail(self) -> None:
        super()._check_list_maybe_fail()
        self._wake_if_done()

    def _wake_if_done(self) -> None:
        if self._check_list_done and not self._list_done.done():
            self._list_done.set_result(None)

    def _stop_gathering(self) -> None:
        for task in list(self._gathering):
            # Late servers: their candidates are of no use now.
            self.stats.abandoned.append(task.get_name())
            task.cancel()

    def _free_unused(self) -> None:
        """Release the candidates no path uses (RFC 8445 section 8.3), FREE_AFTER s after connecting.

        Above all the TURN allocations nobody uses: a direct connection that
        kept them would hold a relay on the server for its whole life. With
        aggressive nomination the two sides may select different pairs (each
        the first that succeeded for it), so a pair that carries the peer's
        data stays too, not only our selected one.
        """
        self._free_handle = None
        selected = self.selected
        if selected is None or self._closing:
            return
        now = time.monotonic()
        keep = {selected.protocol} | {p for p in self._protocols if now - getattr(p, "last_data", now - IN_USE_WINDOW) < IN_USE_WINDOW}
        unused = [p for p in self._protocols if p not in keep]
        self._protocols = [p for p in self._protocols if p in keep]
        self._check_list = [p for p in self._check_list if p.protocol in keep]
        for protocol in unused:
            client = _turn_client(protocol)
            if client is not None:
                client.closing()
                self._turn_clients.remove(client)
            self._spawn_close(protocol)
        if unused:
            logger.info("freed %d unused candidates", len(unused))

    def _spawn_close(self, protocol: StunProtocol) -> None:
        task = asyncio.ensure_future(protocol.close())
        self._closing_tasks.add(task)
        task.add_done_callback(self._closing_tasks.discard)

    # -- consent freshness and keepalives (RFC 7675, RFC 8445 section 11) -------

    async def query_consent(self) -> None:
        assert self.remote_password is not None
        key = self.remote_password.encode("utf8")
        while True:
            await asyncio.sleep(CONSENT_INTERVAL * (0.8 + 0.4 * random.random()))
            pair = self.selected
            if pair is None:
                return
            request = self.build_request(pair, nominate=False)
            try:
                await pair.protocol.request(request, pair.remote_addr, integrity_key=key, retransmissions=0)
            except stun.TransactionError:
                pass
            except ConnectionError as exc:
                logger.info("consent check could not be sent: %s", exc)

    async def close(self) -> None:
        if self._free_handle is not None:
            self._free_handle.cancel()
        for task in list(self._gathering):
            task.cancel()
        for client in self._turn_clients:
            client.closing()
        await super().close()
        self._wake_if_done()
        self._turn_clients.clear()


def _turn_client(protocol: StunProtocol) -> TurnFixes | None:
    """The TURN client under a relay candidate's protocol (aioice keeps it private)."""
    inner = getattr(getattr(protocol, "transport", None), "_TurnTransport__inner_protocol", None)
    return inner if isinstance(inner, TurnFixes) else None


async def _resolve(server: IceServerUrl) -> tuple[str, int]:
    """The IPv4 address of a STUN/TURN server (aioice gathers over IPv4 only)."""
    infos = await asyncio.get_running_loop().getaddrinfo(server.host, server.port, family=socket.AF_INET)
    host, port = infos[0][4][:2]
    return str(host), int(port)


def _describe(exc: BaseException, timeout: float) -> str:
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
