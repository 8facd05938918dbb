"""The ICE agent: aioice's checks, with trickle gathering, consent, and what the path policy needs.

What this adds to aioice 0.13 (docs/peer.md has the table of repairs, each
with the test that shows the fault):

- trickle gathering from any number of STUN and TURN servers
  (:mod:`icepeer.gathering`), TURN with the repairs of :mod:`icepeer.turn`;
- sockets that drop malformed STUN and let DTLS in only from the remote
  address of a candidate pair (:mod:`icepeer.candidate_socket`);
- a check started the moment a trickled candidate arrives or a check from
  the peer meets our pending one (RFC 8445 section 7.3.1.4), and a check
  loop that wakes as soon as the check list settles;
- consent checks on the selected pair (RFC 7675) whose authenticated
  answers, and nothing else, are reported as consent;
- :meth:`Agent.free`, to close the candidates the path policy found unused;
- SPED (:mod:`icepeer.sped`): with :meth:`Agent.enable_sped`, the DTLS
  handshake rides in the checks (:meth:`Agent.send_dtls`,
  :meth:`Agent.stun_received`, :meth:`Agent.decorate_response`);
- direct wherever direct works: when a relayed pair wins the first checks,
  the direct pairs go on being checked for ``direct_search`` seconds, and
  the first that succeeds replaces the relay (``on_switched``; see
  :class:`icepeer.compat.aioice.IceConnection`).

The agent decides nothing about the path: it reports (``on_consent``,
``on_peer_data``, ``on_heard``, ``on_relay_lost``) to :mod:`icepeer.monitor`.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import ssl
from collections.abc import Callable

from aioice import stun
from aioice.candidate import Candidate, candidate_foundation, candidate_priority
from aioice.ice import CandidatePair, StunProtocol, TransportPolicy

from icecommon.urls import IceServerUrl

from .candidate_socket import CandidateSocket
from .compat.aioice import IceConnection, turn_client
from .gathering import AgentStats, Gatherer, GatherFailure
from .path import CONSENT_INTERVAL
from .sped_stun import SpedStun
from .turn import TurnFixes

__all__ = ["Agent", "AgentStats", "GatherFailure"]

logger = logging.getLogger(__name__)

#: Seconds to go on checking direct pairs after a relayed pair was selected:
#: enough for four transmissions of a check (0, 0.5, 1.5 and 3.5 s, RFC 8489
#: section 6.2.1) on a pair whose candidates trickled in late.
DIRECT_SEARCH = 5.0
#: DTLS datagrams kept from before the data path is attached.
MAX_EARLY_DATA = 32
#: Socket buffers as large as the SCTP window, so that a window of datagrams
#: (each costing the kernel about twice its size) is not dropped by the kernel
#: while the reader catches up (the kernel caps this at net.core.rmem_max).
SOCKET_BUFFER = 4 * 1024 * 1024


def size_socket_buffers(sock: socket.socket) -> None:
    for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        try:
            sock.setsockopt(socket.SOL_SOCKET, option, SOCKET_BUFFER)
        except OSError as exc:  # pragma: no cover - a kernel that refuses
            logger.info("could not size a socket buffer: %s", exc)


def _ignore(*args: object) -> None:
    pass



class Agent(IceConnection):
    """One ICE generation. Call :meth:`gather`, set the remote credentials, then :meth:`connect`."""

    def __init__(
        self,
        *,
        ice_servers: list[IceServerUrl],
        relay_only: bool = False,
        host_addresses: list[str] | None = None,
        gather_timeout: float = 5.0,
        tls_context: ssl.SSLContext | None = None,
        consent_interval: float = CONSENT_INTERVAL,
        direct_search: float = DIRECT_SEARCH,
    ) -> None:
        super().__init__(
            ice_controlling=False,
            transport_policy=TransportPolicy.RELAY if relay_only else TransportPolicy.ALL,
        )
        self.relay_only = relay_only
        self.stats = AgentStats()
        self.gatherer = Gatherer(
            self,
            stun_servers=[u for u in ice_servers if not u.is_turn],
            turn_servers=[u for u in ice_servers if u.is_turn],
            timeout=gather_timeout,
            tls_context=tls_context,
            hide_related_address=relay_only,
        )
        self._host_addresses = host_addresses
        self._consent_interval = consent_interval
        self._direct_search = direct_search
        self._search: asyncio.Task[None] | None = None
        self._turn_clients: list[TurnFixes] = []
        self._closing_tasks: set[asyncio.Future[None]] = set()
        self._host_gathering: asyncio.Task[None] | None = None
        self._settled: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.connected = False
        self.gathering_done = asyncio.Event()
        # Reports, set by the owner.
        self.on_candidate: Callable[[Candidate | None], None] = _ignore
        self.on_relay_lost: Callable[[str], None] = _ignore
        self.on_consent: Callable[[], None] = _ignore
        self.on_heard: Callable[[], None] = _ignore
        self.on_peer_data: Callable[[CandidateSocket], None] = _ignore
        self.on_switched: Callable[[CandidatePair], None] = _ignore
        self.on_search_over: Callable[[], None] = _ignore
        # The data path (DTLS datagrams from the peer), attached by the stack.
        self._on_data: Callable[[bytes], None] | None = None
        self._early_data: list[bytes] = []
        #: SPED, when both sides have it.
        self.sped: SpedStun | None = None

    # -- gathering --------------------------------------------------------------

    def gather(self) -> asyncio.Task[None]:
        """Gather host candidates now; server-reflexive and relay ones in the background.

        Every candidate, and finally ``None``, is passed to ``on_candidate``.
        :meth:`connect` waits for the host candidates and fails if gathering did.
        """
        if self._host_gathering is None:
            self._host_gathering = asyncio.ensure_future(self._gather_hosts())
        return self._host_gathering

    async def _gather_hosts(self) -> None:
        await self.gather_candidates()
        for candidate in self.local_candidates:
            self._report(candidate)
        if not self.gatherer.in_progress:
            self.gathering_over()

    async def get_component_candidates(
        self, component: int, addresses: list[str], timeout: int = 5
    ) -> list[Candidate]:
        # Replaces aioice's: binds host candidates and returns them at once;
        # the Gatherer trickles the rest.
        loop = asyncio.get_running_loop()
        sockets: list[CandidateSocket] = []
        if self.gathers_host_candidates:
            for address in self._host_addresses if self._host_addresses is not None else addresses:
                try:
                    transport, sock = await loop.create_datagram_endpoint(
                        self.new_socket, local_addr=(address, 0)
                    )
                except OSError as exc:
                    logger.info("cannot bind to %s: %s", address, exc)
                    continue
                raw = transport.get_extra_info("socket")
                if raw is not None:
                    size_socket_buffers(raw)
                host = transport.get_extra_info("sockname")
                sock.local_candidate = Candidate(
                    foundation=candidate_foundation("host", "udp", host[0]),
                    component=component,
                    transport="udp",
                    priority=candidate_priority(component, "host"),
                    host=host[0],
                    port=host[1],
                    type="host",
                )
                sockets.append(sock)
            self.add_host_protocols(sockets)
        self.gatherer.start(sockets, component)
        return [s.local_candidate for s in sockets]

    # GatherTarget: what the Gatherer hands over.

    def new_socket(self) -> CandidateSocket:
        return CandidateSocket(self)

    def srflx_gathered(self, candidate: Candidate) -> None:
        if self.is_closing:
            return
        if any(c.type == "srflx" and (c.host, c.port) == (candidate.host, candidate.port)
               for c in self.local_candidates):
            return  # another STUN server told us the same
        self.add_local_candidate(candidate)
        self._report(candidate)

    def relay_gathered(self, sock: CandidateSocket, client: TurnFixes) -> None:
        if self.is_closing:
            client.closing()
            sock.transport.close()
            return
        self._turn_clients.append(client)
        self.add_local_protocol(sock)
        self._report(sock.local_candidate)

    def relay_lost(self, reason: str) -> None:
        self.on_relay_lost(reason)

    def gathering_over(self) -> None:
        if self.gathering_done.is_set():
            return
        self.gathering_done.set()
        self.on_candidate(None)
        # Nothing more is coming from our side: the check list may now fail.
        self.settle_if_stuck()

    def gathering_in_progress(self) -> bool:
        return not self.gathering_done.is_set()

    def _report(self, candidate: Candidate) -> None:
        self.stats.gathered[candidate.type] = self.stats.gathered.get(candidate.type, 0) + 1
        self.on_candidate(candidate)

    # -- checks -----------------------------------------------------------------

    async def add_remote_candidate(self, remote_candidate: Candidate | None) -> None:
        await super().add_remote_candidate(remote_candidate)
        # aioice starts checks on a 20 ms tick (RFC 8445 Ta); a trickled
        # candidate arriving between ticks waited for the next one. When no
        # check is running, start the new pair's check now.
        if (
            remote_candidate is not None
            and self.checks_started
            and not self.checks_settled
            and not any(p.state == CandidatePair.State.IN_PROGRESS for p in self.check_list)
        ):
            self.check_now()

    def check_incoming(self, message: stun.Message, addr: tuple[str, int], protocol: StunProtocol) -> None:
        # aioice calls this only for requests authenticated with our password.
        super().check_incoming(message, addr, protocol)
        self.on_heard()
        # RFC 8445 section 7.3.1.4: a check received on a pair whose own check
        # is in progress triggers a check at once. aioice waits for its next
        # retransmission instead (500 ms after a first check that the peer's
        # NAT or TURN permission dropped). Resending the pending request now
        # is that triggered check; its answer completes the same transaction.
        if isinstance(protocol, CandidateSocket):
            protocol.resend_pending(addr)

    def on_checks_settled(self) -> None:
        if not self._settled.done():
            self._settled.set_result(None)

    async def connect(self) -> None:
        """Run ICE checks until a pair is selected; ``ConnectionError`` if none works.

        Gathering must have been started (:meth:`gather`); the checks start
        as soon as the host candidates are bound.
        """
        if self._host_gathering is None:
            raise ConnectionError("gather() must be called before connect()")
        try:
            await asyncio.shield(self._host_gathering)
        except Exception as exc:
            raise ConnectionError(f"gathering host candidates failed: {exc}") from exc
        if not await self.run_checks(self._settled):
            raise ConnectionError("ICE negotiation failed")
        self.connected = True
        self._send_pending_flight()  # SPED: the selected pair may carry it now
        self.start_consent()
        if self.searching:
            self._search = asyncio.create_task(self._search_direct())
        else:
            self.stats.abandoned += self.gatherer.stop()  # late servers: of no use now

    async def _search_direct(self) -> None:
        try:
            await self.search_direct(self._direct_search)
        finally:
            self.stats.abandoned += self.gatherer.stop()
            if not self.is_closing:
                self.on_search_over()

    def on_selected_changed(self, pair: CandidatePair) -> None:
        logger.info("moved from the relay to a direct pair: %s", pair)
        self.on_switched(pair)

    # -- reports from the sockets (SocketOwner) ----------------------------------

    def count(self, what: str) -> None:
        setattr(self.stats, what, getattr(self.stats, what) + 1)

    def is_pair_address(self, sock: CandidateSocket, addr: tuple[str, int]) -> bool:
        selected = self.selected_pair
        if selected is not None and selected.protocol is sock and selected.remote_addr == addr:
            return True
        return any(p.protocol is sock and p.remote_addr == addr for p in self.check_list)

    def peer_data_received(self, data: bytes, sock: CandidateSocket) -> None:
        self.on_peer_data(sock)
        on_data = self._on_data
        if on_data is not None:
            on_data(data)
        elif len(self._early_data) < MAX_EARLY_DATA:
            # The peer's first DTLS flight may come before our checks end.
            self._early_data.append(data)

    @property
    def on_data(self) -> Callable[[bytes], None] | None:
        """Called with each DTLS datagram from the peer (those that came before are replayed)."""
        return self._on_data

    @on_data.setter
    def on_data(self, callback: Callable[[bytes], None] | None) -> None:
        self._on_data = callback
        if callback is not None and self._early_data:
            early, self._early_data = self._early_data, []
            for data in early:
                callback(data)

    # -- SPED: the DTLS handshake in the checks (draft-hancke-webrtc-sped-00) -------------

    def enable_sped(self, *, dtls_server: bool) -> None:
        """Both sides have SPED: embed the DTLS handshake in our checks and answers from now on."""
        self.sped = SpedStun(dtls_server=dtls_server)

    def send_dtls(self, datagrams: list[bytes]) -> None:
        """DTLS datagrams to the peer: on the selected pair, else (SPED) embedded in the next checks,
        and sent as they are too where a check of ours was answered (that path works both ways)."""
        sped = self.sped
        if sped is not None:
            sped.flight(datagrams)
        pair = self.selected_pair
        if pair is not None and not self.is_closed:
            for datagram in datagrams:
                pair.protocol.transport.sendto(datagram, pair.remote_addr)
        elif sped is not None and sped.path is not None:
            sock, addr = sped.path
            for datagram in datagrams:
                sock.transport.sendto(datagram, addr)

    def dtls_connected(self) -> None:
        if self.sped is not None:
            self.sped.state.dtls_connected()

    def build_request(self, pair: CandidatePair, nominate: bool) -> stun.Message:
        request = super().build_request(pair, nominate)
        if self.sped is not None:
            self.sped.embed_in_request(request)
        return request

    def decorate_response(self, message: stun.Message) -> None:
        if self.sped is not None:
            self.sped.embed_in_response(message, self.local_password)

    def stun_received(self, message: stun.Message, addr: tuple[str, int], sock: CandidateSocket) -> None:
        """Each STUN message on our sockets: with SPED, take the DTLS an authenticated one carries."""
        sped = self.sped
        if sped is not None:
            datagram = sped.take(message, addr, sock, local_username=self.local_username,
                                 local_password=self.local_password, remote_password=self.remote_password)
            if sped.opened:
                # A check of ours was answered: the flight waiting for the next
                # check or answer goes there now, as it is.
                sped.opened = False
                self._send_pending_flight()
            if datagram is not None:
                self.peer_data_received(datagram, sock)

    def _send_pending_flight(self) -> None:
        sped = self.sped
        if sped is not None and sped.state.active and sped.state.pending:
            self.send_dtls(list(sped.state.pending))

    def check_answered(self, sock: CandidateSocket, rtt: float, *, consent: bool) -> None:
        self.count("consent_answered" if consent else "checks_answered")
        self.stats.rtt = rtt
        selected = self.selected_pair
        if consent and selected is not None and selected.protocol is sock:
            self.on_consent()
        else:
            self.on_heard()

    # -- the selected pair --------------------------------------------------------

    @property
    def selected(self) -> CandidatePair | None:
        return self.selected_pair

    def turn_client_of(self, pair: CandidatePair | None) -> TurnFixes | None:
        if pair is None or pair.local_candidate.type != "relay":
            return None
        client = turn_client(pair.protocol)
        return client if isinstance(client, TurnFixes) else None

    def free(self, keep: frozenset[object]) -> int:
        """Close every local candidate whose socket is not in ``keep`` (RFC 8445 section 8.3)."""
        if self.is_closing:
            return 0
        unused = {p for p in self.protocols if p not in keep}
        self.forget(unused)
        for protocol in unused:
            client = turn_client(protocol)
            if isinstance(client, TurnFixes):
                client.closing()
                if client in self._turn_clients:
                    self._turn_clients.remove(client)
            task = asyncio.ensure_future(protocol.close())
            self._closing_tasks.add(task)
            task.add_done_callback(self._closing_tasks.discard)
        if unused:
            logger.info("freed %d unused candidates", len(unused))
        return len(unused)

    # -- consent freshness and keepalives (RFC 7675, RFC 8445 section 11) -------

    async def query_consent(self) -> None:
        assert self.remote_password is not None
        key = self.remote_password.encode("utf8")
        while True:
            await asyncio.sleep(self._consent_interval * (0.8 + 0.4 * random.random()))
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
        self.gatherer.stop()
        if self._search is not None:
            self._search.cancel()
        if self._host_gathering is not None and not self._host_gathering.done():
            self._host_gathering.cancel()
        for client in self._turn_clients:
            client.closing()
        await super().close()
        self.on_checks_settled()
        self._turn_clients.clear()

