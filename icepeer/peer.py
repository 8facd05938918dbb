"""The public API: :func:`connect` and :class:`Peer`.

::

    async with icepeer.connect("ws://127.0.0.1:8765", room="x") as peer:
        chat = await peer.channel("chat")
        await chat.send("hello")
        async for message in chat:
            ...
        print(peer.report().describe())

:class:`Peer` is a thin facade over the session (signaling and negotiation),
the transport setup (DTLS, SCTP) and the path monitor (ICE agents and path
policy), which :class:`icepeer.connection.Connection` owns and wires up.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import AsyncIterator, Callable, Coroutine, Generator, Iterable
from typing import Any

from icecommon.urls import BadUrl, IceServerUrl, parse_ice_servers, parse_ice_url
from signaling.protocol import valid_room

from .channel import Channel, check_reliability
from .code import Code, parse_code
from .connection import Connection
from .errors import ConfigError, ConnectFailed, PeerLost
from .events import Closed, PathChanged, PathLost, PeerEvent
from .rendezvous import Joined
from .report import ConnectionReport
from .sctp.association import DEFAULT_RECEIVE_BUFFER
from .sctp.datachannels import ChannelParameters, preagreed_stream
from .session import Role
from .stack import Stack

__all__ = ["connect", "Peer", "PeerEvent", "PathChanged", "PathLost", "Closed"]

logger = logging.getLogger(__name__)

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
    """Connect to the peer with the same code, or in the same room of the signaling server.

    ``await connect(...)`` returns a connected :class:`Peer`; ``async with
    connect(...) as peer`` also closes it. Give one of:

    - ``code``: a code such as ``"7-guitar-ribbon"`` (the other side's), or
      :func:`icepeer.new_code` to make one (its nameplate is picked on the
      server: ``peer.code``, and ``peer.on_code`` once known). The peers run a
      PAKE over it and authenticate the SDP and DTLS with its key: the
      signaling server cannot get in the middle (docs/security.md). A given
      code expects the other side waiting, unless ``wait_for_peer`` (both
      sides were given the code beforehand: the first waits);
    - ``room``: a room name, as browsers and stock WebRTC peers use: the
      signaling server is trusted with the fingerprints.

    Options:

    - ``ice_servers``: STUN/TURN URLs (``"turn:user:pass@host:3478?transport=tcp"``)
      or RTCIceServer dicts, used besides those the signaling server hands out;
    - ``relay_only``: use TURN relay candidates only;
    - ``timeout``: seconds for the whole connection (waiting for the peer
      included), ``None`` for no limit;
    - ``peer_timeout``: seconds without an answer from the peer (consent,
      RFC 7675) after which it counts as lost;
    - ``host_addresses``: local addresses to gather host candidates on
      (default: every interface but loopback, as aioice does);
    - ``tls_context``: for ``turns:`` servers; ``signaling_ssl``: for ``wss://``;
    - ``receive_buffer``: bytes received and not yet read that the connection
      holds at most (4 MiB); beyond it the peer's sends wait (the SCTP window);
    - ``accelerate``: offer SNAP (the SCTP handshake in the SDP) and SPED
      (DTLS inside the ICE checks), used when the peer has them too: fewer
      round trips to the first message (docs/peer.md). ``False``: the
      standard sequence only;
    - ``joined``: the same room or code, joined beforehand with
      :func:`icepeer.rendezvous.join_early` (the icepeer CLI joins while the
      rest of icepeer loads: docs/peer.md, "Start-up").
    """

    def __init__(
        self,
        signal_url: str,
        room: str | None = None,
        *,
        code: str | Code | None = None,
        wait_for_peer: bool = False,
        ice_servers: Iterable[str | IceServerUrl | dict[str, Any]] = (),
        relay_only: bool = False,
        timeout: float | None = 30.0,
        peer_timeout: float = 10.0,
        host_addresses: list[str] | None = None,
        gather_timeout: float = 5.0,
        tls_context: ssl.SSLContext | None = None,
        signaling_ssl: ssl.SSLContext | None = None,
        receive_buffer: int = DEFAULT_RECEIVE_BUFFER,
        accelerate: bool = True,
        joined: Joined | None = None,
    ) -> None:
        if (room is None) == (code is None):
            raise ConfigError("give a code or a room (not both)")
        if room is not None and not valid_room(room):
            raise ConfigError(f"bad room name {room!r}: 1 to 64 characters of A-Z a-z 0-9 . _ -")
        parsed = parse_code(code) if isinstance(code, str) else code
        if peer_timeout <= 0:
            raise ConfigError("peer_timeout must be positive")
        if receive_buffer < 256 * 1024:
            raise ConfigError("receive_buffer must be at least 256 KiB (four 64 KiB messages)")
        if joined is not None and (
            joined.link.room != room if parsed is None
            else joined.code is None or joined.code.password != parsed.password
        ):
            raise ConfigError("joined: another room or code than the one given")
        self._peer = Peer(
            signal_url, room, code=parsed, wait_for_peer=wait_for_peer, ice_servers=_as_urls(ice_servers), relay_only=relay_only, timeout=timeout,
            peer_timeout=peer_timeout, host_addresses=host_addresses, gather_timeout=gather_timeout,
            tls_context=tls_context, signaling_ssl=signaling_ssl, receive_buffer=receive_buffer,
            accelerate=accelerate, joined=joined,
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


class Peer:
    """A connection to one other peer. Made by :func:`connect`."""

    def __init__(self, signal_url: str, room: str | None, **options: Any) -> None:
        self.signal_url = signal_url
        self.relay_only: bool = options["relay_only"]
        self._conn = Connection(signal_url, room, **options)

    @property
    def room(self) -> str:
        """The room on the signaling server (with a code: ``code-`` and its nameplate)."""
        return self._conn.room

    @property
    def code(self) -> str | None:
        """The code, with its nameplate once picked; ``None`` in room mode."""
        return str(self._conn.code) if self._conn.code is not None else None

    @property
    def on_code(self) -> Callable[[str], None] | None:
        """Called with a new code as soon as its nameplate is picked (to show it to the person)."""
        return self._conn.on_code

    @on_code.setter
    def on_code(self, callback: Callable[[str], None] | None) -> None:
        self._conn.on_code = callback

    @property
    def verifier(self) -> str | None:
        """With a code, once connected: a short string both people may compare by voice."""
        pake = self._conn.session.pake if self._conn.session else None
        return pake.verifier() if pake is not None and pake.ready else None

    @property
    def on_progress(self) -> Callable[[str], None] | None:
        """Called with a line of progress in words (the CLI prints them)."""
        return self._conn.on_progress

    @on_progress.setter
    def on_progress(self, callback: Callable[[str], None] | None) -> None:
        self._conn.on_progress = callback

    @property
    def role(self) -> Role | None:
        """Offerer (it was in the room first) or answerer, once the other peer is there."""
        return self._conn.role

    @property
    def peer_id(self) -> str | None:
        return self._conn.link.peer_id

    @property
    def remote_peer_id(self) -> str | None:
        return self._conn.remote_peer_id

    @property
    def connected(self) -> bool:
        established = self._conn.established
        return (
            established.done() and not established.cancelled() and established.exception() is None
            and not self._conn.closed.done()
        )

    async def channel(
        self, label: str, *, ordered: bool = True, max_retransmits: int | None = None,
        max_packet_lifetime: int | None = None,
    ) -> Channel:
        """The channel named ``label``, which both sides ask for with the same arguments.

        With an icepeer peer it is pre-agreed (RFC 8832 section 4): each side
        opens it on a stream derived from the label, and may send at once,
        with no DCEP round trip. With another peer (a browser, stock WebRTC)
        the offering peer opens it in-band and the answering peer waits for
        it, checking that it matches what it asked for.
        """
        check_reliability(max_retransmits, max_packet_lifetime)
        parameters = ChannelParameters(
            label=label, ordered=ordered, max_retransmits=max_retransmits, max_packet_lifetime=max_packet_lifetime
        )
        if self._conn.preagreed:
            stack = self._require_connected()
            stream = preagreed_stream(label)
            taken = stack.channels.get(stream)
            if taken is not None:
                raise ConfigError(f"channel {label!r} is open already" if taken.label == label else
                                  f"channels {label!r} and {taken.label!r} would share a stream: rename one")
            channel = stack.open_channel(parameters, stream=stream)
            self._conn.mark("channel_open")
            return channel
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
        self, label: str, *, ordered: bool = True, max_retransmits: int | None = None,
        max_packet_lifetime: int | None = None,
    ) -> Channel:
        """Open a new channel in-band (RFC 8832) and return it at once.

        Messages may be sent right away: they follow the DATA_CHANNEL_OPEN,
        ordered and reliable until the peer's acknowledgement (section 6), so
        opening costs no round trip. ``await channel.wait_open()`` waits for
        that acknowledgement.
        """
        check_reliability(max_retransmits, max_packet_lifetime)
        stack = self._require_connected()
        channel = stack.open_channel(ChannelParameters(
            label=label, ordered=ordered, max_retransmits=max_retransmits, max_packet_lifetime=max_packet_lifetime
        ))
        self._conn.mark("channel_open")
        return channel

    async def accept_channel(self) -> Channel:
        """The next channel the peer opened that nobody claimed yet."""
        return await self._claim(lambda c: True)

    def report(self) -> ConnectionReport:
        """What this connection did so far."""
        conn = self._conn
        report = ConnectionReport(room=self.room, role=self.role.value if self.role else None)
        if conn.monitor.agent is not None:
            report.add_agent(conn.monitor.agent.stats)
        path = conn.selected_path()
        if path is not None:
            report.local, report.remote = path
        report.remote_candidates = dict(conn.session.remote_types) if conn.session else {}
        report.timings_ms = {k: round((v - conn.t0) * 1000, 1) for k, v in conn.marks.items()}
        report.ice_restarts = conn.monitor.policy.restarts
        negotiation = conn.session.negotiation if conn.session else None
        if negotiation is not None and negotiation.remote is not None:
            report.accelerated = {"snap": negotiation.snap is not None, "sped": negotiation.sped,
                                  "preagreed": negotiation.preagreed}
        return report

    async def events(self) -> AsyncIterator[PeerEvent]:
        """Path changes and, last, :class:`Closed`."""
        while True:
            event = await self._conn.events.get()
            yield event
            if isinstance(event, Closed):
                return

    async def wait_closed(self) -> Closed:
        """Wait until the connection is over; how it ended."""
        return await asyncio.shield(self._conn.closed)

    async def drain(self, timeout: float | None = 10.0) -> bool:
        """Wait until the peer acknowledged everything sent; False if it cannot happen."""
        conn = self._conn
        try:
            async with asyncio.timeout(timeout):
                while True:
                    if conn.stack is None:
                        return False
                    # Acknowledged data counts even if the peer closed meanwhile:
                    # its last SACK arrives before its close.
                    if conn.stack.idle():
                        return True
                    if conn.closed.done():
                        return False
                    await asyncio.sleep(0.01)
        except TimeoutError:
            return False

    async def close(self) -> None:
        """Close on purpose: the peer sees a graceful end."""
        conn = self._conn
        if conn.closing:
            return
        conn.closing = True
        if self.connected and conn.link.alive and self.remote_peer_id:
            conn.link.send({"type": "bye"})
            await conn.link.flush(1.0)
        await conn.teardown()
        conn.finish(Closed(graceful=True, reason="closed"))

    async def _start(self) -> None:
        await self._conn.start()

    async def _claim(self, match: Callable[[Channel], bool]) -> Channel:
        self._require_connected()
        while (channel := self._conn.channels.take(match)) is None:
            await self._until_closed(self._conn.channels.arrival())
        return channel

    async def _until_closed(self, awaitable: Coroutine[Any, Any, Any]) -> Any:
        task = asyncio.ensure_future(awaitable)
        closed = asyncio.ensure_future(self.wait_closed())
        try:
            await asyncio.wait({task, closed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            closed.cancel()
        if task.done():
            return task.result()
        task.cancel()
        raise PeerLost(f"connection closed: {self._conn.closed.result().reason}")

    def _require_connected(self) -> Stack:
        conn = self._conn
        if conn.closed.done():
            raise PeerLost(f"connection closed: {conn.closed.result().reason}")
        if conn.stack is None or conn.stack.sctp is None:
            raise ConnectFailed("not connected yet")
        return conn.stack

