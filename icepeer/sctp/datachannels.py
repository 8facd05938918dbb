"""WebRTC data channels over one SCTP association (RFC 8831), opened with DCEP (RFC 8832). No I/O.

- A channel is one SCTP stream in each direction. The DTLS client opens
  channels on even stream ids, the DTLS server on odd ones (RFC 8832
  section 6), so the two sides never pick the same one.
- DATA_CHANNEL_OPEN carries the label, protocol, order and partial
  reliability; the peer answers DATA_CHANNEL_ACK. A user message that
  arrives before the ACK counts as one (section 6). Until then our own
  messages go ordered, so none overtakes the OPEN.
- Messages carry their kind in the PPID (RFC 8831 section 8): string 51,
  binary 53, and 56/57 for empty ones (SCTP cannot carry zero bytes).
- A channel closes by resetting its outgoing stream (RFC 8831 section 6.7,
  RFC 6525); the peer answers by resetting its own, and the stream id is
  free again.
- A pre-agreed channel (``negotiated``, RFC 8832 section 4) has no DCEP:
  both sides open it on the same stream, and may send at once. What the
  peer sends on a pre-agreed stream before we open it waits, unread.
"""

from __future__ import annotations

import enum
import hashlib
import logging
import struct
from dataclasses import dataclass
from typing import Protocol

from .association import Association

__all__ = ["ChannelParameters", "DataChannels", "ChannelEvents", "ChannelState", "DcepMalformed",
           "encode_open", "parse_open", "preagreed_stream", "PREAGREED_STREAMS"]

logger = logging.getLogger(__name__)

PPID_DCEP, PPID_STRING, PPID_BINARY, PPID_STRING_EMPTY, PPID_BINARY_EMPTY = 50, 51, 53, 56, 57
DCEP_ACK, DCEP_OPEN = 0x02, 0x03
# Channel types (RFC 8832 section 5.1).
RELIABLE, PR_REXMIT, PR_TIMED, UNORDERED = 0x00, 0x01, 0x02, 0x80
_OPEN = struct.Struct("!BBHLHH")
#: Streams of channels pre-agreed by label (icepeer with icepeer); 65000 up is icepeer's own.
PREAGREED_STREAMS = range(32768, 65000)


class DcepMalformed(ValueError):
    pass


@dataclass(frozen=True)
class ChannelParameters:
    label: str = ""
    protocol: str = ""
    ordered: bool = True
    max_retransmits: int | None = None
    max_packet_lifetime: int | None = None  # milliseconds
    priority: int = 256


def encode_open(p: ChannelParameters) -> bytes:
    kind, reliability = RELIABLE, 0
    if p.max_retransmits is not None:
        kind, reliability = PR_REXMIT, p.max_retransmits
    elif p.max_packet_lifetime is not None:
        kind, reliability = PR_TIMED, p.max_packet_lifetime
    if not p.ordered:
        kind |= UNORDERED
    label, protocol = p.label.encode(), p.protocol.encode()
    return _OPEN.pack(DCEP_OPEN, kind, p.priority, reliability, len(label), len(protocol)) + label + protocol


def parse_open(data: bytes) -> ChannelParameters:
    if len(data) < _OPEN.size:
        raise DcepMalformed("DATA_CHANNEL_OPEN too short")
    _, kind, priority, reliability, label_length, protocol_length = _OPEN.unpack_from(data)
    if len(data) != _OPEN.size + label_length + protocol_length:
        raise DcepMalformed("DATA_CHANNEL_OPEN lengths do not add up")
    if kind & 0x7F not in (RELIABLE, PR_REXMIT, PR_TIMED):
        raise DcepMalformed(f"unknown channel type {kind:#x}")
    try:
        label = data[_OPEN.size:_OPEN.size + label_length].decode()
        protocol = data[_OPEN.size + label_length:].decode()
    except UnicodeDecodeError:
        raise DcepMalformed("DATA_CHANNEL_OPEN label or protocol is not UTF-8") from None
    return ChannelParameters(
        label=label, protocol=protocol, ordered=not kind & UNORDERED,
        max_retransmits=reliability if kind & 0x7F == PR_REXMIT else None,
        max_packet_lifetime=reliability if kind & 0x7F == PR_TIMED else None, priority=priority,
    )


