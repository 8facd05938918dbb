"""The signaling conversation of a punched connection: the peer, the two offers, its departure.

The signaling server relays each peer's :class:`~.candidates.Offer` to the
other (docs/puncher.md, "The offer, inside signaling data"), as it relays SDP
for ICE; nothing else the puncher does needs it. Once the path is connected,
losing signaling is no failure, and a ``peer-left`` only makes the session
probe the path (see :mod:`.connected`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from signaling.client import SignalingClient, SignalingUnavailable
from signaling.protocol import Error, PeerJoined, PeerLeft, Relayed

from ..errors import ConnectFailed, SignalingFailed
from .candidates import BadOffer, Offer
from .config import State
from .session import PunchSession

__all__ = ["Rendezvous"]

logger = logging.getLogger(__name__)

Progress = Callable[[str], None]


class Rendezvous:
    """Talks to the peer over ``client`` for ``session``.

    A failure before the connection goes into ``connected``; ``step`` is
    called after every signaling event that reached the session.
    """

    def __init__(self, client: SignalingClient, session: PunchSession, *, room: str,
                 connected: asyncio.Future[None], step: Callable[[], None],
                 progress: Progress | None = None) -> None:
        self._client = client
        self._session = session
        self._connected = connected
        self._step = step
        self._progress = progress or (lambda text: None)
        self._loop = asyncio.get_running_loop()
        self.room = room
        #: The other peer, once it joined (or was already in the room).
        self.peer_id: str | None = client.peers[0] if client.peers else None
        #: True once we are closing: no offer goes out, and losing signaling is expected.
        self.leaving = False
        self._offer_sent = False
        self._not_puncher: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Future[None]] = set()
        self._left = False

    def start(self) -> None:
        """Listen for the peer's events."""
        self._task = asyncio.ensure_future(self._listen())

    async def stop(self) -> None:
        """Stop listening and leave the room (idempotent; gives up on leaving after 2 s)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        if not self._left:
            self._left = True
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2.0):
                    await self._client.leave()

    def explain(self, reason: str) -> str:
        """Why connecting failed, with what signaling knows (nobody came, a non-puncher came)."""
        if self.peer_id is None:
            return f"nobody joined room {self.room!r} in time"
        if self._not_puncher:
            return f"{reason}: the peer sent {self._not_puncher}, not a punch offer " \
                "(is it running 'icepeer connect' instead of 'icepeer punch'?)"
        return reason

    def maybe_send_offer(self) -> None:
        """Send our offer once we are gathered and the peer is there (once)."""
        if self._offer_sent or self.peer_id is None or not self._session.gathered or self.leaving:
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
                self._failed(f"signaling failed while sending our candidates: {exc}")

        task = asyncio.ensure_future(send())
        self._tasks.add(task)  # the loop keeps only weak references to tasks
        task.add_done_callback(self._tasks.discard)

    def _failed(self, text: str) -> None:
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
                if not self.leaving:
                    self._failed(f"lost the signaling server: {exc}")
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
            self._step()

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
