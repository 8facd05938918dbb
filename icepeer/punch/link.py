"""The asyncio glue: a UDP socket, the signaling client, and a :class:`PunchSession`.

::

    async with punch_connect("ws://127.0.0.1:8765", "room", stun=["stun:127.0.0.1:3478"],
                             timeout=30) as link:
        await link.send("hello")            # acknowledged, in order
        print(await link.recv())
        await link.send_datagram(b"x")      # unreliable
        await link.drain()                  # True once the peer acknowledged everything
        graceful, reason = await link.lost  # the peer left (graceful) or the path died
        print(link.report().to_dict())

Everything that decides lives in the state machine; this module moves
datagrams between it and the socket, offers between it and signaling, and
turns its events into futures, queues and exceptions.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import ssl
from collections.abc import AsyncIterator, Callable, Generator, Iterable
from typing import Any, NoReturn, Self

from icecommon.urls import BadUrl, IceServerUrl, parse_ice_servers
from signaling.client import ServerRefused, SignalingClient, SignalingUnavailable
from signaling.protocol import Error, PeerJoined, PeerLeft, Relayed

from ..errors import ChannelClosed, ConfigError, ConnectFailed, PeerLost, SignalingFailed
from .candidates import BadOffer, Candidate, Offer
from .events import Closed, Connected, DatagramReceived, Failed, Gathered, MessageReceived
from .gather import host_addresses, resolve_stun, stun_urls
from .report import PunchReport
from .session import PunchConfig, PunchSession, State

__all__ = ["PunchLink", "punch_connect"]

logger = logging.getLogger(__name__)

Address = tuple[str, int]
Progress = Callable[[str], None]

#: After the end, ``lost`` waits this long for earlier messages to be read.
LOST_READ_GRACE = 1.0

#: At most this many unread datagrams are kept; more are dropped (it is UDP).
DATAGRAM_QUEUE = 4096


class _End:
    """Put in a queue when nothing more will come."""


_END = _End()


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.link: PunchLink | None = None
        self.writable = asyncio.Event()
        self.writable.set()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if self.link is not None:
            self.link._datagram(data, (str(addr[0]), int(addr[1])))

    def error_received(self, exc: Exception) -> None:
        # ICMP errors (port unreachable while the peer's socket is not there
        # yet, or any more): expected while punching, never fatal.
        logger.debug("socket error (ignored): %s", exc)

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()


class PunchLink:
    """A punched connection to one peer. Made by :func:`punch_connect`."""

    def __init__(
        self,
        session: PunchSession,
        transport: asyncio.DatagramTransport,
        protocol: _Protocol,
        client: SignalingClient,
        *,
        room: str,
        progress: Progress | None = None,
    ) -> None:
        self._session = session
        self._transport = transport
        self._protocol = protocol
        self._client = client
        self._loop = asyncio.get_running_loop()
        self.room = room
        self.peer_id: str | None = client.peers[0] if client.peers else None
        self._progress = progress or (lambda text: None)
        self._offer_sent = False
        self._not_puncher: str | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._connected: asyncio.Future[None] = self._loop.create_future()
        #: Resolves with ``(graceful, reason)`` when the peer leaves or the path dies,
        #: once the messages that arrived before that were read (or a second later).
        self.lost: asyncio.Future[tuple[bool, str]] = self._loop.create_future()
        self._messages: asyncio.Queue[str | bytes | _End] = asyncio.Queue()
        self._datagrams: asyncio.Queue[str | bytes | _End] = asyncio.Queue()
        self._dropped_datagrams = 0
        self._wakeup: asyncio.Future[None] = self._loop.create_future()
        self._closing = False
        self._closed_locally = False
        self._left = False
        self._ended = False
        self._lost_result: tuple[bool, str] | None = None
        self._signaling_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Future[None]] = set()
        protocol.link = self

    # -- public API ---------------------------------------------------------

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
        host, port = self._transport.get_extra_info("sockname")[:2]
        return str(host), int(port)

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
        self._pump()

    async def recv(self) -> str | bytes:
        """The next acknowledged message, in order: ``str`` if sent as text.

        Raises :class:`PeerLost` (or :class:`ChannelClosed` after :meth:`close`)
        once the connection is over and nothing is left to read.
        """
        item = await self._messages.get()
        if isinstance(item, _End):
            self._messages.put_nowait(item)
            self._raise_closed()
        if self._lost_result is not None and self._messages.qsize() <= 1:
            self._resolve_lost()
        return item

    async def recv_datagram(self) -> str | bytes:
        """The next unreliable datagram; raises like :meth:`recv` once closed."""
        item = await self._datagrams.get()
        if isinstance(item, _End):
            self._datagrams.put_nowait(item)
            self._raise_closed()
        return item

    async def send_datagram(self, data: str | bytes) -> None:
        """Send one unreliable datagram (at most ``max_packet_size`` - 32 bytes)."""
        await self._protocol.writable.wait()
        self._check_open()
        self._session.send_datagram(data, self._loop.time())
        self._pump()

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
        if self._dropped_datagrams:
            report.ignored["datagram-queue-full"] = self._dropped_datagrams
        return report

    async def close(self, reason: str = "closed") -> None:
        """Say goodbye to the peer, close the socket and leave the room (idempotent)."""
        if not self._closing:
            self._closing = True
            self._closed_locally = True
            self._session.close(self._loop.time(), reason)
            self._pump()
        await self._shutdown()

    async def abort(self, *, leave: bool = True) -> None:
        """Close the socket without a goodbye, as a crash would.

        With ``leave=False`` the signaling connection stays open until
        :meth:`close`, as when only the network under the path fails: the peer
        then notices by silence alone (``dead_timeout``).
        """
        if not self._closing:
            self._closing = True
            self._closed_locally = True
            self._transport.abort()
            self._session.close(self._loop.time(), "aborted")
            self._pump()
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

    # -- the pump -----------------------------------------------------------

    def _datagram(self, data: bytes, addr: Address) -> None:
        self._session.datagram_received(data, addr, self._loop.time())
        self._pump()

    def _on_timer(self) -> None:
        self._timer = None
        self._session.handle_timer(self._loop.time())
        self._pump()

    def _pump(self) -> None:
        """Send what the session wants sent, act on its events, re-arm the timer."""
        if not self._transport.is_closing():
            for data, addr in self._session.datagrams_to_send():
                self._transport.sendto(data, addr)
        else:
            self._session.datagrams_to_send()
        for event in self._session.events_received():
            if isinstance(event, MessageReceived):
                self._messages.put_nowait(event.data)
            elif isinstance(event, DatagramReceived):
                if self._datagrams.qsize() < DATAGRAM_QUEUE:
                    self._datagrams.put_nowait(event.data)
                else:
                    self._dropped_datagrams += 1
            elif isinstance(event, Gathered):
                for error in event.errors:
                    logger.warning("%s", error)
            elif isinstance(event, Connected):
                if not self._connected.done():
                    self._connected.set_result(None)
            elif isinstance(event, Failed):
                if not self._connected.done():
                    self._connected.set_exception(ConnectFailed(self._failure(event.reason)))
                self._end()
            elif isinstance(event, Closed):
                self._end()
                self._lost_result = (event.graceful, event.reason)
                if self._messages.qsize() <= 1:
                    self._resolve_lost()
                else:
                    # Messages that came before the end are read first (chat() prints
                    # them before it stops at ``lost``); nobody reading: resolve anyway.
                    self._loop.call_later(LOST_READ_GRACE, self._resolve_lost)
        self._maybe_send_offer()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadline = self._session.next_deadline()
        if deadline is not None:
            self._timer = self._loop.call_at(deadline, self._on_timer)
        if not self._wakeup.done():
            self._wakeup.set_result(None)
        self._wakeup = self._loop.create_future()

    async def _changed(self) -> None:
        await asyncio.shield(self._wakeup)

    def _resolve_lost(self) -> None:
        if not self.lost.done() and self._lost_result is not None:
            self.lost.set_result(self._lost_result)

    def _end(self) -> None:
        if not self._ended:
            self._ended = True
            self._messages.put_nowait(_END)
            self._datagrams.put_nowait(_END)

    def _check_open(self) -> None:
        if self.closed or self._closing:
            self._raise_closed()

    def _raise_closed(self) -> NoReturn:
        reason = self._session.close_reason or "closed"
        if self._closed_locally:
            raise ChannelClosed(f"the connection is closed ({reason})")
        raise PeerLost(reason)

    def _failure(self, reason: str) -> str:
        if self.peer_id is None:
            return f"nobody joined room {self.room!r} in time"
        if self._not_puncher:
            return f"{reason}: the peer sent {self._not_puncher}, not a punch offer " \
                "(is it running 'icepeer connect' instead of 'icepeer punch'?)"
        return reason

    # -- signaling ----------------------------------------------------------

    def _maybe_send_offer(self) -> None:
        if self._offer_sent or self.peer_id is None or not self._session.gathered or self._closing:
            return
        if self._session.state not in (State.READY, State.PUNCHING):
            return
        self._offer_sent = True
        offer = self._session.offer
        peer = self.peer_id

        async def send() -> None:
            try:
                await self._client.signal(peer, offer.to_json())
                self._session.mark("offer_sent", self._loop.time())
                logger.info("sent %d candidates to peer %s", len(offer.candidates), peer[:8])
            except SignalingUnavailable as exc:
                self._signaling_failed(f"signaling failed while sending our candidates: {exc}")

        task = asyncio.ensure_future(send())
        self._tasks.add(task)  # the loop keeps only weak references to tasks
        task.add_done_callback(self._tasks.discard)

    def _signaling_failed(self, text: str) -> None:
        if not self._connected.done():
            self._connected.set_exception(SignalingFailed(text))
        else:
            logger.info("%s (the punched path does not need it any more)", text)

    async def _listen(self) -> None:
        """Signaling events: the peer arriving, its offer, its departure."""
        while True:
            try:
                event = await self._client.recv()
            except SignalingUnavailable as exc:
                if not self._closing:
                    self._signaling_failed(f"lost the signaling server: {exc}")
                return
            now = self._loop.time()
            if isinstance(event, PeerJoined):
                if self.peer_id is None:
                    self.peer_id = event.peer_id
                    self._session.mark("peer_joined", now)
                    self._progress("peer joined, punching")
            elif isinstance(event, Relayed):
                self._relayed(event, now)
            elif isinstance(event, PeerLeft):
                if event.peer_id == self.peer_id:
                    logger.info("signaling: the peer left the room")
                    self._session.peer_left(now)
            elif isinstance(event, Error):
                logger.warning("signaling server: %s (%s)", event.message, event.code)
            self._pump()

    def _relayed(self, event: Relayed, now: float) -> None:
        if self.peer_id is None:
            self.peer_id = event.sender
            self._session.mark("peer_joined", now)
        if event.sender != self.peer_id:
            logger.warning("ignoring a message from a third peer %s", event.sender[:8])
            return
        if not Offer.is_offer(event.data):
            kind = event.data.get("type") if isinstance(event.data, dict) else None
            self._not_puncher = repr(kind) if kind else "something else"
            logger.warning("the peer sent %s, not a punch offer: ignored", self._not_puncher)
            return
        try:
            offer = Offer.from_json(event.data)
        except BadOffer as exc:
            if not self._connected.done():
                self._connected.set_exception(ConnectFailed(f"the peer sent a bad offer: {exc}"))
            return
        logger.info("the peer offers %s", ", ".join(map(str, offer.candidates)) or "no candidates")
        self._session.set_remote_offer(offer, now)

    # -- lifecycle ----------------------------------------------------------

    async def _wait_connected(self) -> None:
        self._signaling_task = asyncio.ensure_future(self._listen())
        self._pump()
        await self._connected

    async def _shutdown(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._transport.is_closing():
            self._transport.close()
        if self._signaling_task is not None:
            self._signaling_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._signaling_task
            self._signaling_task = None
        if not self._left:
            self._left = True
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2.0):
                    await self._client.leave()
        if not self.lost.done():
            self.lost.set_result((True, self._session.close_reason or "closed"))
        if not self._connected.done():
            self._connected.set_exception(ChannelClosed("closed before connecting"))
            self._connected.exception()
        self._end()


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
    loop = asyncio.get_running_loop()
    started = loop.time()
    deadline = None if timeout is None else started + timeout
    say = progress or (lambda text: None)
    urls = stun_urls(stun)
    try:
        bind_ip = ipaddress.ip_address(bind)
    except ValueError:
        raise ConfigError(f"--bind needs an IP address, got {bind!r}") from None
    if bind_ip.version != 4:
        raise ConfigError("the puncher is IPv4 only: bind to an IPv4 address")
    try:
        client = await SignalingClient.connect(
            signal_url, room, timeout=10.0 if timeout is None else min(10.0, timeout),
            ssl_context=ssl_context)
    except ServerRefused as exc:
        raise SignalingFailed(str(exc), code=exc.code) from exc
    except SignalingUnavailable as exc:
        raise SignalingFailed(str(exc)) from exc
    link: PunchLink | None = None
    try:
        joined = loop.time()
        try:
            urls += [u for u in stun_urls(parse_ice_servers(client.ice_servers)) if u not in urls]
        except (BadUrl, ConfigError) as exc:
            logger.warning("ignoring the signaling server's ICE servers: %s", exc)
        servers, errors = await resolve_stun(urls, timeout=(config or PunchConfig()).stun_timeout)
        try:
            transport, protocol = await loop.create_datagram_endpoint(
                _Protocol, local_addr=(str(bind_ip), port))
        except OSError as exc:
            raise ConfigError(f"cannot bind UDP {bind}:{port}: {exc}") from exc
        sockname = transport.get_extra_info("sockname")
        hosts = host_addresses((str(sockname[0]), int(sockname[1])))
        session = PunchSession(host_candidates=hosts, stun_servers=servers, now=loop.time(),
                               config=config, connect_deadline=deadline, started=started)
        session.mark("joined", joined)
        link = PunchLink(session, transport, protocol, client, room=room, progress=progress)
        if link.peer_id is None:
            say(f"joined room {room}, waiting for the peer")
        else:
            say(f"joined room {room}, the peer is there: punching")
        for error in errors:
            logger.warning("%s", error)
        backstop = None if deadline is None else deadline - loop.time() + 1.0
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
            with contextlib.suppress(Exception):
                await client.leave()
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