class ChannelState(enum.Enum):
    OPENING = "opening"  # our OPEN sent, no ACK yet
    OPEN = "open"
    CLOSING = "closing"  # one direction reset
    CLOSED = "closed"


class ChannelEvents(Protocol):
    """What the channels tell the connection."""

    def opened(self, stream: int, parameters: ChannelParameters, *, by_peer: bool) -> None: ...

    def message(self, stream: int, data: str | bytes, size: int) -> None:
        """A message; once read, report ``size`` with :meth:`DataChannels.consumed`."""

    def channel_closed(self, stream: int) -> None: ...

    def association_up(self) -> None: ...

    def association_closed(self, reason: str, *, by_peer: bool) -> None: ...


class _Channel:
    __slots__ = ("parameters", "state", "reset_out", "reset_out_done", "reset_in", "lifetime")

    def __init__(self, parameters: ChannelParameters, state: ChannelState) -> None:
        self.parameters = parameters
        self.state = state
        self.reset_out = False  # we asked to reset our outgoing stream
        self.reset_out_done = False  # the peer confirmed it
        self.reset_in = False  # the peer reset its outgoing stream
        lifetime = parameters.max_packet_lifetime
        self.lifetime = lifetime / 1000 if lifetime is not None else None


def preagreed_stream(label: str) -> int:
    """The stream of the pre-agreed channel ``label`` (icepeer with icepeer): both sides compute it.

    In a range of its own (:data:`PREAGREED_STREAMS`): in-band channels count
    up from 0 and 1, so they never meet it in practice.
    """
    digest = hashlib.sha256(label.encode()).digest()
    return PREAGREED_STREAMS.start + int.from_bytes(digest[:4], "big") % len(PREAGREED_STREAMS)


