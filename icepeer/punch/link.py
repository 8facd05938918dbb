"""A punched connection for asyncio: :class:`PunchLink`, opened by :func:`punch_connect`.

::

    async with punch_connect("ws://127.0.0.1:8765", "room", stun=["stun:127.0.0.1:3478"],
                             timeout=30) as link:
        await link.send("hello")            # acknowledged, in order
        print(await link.recv())
        await link.send_datagram(b"x")      # unreliable
        await link.drain()                  # True once the peer acknowledged everything
        graceful, reason = await link.lost  # the peer left (graceful) or the path died
        print(link.report().to_dict())

Everything that decides lives in the state machine (:mod:`.session`); the
glue around it has parts: :mod:`.startup` joins the room and binds the
socket, :mod:`.pump` moves datagrams between the session and the socket,
:mod:`.rendezvous` moves offers between it and signaling, :mod:`.inbox` holds
what arrived until it is read, and this module turns the session's events
and the caller's calls into each other (futures, queues, exceptions).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import AsyncIterator, Generator, Iterable
from typing import Any, NoReturn, Self

from icecommon.urls import IceServerUrl
from signaling.client import SignalingClient

from ..errors import ChannelClosed, ConnectFailed, PeerLost
from .candidates import Candidate
from .config import PunchConfig, State
from .events import Closed, Connected, DatagramReceived, Event, Failed, Gathered, MessageReceived
from .inbox import Inbox
from .pump import Endpoint, Pump
from .rendezvous import Progress, Rendezvous
from .report import PunchReport
from .session import PunchSession
from .startup import start

__all__ = ["PunchLink", "punch_connect"]

logger = logging.getLogger(__name__)

Address = tuple[str, int]


class PunchLink:
    """A punched connection to one peer. Made by :func:`punch_connect`."""

    def __init__(
        self,
        session: PunchSession,
        transport: asyncio.DatagramTransport,
        endpoint: Endpoint,
        client: SignalingClient,
        *,
        room: str,
        progress: Progress | None = None,
    ) -> None:
        self._session = session
        self._loop = asyncio.get_running_loop()
        self._connected: asyncio.Future[None] = self._loop.create_future()
        self._inbox = Inbox()
        #: Resolves with ``(graceful, reason)`` when the peer leaves or the path dies,
        #: once the messages that arrived before that were read (or a second later).
        self.lost = self._inbox.lost
        self._wakeup: asyncio.Future[None] = self._loop.create_future()
        self._closing = False
        self._closed_locally = False
        self.room = room
        self._pump = Pump(session, transport, endpoint, self._on_events)
        self._signaling = Rendezvous(client, session, room=room, connected=self._connected,
                                     step=self._pump.step, progress=progress)

    # -- public API ---------------------------------------------------------

    @property
    def peer_id(self) -> str | None:
        """The other peer's id on the signaling server, once it is known."""
        return self._signaling.peer_id

    @property
    def local(self) -> Candidate:
        """Our end of the path, as the peer sees it (host, srflx or prflx)."""
        if self._session.local is None:
            raise ChannelClosed("not connected")
        return self._session.local

    @property
    def remote(self) -> Candidate:
        """The peer's end of the path (host, srflx or prflx)."""
        if self._session.remote is None:
            raise ChannelClosed("not connected")
        return self._session.remote

    @property
    def elapsed(self) -> float | None:
        """Seconds from :func:`punch_connect` to the connection."""
        return self._session.report().elapsed

    @property
    def local_address(self) -> Address:
        """The socket's own address."""
        return self._pump.local_address

    @property
    def session(self) -> PunchSession:
        """The state machine (read its state; do not drive it)."""
        return self._session

    @property
    def closed(self) -> bool:
        return self._session.state in (State.CLOSED, State.FAILED)

    async def send(self, data: str | bytes) -> None:
        """Send an acknowledged message; waits while too much is unacknowledged.

        Raises :class:`PeerLost` if the peer is gone, :class:`ChannelClosed`
        after :meth:`close`, :class:`MessageTooLarge` over ``max_message_size``.
        """
        while not self._session.can_send and not self.closed:
            await self._changed()
        self._check_open()
        self._session.send_message(data, self._loop.time())
        self._pump.step()

    async def recv(self) -> str | bytes:
        """The next acknowledged message, in order: ``str`` if sent as text.

        Raises :class:`PeerLost` (or :class:`ChannelClosed` after :meth:`close`)
        once the connection is over and nothing is left to read.
        """
        item = await self._inbox.next_message()
        if item is None:
            self._raise_closed()
        return item

    async def recv_datagram(self) -> str | bytes:
        """The next unreliable datagram; raises like :meth:`recv` once closed."""
        item = await self._inbox.next_datagram()
        if item is None:
            self._raise_closed()
        return item

    async def send_datagram(self, data: str | bytes) -> None:
        """Send one unreliable datagram (at most ``max_packet_size`` - 32 bytes)."""
        await self._pump.writable.wait()
        self._check_open()
        self._session.send_datagram(data, self._loop.time())
        self._pump.step()

    async def drain(self) -> bool:
        """Wait until the peer acknowledged every message; False if it never will."""
        while not self._session.all_delivered:
            if self.closed:
                return False
            await self._changed()
        return True

    def report(self) -> PunchReport:
        """Path, timings (seconds from :func:`punch_connect`), RTT and packet counts."""
        report = self._session.report()
        if self._inbox.dropped_datagrams:
            report.ignored["datagram-queue-full"] = self._inbox.dropped_datagrams
        return report

    async def close(self, reason: str = "closed") -> None:
        """Say goodbye to the peer, close the socket and leave the room (idempotent)."""
        if not self._closing:
            self._start_closing()
            self._session.close(self._loop.time(), reason)
            self._pump.step()
        await self._shutdown()

    async def abort(self, *, leave: bool = True) -> None:
        """Close the socket without a goodbye, as a crash would.

        With ``leave=False`` the signaling connection stays open until
        :meth:`close`, as when only the network under the path fails: the peer
        then notices by silence alone (``dead_timeout``).
        """
        if not self._closing:
            self._start_closing()
            self._pump.abort()
            self._session.close(self._loop.time(), "aborted")
            self._pump.step()
        if leave:
            await self._shutdown()

    def __aiter__(self) -> AsyncIterator[str | bytes]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[str | bytes]:
        while True:
            try:
                yield await self.recv()
            except (PeerLost, ChannelClosed):
                return

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- the session's events -----------------------------------------------

    def _on_events(self, events: list[Event]) -> None:
        """Act on the session's events; then our offer may be due, and waiters wake up."""
        for event in events:
            if isinstance(event, MessageReceived):
                self._inbox.message(event.data)
            elif isinstance(event, DatagramReceived):
                self._inbox.datagram(event.data)
            elif isinstance(event, Gathered):
                for error in event.errors:
                    logger.warning("%s", error)
            elif isinstance(event, Connected):
                if not self._connected.done():
                    self._connected.set_result(None)
            elif isinstance(event, Failed):
                if not self._connected.done():
                    self._connected.set_exception(
                        ConnectFailed(self._signaling.explain(event.reason)))
                self._inbox.end()
            elif isinstance(event, Closed):
                self._inbox.closed(event.graceful, event.reason)
        self._signaling.maybe_send_offer()
        if not self._wakeup.done():
            self._wakeup.set_result(None)
        self._wakeup = self._loop.create_future()

    async def _changed(self) -> None:
        await asyncio.shield(self._wakeup)

    def _check_open(self) -> None:
        if self.closed or self._closing:
            self._raise_closed()

    def _raise_closed(self) -> NoReturn:
        reason = self._session.close_reason or "closed"
        if self._closed_locally:
            raise ChannelClosed(f"the connection is closed ({reason})")
        raise PeerLost(reason)

    # -- lifecycle ----------------------------------------------------------

    async def _wait_connected(self) -> None:
        self._signaling.start()
        self._pump.step()
        await self._connected

    def _start_closing(self) -> None:
        self._closing = self._closed_locally = self._signaling.leaving = True

    async def _shutdown(self) -> None:
        self._pump.close()
        await self._signaling.stop()
        if not self._connected.done():
            self._connected.set_exception(ChannelClosed("closed before connecting"))
            self._connected.exception()
        self._inbox.settle(self._session.close_reason or "closed")


