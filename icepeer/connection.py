"""The wiring of one connection: start-up, what the session asks for, and the endings.

:class:`Connection` owns the three parts that :class:`icepeer.Peer` is a
facade over, and routes between them:

- the session: :class:`~icepeer.signaling_link.SignalingLink` (the room) and
  :class:`~icepeer.negotiator.Negotiator` (offer, answer and candidates,
  decided by :class:`~icepeer.session.Negotiation`, with no I/O);
- the transport setup: :class:`~icepeer.stack.Stack` (DTLS, then SCTP);
- the path monitor: :class:`~icepeer.monitor.PathMonitor` (the ICE agents,
  and the path policy of :mod:`icepeer.path`).

A connection flows one way: signaling -> ICE -> DTLS -> SCTP -> channels.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Callable, Coroutine
from typing import Any

from aioice.candidate import Candidate

from icecommon.urls import BadUrl, IceServerUrl, parse_ice_servers

from . import rendezvous, sdp
from .agent import Agent
from .channel import Channel
from .channels import ChannelSet
from .code import Code
from .errors import (
    AuthenticationFailed,
    BadDescription,
    ChannelClosed,
    ConnectFailed,
    IceFailed,
    IcepeerError,
    PeerLost,
    SignalingFailed,
    TurnError,
)
from .events import Closed, PathChanged, PathLost, PeerEvent
from .monitor import PathMonitor
from .negotiator import Negotiator
from .pake import EXPORTER_LABEL, MISMATCH, Pake
from .path import PathConfig, RestartIce
from .report import Endpoint, endpoints
from .session import AddRemoteCandidate, Role
from .signaling_link import SignalingLink
from .stack import Stack

__all__ = ["Connection"]

logger = logging.getLogger("icepeer.peer")

#: Seconds between two requests for fresh ICE servers, at the least (however short their TTL).
MIN_ICE_SERVERS_REFRESH = 1.0


class Connection:
    """Everything one :class:`icepeer.Peer` runs, and its state."""

    def __init__(
        self,
        signal_url: str,
        room: str | None,
        *,
        code: Code | None,
        wait_for_peer: bool = False,
        ice_servers: list[IceServerUrl],
        relay_only: bool,
        timeout: float | None,
        peer_timeout: float,
        host_addresses: list[str] | None,
        gather_timeout: float,
        tls_context: ssl.SSLContext | None,
        signaling_ssl: ssl.SSLContext | None,
        receive_buffer: int,
        accelerate: bool = True,
        joined: rendezvous.Joined | None = None,
    ) -> None:
        self.room = room if room is not None else "(code)"
        self._early = joined
        self.accelerate = accelerate
        self.code = code
        self._wait_for_peer = wait_for_peer
        self._pake = Pake(code.password) if code is not None else None
        self._signal_url, self._signaling_ssl = signal_url, signaling_ssl
        self.relay_only = relay_only
        #: The ICE servers given by the caller, and with the signaling server's once joined.
        self._given_ice_servers = self._ice_servers = ice_servers
        self._timeout = timeout
        self._receive_buffer = receive_buffer
        self._agent_options: dict[str, Any] = {
            "relay_only": relay_only, "host_addresses": host_addresses,
            "gather_timeout": gather_timeout, "tls_context": tls_context,
        }
        self.link = SignalingLink(signal_url, self.room, timeout=timeout, ssl_context=signaling_ssl)
        self._path_config = PathConfig.for_peer_timeout(peer_timeout)
        self.monitor = PathMonitor(
            self._path_config, make_agent=self._make_agent, spawn=self._spawn,
            request_restart=self._restart_requested, peer_lost=lambda reason: self.peer_gone(False, reason),
            switched=self._switched,
            moved=self._moved,
        )
        self.stack: Stack | None = None
        self.session: Negotiator | None = None
        self.channels = ChannelSet()
        self.events: asyncio.Queue[PeerEvent] = asyncio.Queue()
        self._tasks: set[asyncio.Task[Any]] = set()
        loop = asyncio.get_running_loop()
        self.established: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[Closed] = loop.create_future()
        self.closing = False
        #: The last selected path: reports give it after the end too.
        self.path: tuple[Endpoint, Endpoint] | None = None
        self.t0 = time.monotonic()
        self.marks: dict[str, float] = {}
        self.on_progress: Callable[[str], None] | None = None
        #: Called with the code once its nameplate is known (a new code).
        self.on_code: Callable[[str], None] | None = None

    @property
    def role(self) -> Role | None:
        return self.session.role if self.session else None

    @property
    def preagreed(self) -> bool:
        """Whether the peer is icepeer too: channels asked for by label are pre-agreed."""
        negotiation = self.session.negotiation if self.session is not None else None
        return negotiation is not None and negotiation.preagreed

    @property
    def remote_peer_id(self) -> str | None:
        return self.link.remote_peer_id

    def selected_path(self) -> tuple[Endpoint, Endpoint] | None:
        """The current path's two ends, or the last one it had."""
        agent = self.monitor.agent
        pair = agent.selected if agent is not None else None
        if pair is not None:
            self.path = endpoints(pair)
        return self.path

    # -- start-up ---------------------------------------------------------------

    def say(self, text: str) -> None:
        logger.info("%s", text)
        if self.on_progress is not None:
            self.on_progress(text)

    def mark(self, name: str) -> None:
        self.marks.setdefault(name, time.monotonic())

    async def start(self) -> None:
        self.t0 = self._early.started if self._early is not None else time.monotonic()
        try:
            async with asyncio.timeout(self._timeout):
                await self._join()
                # Shielded: a timeout or cancel must not cancel the future itself,
                # which `connected` and close() read afterwards.
                await asyncio.shield(self.established)
        except TimeoutError:
            await self.teardown()
            raise ConnectFailed(self._timeout_reason()) from None
        except BaseException as exc:
            await self.teardown()
            if isinstance(exc, (ConnectionError, OSError)) and not isinstance(exc, IcepeerError):
                raise ConnectFailed(f"connection failed: {exc}") from exc
            raise

    def _timeout_reason(self) -> str:
        limit = f"{self._timeout:g} s"
        if self.remote_peer_id is None:
            return f"no peer joined room {self.room!r} within {limit}"
        if "ice_connected" not in self.marks:
            return f"ICE found no working path to the peer within {limit}" + self._failure_hint()
        if "dtls_connected" not in self.marks:
            return f"the DTLS handshake did not finish within {limit}"
        return f"the connection did not open within {limit}"

    def _failure_hint(self) -> str:
        agent = self.monitor.agent
        if agent is None:
            return ""
        hints = "".join(f"; {f.server}: {f.reason}" for f in agent.stats.failures)
        gathered = ", ".join(f"{n} {t}" for t, n in sorted(agent.stats.gathered.items())) or "no candidates"
        return f" (gathered {gathered}{hints})"

    async def _join(self) -> None:
        early = self._early
        if early is not None:
            self.link, code = early.link, early.code
            self.marks["joined"] = early.finished
        else:
            room = None if self.code is not None else self.room
            self.link, code = await rendezvous.join(self._signal_url, room, self.code, timeout=self._timeout,
                                                    ssl_context=self._signaling_ssl, wait=self._wait_for_peer)
        link = self.link
        if code is not None:
            self.code, self.room = code, code.room
            if self.on_code is not None:
                self.on_code(str(code))
        self.mark("joined")
        self._take_server_ice_servers()
        if link.ice_servers_ttl is not None:
            self._spawn(self._keep_ice_servers_fresh(link), "fresh-ice-servers")
        self.stack = Stack(receive_buffer=self._receive_buffer)
        self.stack.on_channel = self._on_remote_channel
        self.stack.on_closed = self._on_stack_closed
        self.stack.on_channel_closed = self.channels.forget
        self.monitor.first_agent()
        self.session = Negotiator(link, self.monitor, self, self.stack.fingerprints(), self._pake,
                                  sctp_init=self.stack.sctp_init() if self.accelerate else None,
                                  accelerate=self.accelerate)
        link.on_peer_left, link.on_lost = self._on_peer_left, self._on_link_lost
        self._spawn(link.sender(), "signaling-sender")
        self._spawn(link.reader(), "signaling-reader")
        if link.peers:
            self.session.begin(Role.ANSWERER, link.peers[0])
        else:
            self.say(f"joined room {self.room}, waiting for the peer")

    def _take_server_ice_servers(self) -> None:
        try:
            self._ice_servers = self._given_ice_servers + parse_ice_servers(self.link.ice_servers)
        except BadUrl as exc:
            logger.warning("ignoring the signaling server's ICE servers: %s", exc)

    async def _keep_ice_servers_fresh(self, link: SignalingLink) -> None:
        """Ask for fresh TURN credentials at half their lifetime, while the connection lasts.

        The signaling server's TURN credentials expire (``--turn-ttl``, an hour
        by default). An allocation made with them lives on past that (coturn
        accepts its refreshes), but a new one is refused (401): an ICE restart
        late in a connection (the TURN server restarted, the network changed)
        would find no relay. Agents made after this take the fresh ones.
        """
        link.on_ice_servers = self._take_server_ice_servers
        while link.alive and link.ice_servers_ttl is not None and not self.closing:
            await asyncio.sleep(max(link.ice_servers_ttl / 2, MIN_ICE_SERVERS_REFRESH))
            if link.alive and not self.closing:
                await link.request_ice_servers()

    def _make_agent(self) -> Agent:
        agent = Agent(ice_servers=self._ice_servers, consent_interval=self._path_config.consent_interval,
                      **self._agent_options)
        agent.on_candidate = lambda candidate: self._on_local_candidate(agent, candidate)
        agent.ice_controlling = self.role is Role.OFFERER
        return agent

    def _on_local_candidate(self, agent: Agent, candidate: Candidate | None) -> None:
        if self.session is not None and not self.closing:
            self.session.local_candidate(agent, candidate)

    def _on_peer_left(self) -> None:
        if self.session is not None and self.session.bye:
            self.peer_gone(True, "peer left")
        else:
            self.peer_gone(False, "peer disconnected without closing (killed or crashed?)")

    def _on_link_lost(self, reason: str) -> None:
        self.monitor.signaling_lost()
        if not self.established.done():
            self.fail(SignalingFailed(f"lost the signaling server before connecting: {reason}"))
        elif not self.closing:
            logger.warning("signaling connection lost (%s): the connection goes on, "
                           "but cannot be repaired if its path fails", reason)

    # -- what the session asks for (SessionHooks) ---------------------------------

    def peer_found(self, role: Role, remote_peer_id: str) -> None:
        self.mark("peer_found")
        self.say(f"peer {remote_peer_id[:8]} is here; {'offering' if role is Role.OFFERER else 'answering'}")

    def start_ice(self, remote: sdp.Description) -> None:
        assert self.monitor.agent is not None
        self.monitor.prepare(self.monitor.agent, remote, controlling=self.role is Role.OFFERER)
        self._spawn(self._establish(remote), "establish")

    def restart_ice(self, ufrag: str, remote: sdp.Description) -> None:
        self._spawn(self.monitor.restart(ufrag, remote, controlling=self.role is Role.OFFERER), "ice-restart")

    def add_remote_candidate(self, action: AddRemoteCandidate) -> None:
        self._spawn(self.monitor.add_remote_candidate(action.ufrag, action.candidate), "remote-candidate")

    def authentication_failed(self, exc: AuthenticationFailed) -> None:
        if not self.established.done():
            self.fail(exc)
        else:
            self.peer_gone(False, str(exc))

    async def _confirm(self, stack: Stack) -> None:
        """Key confirmation bound to this DTLS session (RFC 5705): see :mod:`icepeer.pake`."""
        pake, channel, dtls = self._pake, stack.confirm_channel, stack.dtls
        assert pake is not None and channel is not None and dtls is not None
        exporter = dtls.export_keying_material(EXPORTER_LABEL, 32)
        mine = "offerer" if self.role is Role.OFFERER else "answerer"
        theirs = "answerer" if mine == "offerer" else "offerer"
        await channel.send(pake.confirmation(mine, exporter))
        try:
            tag = await channel.recv()
        except ChannelClosed:
            raise AuthenticationFailed(MISMATCH) from None
        pake.check_confirmation(theirs, exporter, tag)
        self.mark("authenticated")

    def negotiation_failed(self, exc: BadDescription) -> None:
        if not self.established.done():
            self.fail(BadDescription(f"the peer sent something unusable: {exc}"))
        else:
            logger.warning("ignoring a bad message from the peer: %s", exc)

    # -- ICE, DTLS, SCTP ---------------------------------------------------------

    async def _establish(self, remote: sdp.Description) -> None:
        stack, session = self.stack, self.session
        assert stack is not None and session is not None
        agent = self.monitor.agent
        assert agent is not None and session.negotiation is not None
        sped = session.negotiation.sped
        # False Start (RFC 7918) when accelerated; not with a code (its confirmation needs the whole handshake).
        false_start = (sped or session.negotiation.snap is not None) and self._pake is None
        try:
            if sped:
                # SPED: the DTLS handshake starts now, inside the ICE checks.
                agent.enable_sped(dtls_server=session.dtls_role == "server")
                stack.begin_dtls(agent, dtls_role=session.dtls_role, remote=remote, false_start=false_start)
            await self._connect_ice()
            self.mark("ice_connected")
            self.say(f"ICE connected: {_describe(self.selected_path())}")
            if not sped:
                stack.begin_dtls(agent, dtls_role=session.dtls_role, remote=remote, false_start=false_start)
            await stack.wait_dtls()
            self.mark("dtls_connected")
            self.monitor.dtls_connected()
            await stack.start_sctp(remote, confirm=self._pake is not None, snap=session.negotiation.snap)
            if self._pake is not None:
                await self._confirm(stack)
        except Exception as exc:  # noqa: BLE001 - handed to connect()'s caller through _established
            self.fail(exc)
            return
        if not self.established.done():
            self.selected_path()  # remember the path, for reports after the end
            self.established.set_result(None)

    async def _connect_ice(self) -> None:
        try:
            await self.monitor.connect_first()
        except ConnectionError as exc:
            stats = self.monitor.agent.stats if self.monitor.agent else None
            refusals = [f for f in stats.failures if f.reason.startswith("401")] if stats else []
            if self.relay_only and refusals and stats is not None and not stats.gathered.get("relay"):
                raise TurnError("relay-only, and every TURN server refused us: "
                                + "; ".join(f"{f.server}: {f.reason}" for f in refusals)) from exc
            raise IceFailed("ICE found no working path to the peer" + self._failure_hint()) from exc

    def _on_remote_channel(self, channel: Channel) -> None:
        if self.channels.arrived(channel):
            self.mark("channel_open")

    def _on_stack_closed(self, reason: str, graceful: bool) -> None:
        if self.established.done():
            self.peer_gone(graceful, reason)
        elif self._pake is not None and "dtls_connected" in self.marks and "authenticated" not in self.marks:
            # The peer found our key confirmation wrong and closed before its
            # "pake-failed" could reach us through the signaling server.
            self.fail(AuthenticationFailed(MISMATCH))
        else:
            self.fail(ConnectFailed(reason))

    # -- the path ---------------------------------------------------------------

    def _restart_requested(self, action: RestartIce) -> None:
        if not action.retry:
            self.events.put_nowait(PathLost(action.reason))
            self.say(f"path lost ({action.reason}): restarting ICE")
        if self.session is not None and not self.closing:
            self.session.restart()

    def _switched(self, agent: Agent, elapsed_ms: float) -> None:
        if self.stack is not None:
            self.stack.switch(agent)
        path = self.selected_path()
        if path is not None:
            self.events.put_nowait(PathChanged(path[0], path[1], elapsed_ms))
        self.say(f"ICE restarted in {elapsed_ms:.0f} ms: {_describe(path)}")

    def _moved(self, elapsed_ms: float) -> None:
        path = self.selected_path()
        if path is not None:
            self.events.put_nowait(PathChanged(path[0], path[1], elapsed_ms, reason="direct"))
        self.say(f"moved off the relay {elapsed_ms:.0f} ms after ICE connected: {_describe(path)}")

    # -- endings ------------------------------------------------------------------

    def fail(self, exc: BaseException) -> None:
        if not self.established.done():
            self.established.set_exception(exc)
            self.established.exception()  # retrieved: no "never retrieved" warning

    def peer_gone(self, graceful: bool, reason: str) -> None:
        if self.closed.done() or self.closing:
            return
        if not self.established.done():
            self.fail(PeerLost(reason))
        self.say(reason)
        self.finish(Closed(graceful, reason))
        self._spawn(self.teardown(), "teardown")

    def finish(self, closed: Closed) -> None:
        if not self.closed.done():
            self.closed.set_result(closed)
            self.events.put_nowait(closed)

    async def teardown(self) -> None:
        self.closing = True
        if self.stack is not None:
            await self.stack.stop()
        await self.monitor.close()
        await self.link.leave()
        current = asyncio.current_task()
        for task in list(self._tasks):
            if task is not current:
                task.cancel()

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
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


def _describe(path: tuple[Endpoint, Endpoint] | None) -> str:
    if path is None:
        return "not connected"
    local, remote = path
    return f"{local.type} -> {remote.type} over {local.protocol}"
