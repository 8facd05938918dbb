"""Joining the signaling server's room for a code: a free nameplate for a new code, a waiting peer for a given one.

The side that makes a code (its nameplate still ``None``) tries nameplates
(:func:`icepeer.code.nameplate_candidates`) until it finds a room nobody is
in, and keeps it: many transfers share one server. The side that was given
a code joins its room and expects the other side to be there already; an
empty room means the code is wrong, already used, or its maker gave up.
A full room means someone else is using that nameplate.
"""

from __future__ import annotations

import logging
import ssl
import time
from dataclasses import dataclass

from .code import Code, nameplate_candidates, room_of
from .errors import ConnectFailed, SignalingFailed
from .signaling_link import SignalingLink

__all__ = ["join", "Joined", "join_early"]

logger = logging.getLogger(__name__)


async def join(url: str, room: str | None, code: Code | None, *, timeout: float | None,
               ssl_context: ssl.SSLContext | None, wait: bool = False) -> tuple[SignalingLink, Code | None]:
    """A joined :class:`SignalingLink`, and the code with its nameplate (code mode).

    With ``wait``, a given code whose room is empty is kept, to wait for the
    other side (both sides were given the code beforehand).
    """
    if code is None:
        assert room is not None
        link = SignalingLink(url, room, timeout=timeout, ssl_context=ssl_context)
        await link.join()
        return link, None
    if code.nameplate is not None:
        link = SignalingLink(url, code.room, timeout=timeout, ssl_context=ssl_context)
        try:
            await link.join()
        except SignalingFailed as exc:
            if exc.code == "room-full":
                raise SignalingFailed(f"code {code.nameplate} is in use by others: ask for a new code",
                                      exc.code) from None
            raise
        if not link.peers and not wait:
            await link.leave()
            raise ConnectFailed(f"nobody is waiting with code {code.nameplate}: check the code "
                                "(it is used once, then it is gone)")
        return link, code
    for nameplate in nameplate_candidates():
        link = SignalingLink(url, room_of(nameplate), timeout=timeout, ssl_context=ssl_context)
        try:
            await link.join()
        except SignalingFailed as exc:
            if exc.code == "room-full":
                continue
            raise
        if not link.peers:
            return link, code.with_nameplate(nameplate)
        logger.debug("nameplate %d is taken: trying another", nameplate)
        await link.leave()
    raise SignalingFailed("no free nameplate on the signaling server (it is very busy): try again")


@dataclass(frozen=True)
class Joined:
    """A room joined before :func:`icepeer.connect` was called, and when (``time.monotonic()``)."""

    link: SignalingLink
    code: Code | None
    started: float
    finished: float


async def join_early(url: str, room: str | None, code: Code | None, *, timeout: float | None,
                     ssl_context: ssl.SSLContext | None = None) -> Joined:
    """:func:`join`, for ``icepeer.connect(..., joined=...)``: the CLI joins while the rest loads."""
    started = time.monotonic()
    link, code = await join(url, room, code, timeout=timeout, ssl_context=ssl_context)
    return Joined(link, code, started, time.monotonic())