async def _open(
    signal_url: str,
    room: str,
    *,
    stun: Iterable[str | IceServerUrl],
    timeout: float | None,
    bind: str,
    port: int,
    config: PunchConfig | None,
    progress: Progress | None,
    ssl_context: ssl.SSLContext | None,
) -> PunchLink:
    started = await start(signal_url, room, stun=stun, timeout=timeout, bind=bind, port=port,
                          config=config, ssl_context=ssl_context)
    say = progress or (lambda text: None)
    link: PunchLink | None = None
    try:
        link = PunchLink(started.session, started.transport, started.endpoint, started.client,
                         room=room, progress=progress)
        if link.peer_id is None:
            say(f"joined room {room}, waiting for the peer")
        else:
            say(f"joined room {room}, the peer is there: punching")
        for error in started.errors:
            logger.warning("%s", error)
        deadline = started.deadline
        backstop = None if deadline is None else deadline - asyncio.get_running_loop().time() + 1.0
        try:
            async with asyncio.timeout(backstop):
                await link._wait_connected()
        except TimeoutError:
            raise ConnectFailed(f"no connection within {timeout:g} s") from None
        return link
    except BaseException:
        if link is not None:
            await link.abort()
        else:
            await started.abandon()
        raise


class punch_connect:
    """Join ``room`` on the signaling server and punch a UDP path to the other peer.

    ``await punch_connect(...)`` returns a :class:`PunchLink`;
    ``async with punch_connect(...) as link`` also closes it. Options:

    - ``stun``: STUN server URLs (``stun:host[:port]``) to learn our public
      address from; TURN URLs are accepted and ignored; the signaling
      server's ``ice_servers`` are added;
    - ``timeout``: seconds for everything (joining, waiting for the peer,
      punching), None for no limit;
    - ``bind``/``port``: the local UDP socket (IPv4; ``0.0.0.0`` offers
      every interface);
    - ``config``: the puncher's timers and limits (:class:`PunchConfig`);
    - ``progress``: called with words for a person ("joined room x, ...").

    Raises :class:`SignalingFailed`, :class:`ConnectFailed` or :class:`ConfigError`.
    """

    def __init__(
        self,
        signal_url: str,
        room: str,
        *,
        stun: Iterable[str | IceServerUrl] = (),
        timeout: float | None = 30.0,
        bind: str = "0.0.0.0",
        port: int = 0,
        config: PunchConfig | None = None,
        progress: Progress | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._args = (signal_url, room)
        self._kwargs: dict[str, Any] = {
            "stun": list(stun), "timeout": timeout, "bind": bind, "port": port,
            "config": config, "progress": progress, "ssl_context": ssl_context}
        self._link: PunchLink | None = None

    def __await__(self) -> Generator[Any, None, PunchLink]:
        return _open(*self._args, **self._kwargs).__await__()

    async def __aenter__(self) -> PunchLink:
        self._link = await self
        return self._link

    async def __aexit__(self, *exc: object) -> None:
        if self._link is not None:
            await self._link.close()