class DataChannels:
    """The channels of one association; it is also the association's listener."""

    def __init__(self, events: ChannelEvents, *, dtls_client: bool, **association_options: int) -> None:
        self.events = events
        self.association = Association(self, **association_options)
        self.channels: dict[int, _Channel] = {}
        self._next = 0 if dtls_client else 1
        #: Messages on pre-agreed streams we have not opened yet: (ppid, data), unread (so the
        #: SCTP window still counts them: the peer cannot send more than it allows).
        self._unclaimed: dict[int, list[tuple[int, bytes]]] = {}

    # -- the API ------------------------------------------------------------------------

    def open(self, parameters: ChannelParameters, now: float, *, stream: int | None = None) -> int:
        """Open a channel; its stream id. With ``stream``, a pre-agreed one (no DCEP, open at once)."""
        if stream is not None:
            if stream in self.channels:
                raise ValueError(f"stream {stream} is in use")
            self.channels[stream] = _Channel(parameters, ChannelState.OPEN)
            return stream
        stream = self._next
        while stream in self.channels:
            stream += 2
        if stream > 65534:
            raise ValueError("no stream id left for a new channel")
        self._next = stream + 2
        self.channels[stream] = _Channel(parameters, ChannelState.OPENING)
        self.association.send(stream, PPID_DCEP, encode_open(parameters), now)
        return stream

    def release(self, stream: int) -> None:
        """Deliver what arrived on the pre-agreed ``stream`` before we opened it (call after :meth:`open`)."""
        for ppid, data in self._unclaimed.pop(stream, []):
            self.message(stream, ppid, data)

    def send(self, stream: int, data: str | bytes, now: float) -> None:
        channel = self.channels[stream]
        if isinstance(data, str):
            payload, ppid = (data.encode(), PPID_STRING) if data else (b"\x00", PPID_STRING_EMPTY)
        else:
            payload, ppid = (data, PPID_BINARY) if data else (b"\x00", PPID_BINARY_EMPTY)
        p = channel.parameters
        if channel.state is ChannelState.OPENING:
            # Ordered and reliable until the ACK: nothing may overtake the OPEN (RFC 8832 section 6).
            self.association.send(stream, ppid, payload, now)
        else:
            self.association.send(stream, ppid, payload, now, ordered=p.ordered,
                                  max_retransmits=p.max_retransmits, lifetime=channel.lifetime)

    def close(self, stream: int) -> None:
        """Close a channel: reset our outgoing stream (RFC 8831 section 6.7)."""
        channel = self.channels.get(stream)
        if channel is None or channel.reset_out or channel.state is ChannelState.CLOSED:
            return
        channel.reset_out = True
        channel.state = ChannelState.CLOSING
        self.association.reset_streams([stream])

    def consumed(self, size: int) -> None:
        self.association.consumed(size)

    def buffered(self, stream: int) -> int:
        return self.association.buffered(stream)

    # -- the association's listener ------------------------------------------------------

    def established(self) -> None:
        self.events.association_up()

    def message(self, stream: int, ppid: int, data: bytes) -> None:
        channel = self.channels.get(stream)
        if ppid == PPID_DCEP:
            self.association.consumed(len(data))
            self._dcep(stream, channel, data)
            return
        if channel is None and stream in PREAGREED_STREAMS:
            # The peer opened the pre-agreed channel first: keep it for us.
            self._unclaimed.setdefault(stream, []).append((ppid, data))
            return
        if channel is None or channel.state is ChannelState.CLOSED:
            logger.info("dropped a message on stream %d, which has no channel", stream)
            self.association.consumed(len(data))
            return
        if channel.state is ChannelState.OPENING:
            channel.state = ChannelState.OPEN  # an implicit ACK (RFC 8832 section 6)
            self.events.opened(stream, channel.parameters, by_peer=False)
        if ppid == PPID_BINARY:
            self.events.message(stream, data, len(data))
        elif ppid == PPID_STRING:
            try:
                text = data.decode()
            except UnicodeDecodeError:
                logger.info("dropped a string message on stream %d that is not UTF-8", stream)
                self.association.consumed(len(data))
                return
            self.events.message(stream, text, len(data))
        elif ppid == PPID_STRING_EMPTY:
            self.events.message(stream, "", len(data))
        elif ppid == PPID_BINARY_EMPTY:
            self.events.message(stream, b"", len(data))
        else:
            logger.info("dropped a message with PPID %d on stream %d", ppid, stream)
            self.association.consumed(len(data))

    def _dcep(self, stream: int, channel: _Channel | None, data: bytes) -> None:
        kind = data[0] if data else None
        if kind == DCEP_OPEN:
            try:
                parameters = parse_open(data)
            except DcepMalformed as exc:
                logger.info("ignored a DATA_CHANNEL_OPEN on stream %d: %s", stream, exc)
                return
            if channel is not None and channel.state is not ChannelState.CLOSED:
                logger.info("ignored a DATA_CHANNEL_OPEN on stream %d, which is in use", stream)
                return
            if stream % 2 == self._next % 2:
                logger.info("ignored a DATA_CHANNEL_OPEN on stream %d: that parity is ours (RFC 8832 6)", stream)
                return
            self.channels[stream] = _Channel(parameters, ChannelState.OPEN)
            self.association.send(stream, PPID_DCEP, bytes([DCEP_ACK]), 0.0)
            self.events.opened(stream, parameters, by_peer=True)
        elif kind == DCEP_ACK:
            if channel is not None and channel.state is ChannelState.OPENING:
                channel.state = ChannelState.OPEN
                self.events.opened(stream, channel.parameters, by_peer=False)
        else:
            logger.info("ignored a DCEP message of type %r on stream %d", kind, stream)

    def incoming_reset(self, streams: list[int]) -> None:
        for stream in streams:
            channel = self.channels.get(stream)
            if channel is None:
                continue
            channel.reset_in = True
            if not channel.reset_out:
                self.close(stream)  # the peer closed it: close our side too
            self._maybe_closed(stream, channel)

    def outgoing_reset(self, streams: list[int]) -> None:
        for stream in streams:
            channel = self.channels.get(stream)
            if channel is not None:
                channel.reset_out_done = True
                self._maybe_closed(stream, channel)

    def _maybe_closed(self, stream: int, channel: _Channel) -> None:
        if channel.reset_in and channel.reset_out_done:
            channel.state = ChannelState.CLOSED
            del self.channels[stream]
            self.events.channel_closed(stream)

    def closed(self, reason: str, *, by_peer: bool) -> None:
        for stream in list(self.channels):
            del self.channels[stream]
            self.events.channel_closed(stream)
        self.events.association_closed(reason, by_peer=by_peer)
