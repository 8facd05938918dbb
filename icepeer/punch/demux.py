"""Sorting what reaches the socket: our punch packets, STUN messages, and the rest.

A punch packet starts with the magic ``IPUN``, which is never a STUN message
(RFC 8489 section 5: STUN's first two bits are zero; ``I`` is 0x49). Anyone
can send to our socket, so every datagram is checked before it counts: the
``to`` token must be ours and the tag must verify with the session key
(:mod:`.wire`). Whatever fails is dropped with its :class:`~.config.Ignored`
reason, never an exception.
"""

from __future__ import annotations

from aioice import stun as codec

from .binding import looks_like_stun, parse_stun
from .config import Ignored
from .wire import MAGIC, BadTag, MalformedPacket, Packet, peek_token

__all__ = ["classify"]


def classify(data: bytes, *, token: bytes, key: bytes | None) -> Packet | codec.Message | Ignored:
    """An authentic punch packet, a well-formed STUN message, or why ``data`` is ignored.

    ``token`` is ours (what the peer's packets carry); ``key`` is the session
    key, None while we cannot check packets yet (before the peer's offer and
    while gathering).
    """
    if data[:4] == MAGIC:
        if (to := peek_token(data)) is None:
            return Ignored.MALFORMED
        if to != token:
            return Ignored.TOKEN
        if key is None:
            return Ignored.EARLY
        try:
            return Packet.parse(data, key)
        except BadTag:
            return Ignored.INTEGRITY
        except MalformedPacket:
            return Ignored.MALFORMED
    if looks_like_stun(data):
        message = parse_stun(data)
        return Ignored.MALFORMED if message is None else message
    return Ignored.FOREIGN
