"""The public API: :func:`connect` and :class:`Peer`.

::

    async with icepeer.connect("ws://127.0.0.1:8765", room="x") as peer:
        chat = await peer.channel("chat")
        await chat.send("hello")
        async for message in chat:
            ...
        print(peer.report().describe())

A connection flows one way through the layers: signaling (join the room,
swap offer/answer and candidates, :mod:`icepeer.session`) -> ICE
(:mod:`icepeer.agent`) -> DTLS -> SCTP -> channels (:mod:`icepeer.channel`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import AsyncIterator, Generator, Iterable
from dataclasses import dataclass
from typing import Any

from aioice.candidate import Candidate
from aiortc import (
    RTCCertificate,
    RTCDataChannel,
    RTCDataChannelParameters,
    RTCDtlsTransport,
    RTCSctpTransport,
)
from aiortc.rtcdtlstransport import RTCDtlsFingerprint, RTCDtlsParameters
from aiortc.rtcsctptransport import RTCSctpCapabilities

from icecommon.urls import BadUrl, IceServerUrl, parse_ice_servers, parse_ice_url
from signaling.client import ServerRefused, SignalingClient, SignalingUnavailable
from signaling.protocol import Error as SignalingError
from signaling.protocol import PeerJoined, PeerLeft, Relayed, valid_room

from . import sdp
from .agent import Agent
from .channel import MAX_MESSAGE_SIZE, Channel
from .errors import (
    BadDescription,
    ConfigError,
    ConnectFailed,
    DtlsFailed,
    FingerprintMismatch,
    IceFailed,
    IcepeerError,
    PeerLost,
    SignalingFailed,
    TurnError,
)
from .report import ConnectionReport, Endpoint
from .session import (
    Action,
    AddRemoteCandidate,
    Negotiation,
    PeerBye,
    RestartIce,
    Role,
    Send,
    StartIce,
)
from .transport import IceTransport, SctpTransport

__all__ = ["connect", "Peer", "PeerEvent", "PathChanged", "PathLost", "Closed"]

logger = logging.getLogger(__name__)

#: Seconds of silence on the selected pair before ICE restarts (the path is suspect).
STALE_AFTER = 4.0


# -- events -------------------------------------------------------------------


@dataclass(frozen=True)
class PeerEvent:
    """Base class of what :meth:`Peer.events` yields."""


@dataclass(frozen=True)
class PathLost(PeerEvent):
    """The selected path stopped working (relay allocation lost, silence); ICE restarts."""

    reason: str


@dataclass(frozen=True)
class PathChanged(PeerEvent):
    """ICE selected a new path (after a restart)."""

    local: Endpoint
    remote: Endpoint
    elapsed_ms: float


@dataclass(frozen=True)
class Closed(PeerEvent):
    """The connection is over: ``graceful`` if the peer closed it on purpose."""

    graceful: bool
    reason: str


# -- connect ------------------------------------------------------------------


def _as_urls(servers: Iterable[str | IceServerUrl | dict[str, Any]]) -> list[IceServerUrl]:
    urls: list[IceServerUrl] = []
    try:
        for server in servers:
            if isinstance(server, IceServerUrl):
                urls.append(server)
            elif isinstance(server, str):
                urls.append(parse_ice_url(server))
            else:
                urls += parse_ice_servers([server])
    except BadUrl as exc:
        raise ConfigError(str(exc)) from None
    return urls


class connect:
    """Join ``room`` on the signaling server and connect to the peer there.

    ``await connect(...)`` returns a connected :class:`Peer`; ``async with
    connect(...) as peer`` also closes it. Options:

    - ``ice_servers``: STUN/TURN URLs (``"turn:user:pass@host:3478?transport=tcp"``)
      or RTCIceServer dicts, used besides those the signaling server hands out;
    - ``relay_only``: use TURN relay candidates only;
    - ``timeout``: seconds for the whole connection (waiting for the peer
      included), ``None`` for no limit;
    - ``peer_timeout``: seconds of silence after which the peer counts as lost;
    - ``host_addresses``: local addresses to gather host candidates on
      (default: every interface but loopback, as aioice does);
    - ``tls_context``: for ``turns:`` servers; ``signaling_ssl``: for ``wss://``.
    """

    def __init__(
        self,
        signal_url: str,
        room: str,
        *,
        ice_servers: Iterable[str | IceServerUrl | dict[str, Any]] = (),
        relay_only: bool = False,
        timeout: float | None = 30.0,
        peer_timeout: float = 10.0,
        host_addresses: list[str] | None = None,
        gather_timeout: float = 5.0,
        tls_context: ssl.SSLContext | None = None,
        signaling_ssl: ssl.SSLContext | None = None,
    ) -> None:
        if not valid_room(room):
            raise ConfigError(f"bad room name {room!r}: 1 to 64 characters of A-Z a-z 0-9 . _ -")
        if peer_timeout <= 0:
            raise ConfigError("peer_timeout must be positive")
        self._peer = Peer(
            signal_url,
            room,
            ice_servers=_as_urls(ice_servers),
            relay_only=relay_only,
            timeout=timeout,
            peer_timeout=peer_timeout,
            host_addresses=host_addresses,
            gather_timeout=gather_timeout,
            tls_context=tls_context,
            signaling_ssl=signaling_ssl,
        )

    @property
    def peer(self) -> Peer:
        """The peer, before it is connected (to watch progress)."""
        return self._peer

    def __await__(self) -> Generator[Any, None, Peer]:
        return self._connect().__await__()

    async def _connect(self) -> Peer:
        await self._peer._start()
        return self._peer

    async def __aenter__(self) -> Peer:
        return await self

    async def __aexit__(self, *exc: object) -> None:
        await self._peer.close()


# -- the peer -----------------------------------------------------------------


class Peer:
    """A connection to one other peer. Made by :func:`connect`."""

    def __init__(
        self,
        signal_url: str,
        room: str,
        *,
        ice_servers: list[IceServerUrl],
        relay_only: bool,
        timeout: float | None,
        peer_timeout: float,
        host_addresses: list[str] | None,
        gather_timeout: float,
        tls_context: ssl.SSLContext | None,
        signaling_ssl: ssl.SSLContext | None,
    ) -> None:
        self.signal_url = signal_url
        self.room = room
        self._ice_servers = ice_servers
        self.relay_only = relay_only
        self._timeout = timeout
        self._peer_timeout = peer_timeout
        self._host_addresses = host_addresses
        self._gather_timeout = gather_timeout
        self._tls_context = tls_context
        self._signaling_ssl = signaling_ssl

        self.peer_id: str | None = None
        self.remote_peer_id: str | None = None
        self.role: Role | None = None
        self._sig: SignalingClient | None = None
        self._signaling_alive = False
        self._negotiation: Negotiation | None = None
        self._agent: Agent | None = None
        self._agents: dict[str, Agent] = {}  # by local ufrag, while restarting
        self._early_candidates: list[Candidate | None] = []
        self._certificate: RTCCertificate | None = None
        self._transport: IceTransport | None = None
        self._dtls: RTCDtlsTransport | None = None
        self._sctp: RTCSctpTransport | None = None
        self._remote: sdp.Description | None = None
        self._channels: list[Channel] = []
        self._unclaimed: list[Channel] = []
        self._arrivals = asyncio.Event()
        self._events: asyncio.Queue[PeerEvent] = asyncio.Queue()
        self._outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._tasks: set[asyncio.Task[Any]] = set()
        loop = asyncio.get_running_loop()
        self._established: asyncio.Future[None] = loop.create_future()
        self._closed: asyncio.Future[Closed] = loop.create_future()
        self._bye = False
        self._closing = False
        self._restarting = False
        self._restart_started = 0.0
        self._restarts = 0
        self._remote_types: dict[str, int] = {}
        self._path: tuple[Endpoint, Endpoint] | None = None
        self._t0 = time.monotonic()
        self._marks: dict[str, float] = {}
        self._progress: list[str] = []
        self.on_progress: Any = None  # callable(str), for the CLI

    # -- public API -------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._established.done() and not self._established.exception() and not self._closed.done()

    async def channel(
        self,
        label: str,
        *,
        ordered: bool = True,
        max_retransmits: int | None = None,
        max_packet_lifetime: int | None = None,
    ) -> Channel:
        """The channel named ``label``: the offering peer opens it, the answering peer waits for it.

        Both sides may call this with the same arguments; the answerer checks
        that what the offerer opened matches what it asked for.
        """
        _check_reliability(max_retransmits, max_packet_lifetime)
        if self.role is Role.OFFERER:
            return await self.open_channel(
                label, ordered=ordered, max_retransmits=max_retransmits, max_packet_lifetime=max_packet_lifetime
            )
        channel = await self._claim(lambda c: c.label == label)
        mismatch = [
            f"{name} {theirs!r} (you asked for {mine!r})"
            for name, theirs, mine in (
                ("ordered", channel.ordered, ordered),
                ("max_retransmits", channel.max_retransmits, max_retransmits),
                ("max_packet_lifetime", channel.max_packet_lifetime, max_packet_lifetime),
            )
            if theirs != mine
        ]
        if mismatch:
            raise ConfigError(f"channel {label!r} was opened by the peer with " + ", ".join(mismatch))
        return channel

    async def open_channel(
        self,
        label: str,
        *,
        ordered: bool = True,
        max_retransmits: int | None = None,
        max_packet_lifetime: int | None = None,
    ) -> Channel:
        """Open a new channel (in-band, RFC 8832) and wait until it is open."""
        _check_reliability(max_retransmits, max_packet_lifetime)
        sctp = self._require_connected()
        dc = RTCDataChannel(
            sctp,
            RTCDataChannelParameters(
                label=label, ordered=ordered, maxRetransmits=max_retransmits, maxPacketLifeTime=max_packet_lifetime
            ),
        )
        channel = self._adopt(dc)
        await self._until_closed(channel.wait_open())
        self._mark("channel_open")
        return channel

    async def accept_channel(self) -> Channel:
        """The next channel the peer opened that nobody claimed yet."""
        return await self._claim(lambda c: True)

    def report(self) -> ConnectionReport:
        """What this connection did so far."""
        report = ConnectionReport(room=self.room, role=self.role.value if self.role else None)
        agent = self._agent
        if agent is not None:
            stats = agent.stats
            report.gathered = dict(stats.gathered)
            report.checks_sent, report.checks_answered = stats.checks_sent, stats.checks_answered
            report.consent_sent, report.consent_answered = stats.consent_sent, stats.consent_answered
            report.rtt_ms = round(stats.rtt * 1000, 2) if stats.rtt is not None else None
            report.server_failures = {f.server: f.reason for f in stats.failures}
            report.servers_abandoned = list(stats.abandoned)
            report.malformed_stun, report.foreign_packets = stats.malformed, stats.foreign
            pair = agent.selected
            if pair is None and self._path is not None:
                # Closed since: the last path it had.
                report.local, report.remote = self._path
            elif pair is not None:
                local = pair.local_candidate
                turn_url = getattr(pair.protocol, "turn_url", None)
                report.local = Endpoint(
                    type=local.type,
                    address=local.host,
                    port=local.port,
                    protocol=("tls" if turn_url.secure else turn_url.transport) if turn_url else "udp",
                    server=f"{turn_url.host}:{turn_url.port}" if turn_url else None,
                )
                remote = pair.remote_candidate
                report.remote = Endpoint(type=remote.type, address=remote.host, port=remote.port)
                self._path = (report.local, report.remote)
        report.remote_candidates = dict(self._remote_types)
        report.timings_ms = {k: round((v - self._t0) * 1000, 1) for k, v in self._marks.items()}
        report.ice_restarts = self._restarts
        return report

    async def events(self) -> AsyncIterator[PeerEvent]:
        """Path changes and, last, :class:`Closed`."""
        while True:
            event = await self._events.get()
            yield event
            if isinstance(event, Closed):
                return

    async def wait_closed(self) -> Closed:
        """Wait until the connection is over; how it ended."""
        return await asyncio.shield(self._closed)

    async def drain(self, timeout: float | None = 10.0) -> bool:
        """Wait until the peer acknowledged everything sent; False if it cannot happen."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    sctp = self._sctp
                    if sctp is None:
                        return False
                    pending = any(c.buffered_amount for c in self._channels) or (
                        sctp._outbound_queue or sctp._sent_queue or sctp._data_channel_queue
                    )
                    # Acknowledged data counts even if the peer closed meanwhile:
                    # its last SACK arrives before its close.
                    if not pending:
                        return True
                    if self._closed.done():
                        return False
                    await asyncio.sleep(0.01)
        except TimeoutError:
            return False

    async def close(self) -> None:
        """Close on purpose: the peer sees a graceful end."""
        if self._closing:
            return
        self._closing = True
        if self.connected and self._signaling_alive and self.remote_peer_id:
            self._outbox.put_nowait({"type": "bye"})
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await self._outbox.join()
        await self._teardown()
        self._finish(Closed(graceful=True, reason="closed"))

    # -- start-up ---------------------------------------------------------------

    def _say(self, text: str) -> None:
        logger.info("%s", text)
        if self.on_progress is not None:
            self.on_progress(text)

    def _mark(self, name: str) -> None:
        self._marks.setdefault(name, time.monotonic())

    async def _start(self) -> None:
        self._t0 = time.monotonic()
        try:
            async with asyncio.timeout(self._timeout):
                await self._join()
                await self._established
        except TimeoutError:
            await self._teardown()
            raise ConnectFailed(self._timeout_reason()) from None
        except BaseException as exc:
            await self._teardown()
            if isinstance(exc, IcepeerError):
                raise
            if isinstance(exc, (ConnectionError, OSError)):
                raise ConnectFailed(f"connection failed: {exc}") from exc
            raise
        self._spawn(self._monitor())

    def _timeout_reason(self) -> str:
        limit = f"{self._timeout:g} s"
        if self.remote_peer_id is None:
            return f"no peer joined room {self.room!r} within {limit}"
        if "ice_connected" not in self._marks:
            return f"ICE found no working path to the peer within {limit}" + self._failure_hint()
        if "dtls_connected" not in self._marks:
            return f"the DTLS handshake did not finish within {limit}"
        return f"the connection did not open within {limit}"

    def _failure_hint(self) -> str:
        agent = self._agent
        if agent is None:
            return ""
        hints = [f"{f.server}: {f.reason}" for f in agent.stats.failures]
        gathered = ", ".join(f"{n} {t}" for t, n in sorted(agent.stats.gathered.items())) or "no candidates"
        out = f" (gathered {gathered}"
        if hints:
            out += "; " + "; ".join(hints)
        return out + ")"

    async def _join(self) -> None:
        try:
            self._sig = await SignalingClient.connect(
                self.signal_url, self.room, timeout=self._timeout or None, ssl_context=self._signaling_ssl
            )
        except ServerRefused as exc:
            raise SignalingFailed(str(exc), exc.code) from exc
        except SignalingUnavailable as exc:
            raise SignalingFailed(str(exc)) from exc
        self._signaling_alive = True
        self.peer_id = self._sig.peer_id
        self._mark("joined")
        try:
            self._ice_servers = self._ice_servers + parse_ice_servers(self._sig.ice_servers)
        except BadUrl as exc:
            logger.warning("ignoring the signaling server's ICE servers: %s", exc)
        self._certificate = RTCCertificate.generateCertificate()
        self._agent = self._make_agent()
        self._spawn(self._agent.gather(), name="gather")
        self._spawn(self._sender(), name="signaling-sender")
        self._spawn(self._reader(), name="signaling-reader")
        if self._sig.peers:
            self._begin(Role.ANSWERER, self._sig.peers[0])
        else:
            self._say(f"joined room {self.room}, waiting for the peer")

    def _make_agent(self) -> Agent:
        agent = Agent(
            ice_servers=self._ice_servers,
            relay_only=self.relay_only,
            host_addresses=self._host_addresses,
            gather_timeout=self._gather_timeout,
            tls_context=self._tls_context,
        )
        agent._on_candidate = lambda candidate: self._on_local_candidate(agent, candidate)
        agent._on_relay_lost = lambda reason: self._on_relay_lost(agent, reason)
        if self.role is not None:
            agent.ice_controlling = self.role is Role.OFFERER
        self._agents[agent.local_username] = agent
        return agent

    def _new_credentials(self) -> tuple[str, str]:
        """For an ICE restart: a fresh agent, gathering at once; its credentials."""
        agent = self._make_agent()
        self._spawn(agent.gather(), name="gather")
        return agent.local_username, agent.local_password

    def _begin(self, role: Role, remote_peer_id: str) -> None:
        assert self._agent is not None and self._certificate is not None
        self.role = role
        self.remote_peer_id = remote_peer_id
        self._agent.ice_controlling = role is Role.OFFERER
        self._mark("peer_found")
        self._say(f"peer {remote_peer_id[:8]} is here; {'offering' if role is Role.OFFERER else 'answering'}")
        local = sdp.Description(
            ice_ufrag=self._agent.local_username,
            ice_pwd=self._agent.local_password,
            fingerprints=tuple(
                sdp.Fingerprint(f.algorithm, f.value) for f in self._certificate.getFingerprints()
            ),
            setup="actpass",
            max_message_size=MAX_MESSAGE_SIZE,
        )
        self._negotiation = Negotiation(role, local, new_credentials=self._new_credentials)
        actions = self._negotiation.start()
        early, self._early_candidates = self._early_candidates, []
        for candidate in early:
            actions += self._negotiation.local_candidate(candidate)
        self._run(actions)

    # -- signaling ------------------------------------------------------------

    async def _sender(self) -> None:
        assert self._sig is not None
        while True:
            data = await self._outbox.get()
            try:
                if self.remote_peer_id is not None:
                    await self._sig.signal(self.remote_peer_id, data)
            except SignalingUnavailable as exc:
                logger.info("could not signal the peer: %s", exc)
            finally:
                self._outbox.task_done()

    async def _reader(self) -> None:
        assert self._sig is not None
        try:
            while True:
                event = await self._sig.recv()
                if isinstance(event, PeerJoined) and self.remote_peer_id is None:
                    self._begin(Role.OFFERER, event.peer_id)
                elif isinstance(event, Relayed) and event.sender == self.remote_peer_id:
                    self._on_signal(event.data)
                elif isinstance(event, PeerLeft) and event.peer_id == self.remote_peer_id:
                    self._on_peer_left()
                elif isinstance(event, SignalingError):
                    logger.warning("signaling server: %s (%s)", event.message, event.code)
        except SignalingUnavailable as exc:
            self._signaling_alive = False
            if not self._established.done():
                self._fail(SignalingFailed(f"lost the signaling server before connecting: {exc}"))
            elif not self._closing:
                logger.warning("signaling connection lost (%s): the connection goes on, "
                               "but cannot be repaired if its path fails", exc)

    def _on_signal(self, data: Any) -> None:
        assert self._negotiation is not None
        try:
            actions = self._negotiation.receive(data)
        except BadDescription as exc:
            if not self._established.done():
                self._fail(BadDescription(f"the peer sent something unusable: {exc}"))
            else:
                logger.warning("ignoring a bad message from the peer: %s", exc)
            return
        if isinstance(data, dict) and data.get("candidate"):
            self._count_remote(data["candidate"])
        self._run(actions)

    def _count_remote(self, line: str) -> None:
        kind = line.partition(" typ ")[2].split(" ")[0] or "unknown"
        self._remote_types[kind] = self._remote_types.get(kind, 0) + 1

    def _on_peer_left(self) -> None:
        if self._bye:
            self._peer_gone(True, "peer left")
        else:
            self._peer_gone(False, "peer disconnected without closing (killed or crashed?)")

    def _on_local_candidate(self, agent: Agent, candidate: Candidate | None) -> None:
        if self._closing:
            return
        negotiation = self._negotiation
        if negotiation is None:
            self._early_candidates.append(candidate)
            return
        if agent.local_username != negotiation.local.ice_ufrag:
            return  # a late candidate of a replaced ICE generation
        self._run(negotiation.local_candidate(candidate))

    def _run(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Send):
                self._outbox.put_nowait(action.data)
            elif isinstance(action, StartIce):
                assert self._agent is not None
                self._remote = action.remote
                self._prepare(self._agent, action.remote)
                self._spawn(self._establish(self._agent, action.remote), name="establish")
            elif isinstance(action, RestartIce):
                self._spawn(self._restart(action), name="ice-restart")
            elif isinstance(action, AddRemoteCandidate):
                self._spawn(self._add_remote(action))
            elif isinstance(action, PeerBye):
                self._bye = True

    def _prepare(self, agent: Agent, remote: sdp.Description) -> None:
        agent.remote_username = remote.ice_ufrag
        agent.remote_password = remote.ice_pwd
        agent.remote_is_lite = remote.ice_lite
        agent.ice_controlling = self.role is Role.OFFERER

    async def _add_remote(self, action: AddRemoteCandidate) -> None:
        for agent in list(self._agents.values()):
            if agent.remote_username == action.ufrag:
                try:
                    await agent.add_remote_candidate(action.candidate)
                except ValueError as exc:
                    logger.debug("remote candidate ignored: %s", exc)
                return

    # -- ICE, DTLS, SCTP ---------------------------------------------------------

    async def _establish(self, agent: Agent, remote: sdp.Description) -> None:
        try:
            await self._connect_ice(agent)
            self._mark("ice_connected")
            self._say(f"ICE connected: {self.report().path}")
            assert self._certificate is not None and self._negotiation is not None
            self._transport = IceTransport(agent, controlling=self.role is Role.OFFERER)
            self._dtls = RTCDtlsTransport(self._transport, [self._certificate])  # type: ignore[arg-type]
            # The DTLS role comes from a=setup (RFC 8842), not from the ICE role.
            self._dtls._set_role(self._negotiation.dtls_role)
            self._dtls.on("statechange", self._on_dtls_state)
            try:
                await self._dtls.start(
                    RTCDtlsParameters(
                        fingerprints=[RTCDtlsFingerprint(f.algorithm, f.value) for f in remote.fingerprints]
                    )
                )
            finally:
                self._transport.handshake_done()
            if self._dtls.state == "failed":
                if self._dtls.encrypted:
                    raise FingerprintMismatch(
                        "the peer's DTLS certificate does not match the fingerprint in its SDP: "
                        "someone may be tampering with the signaling path"
                    )
                raise DtlsFailed("the DTLS handshake failed")
            self._mark("dtls_connected")
            self._sctp = SctpTransport(self._dtls)
            self._sctp.on("datachannel", self._on_remote_channel)
            await self._sctp.start(RTCSctpCapabilities(maxMessageSize=remote.max_message_size), remote.sctp_port)
        except Exception as exc:  # noqa: BLE001 - handed to connect()'s caller through _established
            self._fail(exc)
            return
        if not self._established.done():
            self.report()  # remember the path, for reports after the end
            self._established.set_result(None)

    async def _connect_ice(self, agent: Agent) -> None:
        try:
            await agent.connect()
        except ConnectionError as exc:
            turn_refusals = [f for f in agent.stats.failures if f.reason.startswith("401")]
            if self.relay_only and turn_refusals and not agent.stats.gathered.get("relay"):
                raise TurnError(
                    "relay-only, and every TURN server refused us: "
                    + "; ".join(f"{f.server}: {f.reason}" for f in turn_refusals)
                ) from exc
            raise IceFailed("ICE found no working path to the peer" + self._failure_hint()) from exc

    def _on_dtls_state(self) -> None:
        dtls = self._dtls
        if dtls is None or self._closing or not self._established.done():
            return
        if dtls.state == "closed":
            transport = self._transport
            if transport is not None and transport.agent.connected and not transport.agent._closed:
                self._peer_gone(True, "peer closed the connection")
            else:
                self._peer_gone(False, "the path to the peer is gone")

    def _on_remote_channel(self, dc: RTCDataChannel) -> None:
        channel = self._adopt(dc)
        self._mark("channel_open")
        self._unclaimed.append(channel)
        self._arrivals.set()

    def _adopt(self, dc: RTCDataChannel) -> Channel:
        max_size = self._remote.max_message_size if self._remote else MAX_MESSAGE_SIZE
        channel = Channel(dc, max_message_size=max_size)
        self._channels.append(channel)
        return channel

    async def _claim(self, match: Any) -> Channel:
        self._require_connected()
        while True:
            for channel in self._unclaimed:
                if match(channel):
                    self._unclaimed.remove(channel)
                    return channel
            self._arrivals.clear()
            await self._until_closed(self._arrivals.wait())

    async def _until_closed(self, awaitable: Any) -> Any:
        task = asyncio.ensure_future(awaitable)
        closed = asyncio.ensure_future(self.wait_closed())
        try:
            await asyncio.wait({task, closed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            closed.cancel()
        if task.done():
            return task.result()
        task.cancel()
        raise PeerLost(f"connection closed: {self._closed.result().reason}")

    def _require_connected(self) -> RTCSctpTransport:
        if self._closed.done():
            raise PeerLost(f"connection closed: {self._closed.result().reason}")
        if self._sctp is None:
            raise ConnectFailed("not connected yet")
        return self._sctp

    # -- keeping the path alive ---------------------------------------------------

    async def _monitor(self) -> None:
        """Watch the selected path: restart ICE when it goes quiet, give up after peer_timeout."""
        while not self._closed.done():
            await asyncio.sleep(0.25)
            agent = self._agent
            if agent is None:
                return
            silent = time.monotonic() - agent.last_heard
            if silent > self._peer_timeout:
                self._peer_gone(False, f"no packets from the peer for {self._peer_timeout:g} s")
                return
            if silent > STALE_AFTER and not self._restarting:
                client = agent.turn_client_of(agent.selected)
                if client is not None and client.lost_reason is None:
                    self._spawn(client.probe(), name="turn-probe")
                self._start_restart(f"nothing heard from the peer for {silent:.1f} s")

    def _on_relay_lost(self, agent: Agent, reason: str) -> None:
        if agent is not self._agent or self._closing or not self._established.done():
            return
        client = agent.turn_client_of(agent.selected)
        if client is not None and client.lost_reason is not None:
            self._start_restart(f"relay allocation lost: {reason}")

    def _start_restart(self, reason: str) -> None:
        if self._restarting or self._closing or self._negotiation is None or not self._signaling_alive:
            return
        self._restarting = True
        self._restart_started = time.monotonic()
        self._events.put_nowait(PathLost(reason))
        self._say(f"path lost ({reason}): restarting ICE")
        actions = self._negotiation.restart()
        if not actions:
            self._restarting = False
        self._run(actions)

    async def _restart(self, action: RestartIce) -> None:
        agent = self._agents.get(action.local[0])
        if agent is None:  # pragma: no cover - credentials always come from _new_credentials
            logger.error("ICE restart for unknown credentials %s", action.local[0])
            return
        self._restarting = True
        if not self._restart_started:
            self._restart_started = time.monotonic()
        self._prepare(agent, action.remote)
        self._remote = action.remote
        try:
            async with asyncio.timeout(self._peer_timeout * 2):
                await agent.connect()
        except (ConnectionError, TimeoutError) as exc:
            logger.warning("ICE restart failed: %s", exc or "timeout")
            await agent.close()
            self._agents.pop(agent.local_username, None)
            self._restarting = False
            self._restart_started = 0.0
            return
        old, self._agent = self._agent, agent
        if self._transport is not None:
            self._transport.switch(agent)
        if old is not None and old is not agent:
            self._agents.pop(old.local_username, None)
            self._spawn(old.close(), name="close-old-agent")
        self._restarts += 1
        elapsed = (time.monotonic() - self._restart_started) * 1000
        report = self.report()
        self._restarting = False
        self._restart_started = 0.0
        if report.local and report.remote:
            self._events.put_nowait(PathChanged(report.local, report.remote, elapsed))
        self._say(f"ICE restarted in {elapsed:.0f} ms: {report.path}")

    # -- endings ------------------------------------------------------------------

    def _fail(self, exc: BaseException) -> None:
        if not self._established.done():
            self._established.set_exception(exc)
            self._established.exception()  # retrieved: no "never retrieved" warning

    def _peer_gone(self, graceful: bool, reason: str) -> None:
        if self._closed.done() or self._closing:
            return
        if not self._established.done():
            self._fail(PeerLost(reason))
        self._say(reason)
        self._finish(Closed(graceful, reason))
        self._spawn(self._teardown(), name="teardown")

    def _finish(self, closed: Closed) -> None:
        if not self._closed.done():
            self._closed.set_result(closed)
            self._events.put_nowait(closed)

    async def _teardown(self) -> None:
        self._closing = True
        for channel in self._channels:
            channel._on_close()
        if self._sctp is not None:
            with contextlib.suppress(Exception):
                await self._sctp.stop()
        if self._dtls is not None:
            with contextlib.suppress(Exception):
                await self._dtls.stop()
        if self._transport is not None:
            self._transport.close()
        for agent in list(self._agents.values()):
            with contextlib.suppress(Exception):
                await agent.close()
        if self._sig is not None:
            with contextlib.suppress(Exception):
                await self._sig.leave()
        current = asyncio.current_task()
        for task in list(self._tasks):
            if task is not current:
                task.cancel()

    def _spawn(self, coro: Any, name: str | None = None) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None and not isinstance(exc, IcepeerError):
            logger.error("task %s failed", task.get_name(), exc_info=exc)


def _check_reliability(max_retransmits: int | None, max_packet_lifetime: int | None) -> None:
    if max_retransmits is not None and max_packet_lifetime is not None:
        raise ConfigError("give max_retransmits or max_packet_lifetime, not both (RFC 8831 section 6.1)")
    for name, value in (("max_retransmits", max_retransmits), ("max_packet_lifetime", max_packet_lifetime)):
        if value is not None and not 0 <= value <= 65535:
            raise ConfigError(f"{name} must be between 0 and 65535")
