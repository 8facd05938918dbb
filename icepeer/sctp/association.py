"""An SCTP association over DTLS for WebRTC data channels (RFC 8261, RFC 9260). No I/O.

Packets in (:meth:`Association.receive`), packets out
(:meth:`Association.packets`), the time always an argument, and
:meth:`Association.next_deadline` for when to call
:meth:`Association.handle_timer`. What happens to the user's messages goes
to a :class:`Listener`. The sending and receiving halves live in
:mod:`.sender` and :mod:`.receiver`; this module holds the handshake, the
dispatch of chunks, stream reconfiguration (RFC 6525) and the timers.

The handshake is WebRTC's (RFC 8841 section 9.3): both sides send INIT at
once, each with a verification tag and initial TSN fixed for the
association, so that colliding INITs (RFC 9260 section 5.2.1) end in the
same association, as with libwebrtc and aiortc. The state cookie is
authenticated with HMAC-SHA256 (section 5.1.3).

With SNAP (draft-hancke-tsvwg-snap-00) there is no handshake: each side's
INIT went to the other in the SDP (:meth:`Association.local_init`), and
:meth:`Association.start_negotiated` takes the peer's and is ESTABLISHED at
once, two round trips sooner. DTLS, under the association, already proved
that the peer is there and answers (the draft's section 7).
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import logging
import os
import struct
from typing import Protocol

from . import chunks as c
from .chunks import Chunk, ForwardTsnChunk, InitChunk, SackChunk, SctpMalformed
from .congestion import RTO_INITIAL
from .receiver import MessageTooLarge, Receiver, WindowIgnored
from .reconfig import Reconfig
from .sender import Sender

__all__ = ["Association", "Listener", "State", "MAX_PACKET", "DEFAULT_RECEIVE_BUFFER", "new_tag"]

logger = logging.getLogger(__name__)

#: The largest SCTP packet: it fits the IPv6 minimum MTU of 1280 with UDP and DTLS around it.
MAX_PACKET = 1189
DEFAULT_RECEIVE_BUFFER = 4 * 1024 * 1024
MAX_STREAMS = 65535
MAX_INIT_RETRANSMITS = 8
MAX_ASSOCIATION_RETRANSMITS = 10
#: Error cause codes (RFC 9260 section 3.3.10).
CAUSE_PROTOCOL_VIOLATION = 13
CAUSE_USER_ABORT = 12


class State(enum.Enum):
    NEW = "new"  # not started: an INIT from the peer is answered all the same
    COOKIE_WAIT = "cookie-wait"
    COOKIE_ECHOED = "cookie-echoed"
    ESTABLISHED = "established"
    SHUTDOWN = "shutdown"
    CLOSED = "closed"


class Listener(Protocol):
    def established(self) -> None: ...

    def message(self, stream: int, ppid: int, data: bytes) -> None: ...

    def incoming_reset(self, streams: list[int]) -> None:
        """The peer reset these outgoing streams of its (our incoming ones)."""

    def outgoing_reset(self, streams: list[int]) -> None:
        """Our reset of these outgoing streams is done."""

    def closed(self, reason: str, *, by_peer: bool) -> None: ...


class Association:
    def __init__(
        self,
        listener: Listener,
        *,
        port: int = 5000,
        remote_port: int = 5000,
        receive_buffer: int = DEFAULT_RECEIVE_BUFFER,
        max_message: int = 65536,
        local_tag: int | None = None,
        initial_tsn: int | None = None,
    ) -> None:
        self.listener = listener
        self.port, self.remote_port = port, remote_port
        self.receive_buffer = receive_buffer
        self.max_message = max_message
        self.state = State.NEW
        self.local_tag = local_tag or new_tag()
        self.remote_tag = 0
        self.initial_tsn = int.from_bytes(os.urandom(4), "big") if initial_tsn is None else initial_tsn
        self.sender = Sender(self.initial_tsn, max_packet=MAX_PACKET, header=c.HEADER_LENGTH)
        self.receiver: Receiver | None = None
        self.forward_tsn = False
        self.reconfig = False
        self._key = os.urandom(32)
        self._out: list[bytes] = []
        self._t1: tuple[float, Chunk, int] | None = None  # deadline, chunk to resend, tries
        self.reconfig_state = Reconfig(self.initial_tsn, send=lambda body: self._send_control(Chunk(c.RECONFIG, 0, body)))

    # -- the API ----------------------------------------------------------------------

    def start(self, now: float) -> None:
        """Send INIT (both sides do, RFC 8841 section 9.3)."""
        if self.state is not State.NEW:
            return
        init = self._init().chunk(c.INIT)
        self._send_control(init, tag=0)
        self._t1 = (now + RTO_INITIAL, init, 0)
        self.state = State.COOKIE_WAIT

    def start_negotiated(self, remote_init: InitChunk) -> None:
        """SNAP: the peer's INIT came in its SDP, ours in our SDP: ESTABLISHED now, with no handshake."""
        if self.state is not State.NEW:
            return
        self._peer_parameters(remote_init)
        self._establish()

    @staticmethod
    def local_init(local_tag: int, initial_tsn: int, receive_buffer: int = DEFAULT_RECEIVE_BUFFER) -> InitChunk:
        """The INIT an association with these values sends (and puts in the SDP, with SNAP)."""
        params = [
            (c.PARAM_FORWARD_TSN_SUPPORTED, b""),
            (c.PARAM_SUPPORTED_EXTENSIONS, bytes([c.RECONFIG, c.FORWARD_TSN])),
        ]
        return InitChunk(local_tag, receive_buffer, MAX_STREAMS, MAX_STREAMS, initial_tsn, params)

    def send(self, stream: int, ppid: int, data: bytes, now: float, *, ordered: bool = True,
             max_retransmits: int | None = None, lifetime: float | None = None) -> None:
        """Queue a message; :meth:`flush` sends what the windows allow."""
        expires = now + lifetime if lifetime is not None else None
        self.sender.queue(stream, ppid, data, ordered=ordered, max_retransmits=max_retransmits, expires=expires)

    def reset_streams(self, streams: list[int]) -> None:
        """Reset our outgoing ``streams`` once what was queued on them is sent (RFC 6525 5.1.2)."""
        self.reconfig_state.reset(streams)

    def consumed(self, nbytes: int) -> None:
        """The application read a message of ``nbytes`` bytes."""
        if self.receiver is not None:
            self.receiver.consumed(nbytes)

    def buffered(self, stream: int) -> int:
        return self.sender.buffered.get(stream, 0)

    def abort(self, reason: str = "") -> None:
        """Send ABORT (RFC 9260 section 9.1) and close."""
        if self.state is State.CLOSED:
            return
        if self.remote_tag:
            self._abort_chunk(CAUSE_USER_ABORT, reason)
        self._close(reason or "closed", by_peer=False)

    def _abort_chunk(self, cause_code: int, reason: str) -> None:
        detail = reason.encode()[:200]
        cause = struct.pack("!HH", cause_code, 4 + len(detail)) + detail
        self._send_control(Chunk(c.ABORT, 0, cause + b"\x00" * (-len(cause) % 4)))

    @property
    def closed(self) -> bool:
        return self.state is State.CLOSED

    @property
    def established(self) -> bool:
        return self.state is State.ESTABLISHED

    @property
    def idle(self) -> bool:
        """Nothing waits to be sent or acknowledged."""
        return self.sender.idle and not self.reconfig_state.busy

    def packets(self) -> list[bytes]:
        """The packets to send now (serialized, with their checksums)."""
        out, self._out = self._out, []
        return out

    # -- receiving ----------------------------------------------------------------------

    def receive(self, raw: bytes, now: float) -> None:
        """One SCTP packet from DTLS. Malformed ones are dropped (and logged), never fatal."""
        if self.state is State.CLOSED:
            return
        try:
            packet = c.parse_packet(raw)
        except SctpMalformed as exc:
            logger.info("dropped an SCTP packet: %s", exc)
            return
        if packet.destination_port != self.port or packet.source_port != self.remote_port:
            logger.info("dropped an SCTP packet for ports %d->%d", packet.source_port, packet.destination_port)
            return
        if not self._tag_ok(packet):
            return
        try:
            # Control chunks first: a COOKIE-ECHO may come with DATA bundled after it.
            for chunk in packet.chunks:
                self._chunk(chunk, now)
                if self.closed:
                    return
            if packet.data:
                self._data(packet.data, now)
        except (WindowIgnored, MessageTooLarge) as exc:
            self._violation(str(exc))
        except SctpMalformed as exc:
            logger.info("dropped a malformed SCTP chunk: %s", exc)

    def _tag_ok(self, packet: c.Packet) -> bool:
        # RFC 9260 section 8.5: the verification tag must be ours, except for
        # INIT (0) and an ABORT or SHUTDOWN COMPLETE with the T bit (the peer's).
        if packet.order and packet.order[0] == c.INIT:
            return packet.verification_tag == 0 and len(packet.order) == 1
        if packet.verification_tag == self.local_tag:
            return True
        reflected = packet.chunks and packet.chunks[0].type in (c.ABORT, c.SHUTDOWN_COMPLETE) \
            and packet.chunks[0].flags & 1 and packet.verification_tag == self.remote_tag
        if not reflected:
            logger.debug("dropped an SCTP packet with a foreign verification tag")
        return bool(reflected)

    def _data(self, data: list[c.DataChunk], now: float) -> None:
        receiver = self.receiver
        if receiver is None or self.state is not State.ESTABLISHED:
            return
        receiver.packet(now)
        for chunk in data:
            receiver.data(chunk, now, MAX_PACKET)
        if receiver.sack_due(now, burst_end=False):
            # Out of order, a duplicate, the I bit, or many packets: a SACK now,
            # not at the end of the read burst (RFC 9260 section 6.7).
            self._send_control_raw(receiver.sack())
        self.reconfig_state.data_arrived(receiver.cumulative, self._peer_reset)

    def _chunk(self, chunk: Chunk, now: float) -> None:
        kind = chunk.type
        if kind == c.SACK:
            if self.state is State.ESTABLISHED or self.state is State.SHUTDOWN:
                self.sender.on_sack(SackChunk.parse(chunk.body), now)
        elif kind == c.FORWARD_TSN:
            if self.receiver is not None:
                self.receiver.forward_tsn(ForwardTsnChunk.parse(chunk.body))
        elif kind == c.INIT:
            self._on_init(InitChunk.parse(chunk.body))
        elif kind == c.INIT_ACK:
            self._on_init_ack(InitChunk.parse(chunk.body), now)
        elif kind == c.COOKIE_ECHO:
            self._on_cookie_echo(chunk.body)
        elif kind == c.COOKIE_ACK:
            if self.state is State.COOKIE_ECHOED:
                self._t1 = None
                self._establish()
        elif kind == c.HEARTBEAT:
            self._send_control(Chunk(c.HEARTBEAT_ACK, 0, chunk.body))
        elif kind == c.RECONFIG:
            if self.state is State.ESTABLISHED and self.receiver is not None:
                self.reconfig_state.receive(chunk.body, self.receiver.cumulative, done=self._outgoing_reset,
                                            peer_reset=self._peer_reset)
        elif kind == c.ABORT:
            self._close(f"the peer aborted the association{_causes(chunk.body)}", by_peer=True)
        elif kind == c.SHUTDOWN:
            self._send_control(Chunk(c.SHUTDOWN_ACK))
            self.state = State.SHUTDOWN
        elif kind == c.SHUTDOWN_ACK:
            self._send_control(Chunk(c.SHUTDOWN_COMPLETE))
            self._close("the peer shut the association down", by_peer=True)
        elif kind == c.SHUTDOWN_COMPLETE:
            self._close("the peer shut the association down", by_peer=True)
        elif kind == c.ERROR:
            logger.info("SCTP error from the peer%s", _causes(chunk.body))
            if self.state in (State.COOKIE_WAIT, State.COOKIE_ECHOED):
                self._close(f"the peer refused the association{_causes(chunk.body)}", by_peer=True)
        elif kind in (c.HEARTBEAT_ACK, c.PAD):
            pass
        elif kind >> 6 in (1, 3):
            # Unknown chunk, "report" bits set (RFC 9260 section 3.2).
            cause = struct.pack("!HH", 6, 4 + 4 + len(chunk.body)) + bytes(chunk)
            self._send_control(Chunk(c.ERROR, 0, cause + b"\x00" * (-len(cause) % 4)))

    # -- the handshake (RFC 9260 section 5) ------------------------------------------------

    def _init(self) -> InitChunk:
        """Our INIT (or, with a cookie added, INIT-ACK): the same tag and TSN every time."""
        return self.local_init(self.local_tag, self.initial_tsn, self.receive_buffer)

    def _peer_parameters(self, init: InitChunk) -> None:
        self.remote_tag = init.initiate_tag
        self.sender.peer_rwnd = init.a_rwnd
        extensions = b""
        for kind, value in init.params:
            if kind == c.PARAM_FORWARD_TSN_SUPPORTED:
                self.forward_tsn = True
            elif kind == c.PARAM_SUPPORTED_EXTENSIONS:
                extensions = value
        self.forward_tsn = self.forward_tsn or c.FORWARD_TSN in extensions
        self.reconfig = c.RECONFIG in extensions
        if self.receiver is None:
            self.receiver = Receiver(init.initial_tsn, limit=self.receive_buffer, max_message=self.max_message,
                                     deliver=self.listener.message)
            self.reconfig_state.peer_initial_tsn(init.initial_tsn)

    def _on_init(self, init: InitChunk) -> None:
        if self.state is State.ESTABLISHED and init.initiate_tag != self.remote_tag:
            logger.info("ignored an INIT that would restart the association")
            return
        self._peer_parameters(init)
        ack = self._init()
        ack.params.append((c.PARAM_STATE_COOKIE, self._cookie(init.initiate_tag)))
        self._send_control(ack.chunk(c.INIT_ACK), tag=init.initiate_tag)

    def _on_init_ack(self, ack: InitChunk, now: float) -> None:
        if self.state is not State.COOKIE_WAIT:
            return
        cookie = next((v for k, v in ack.params if k == c.PARAM_STATE_COOKIE), None)
        if cookie is None:
            raise SctpMalformed("INIT-ACK without a state cookie")
        self._peer_parameters(ack)
        echo = Chunk(c.COOKIE_ECHO, 0, cookie)
        self._send_control(echo)
        self._t1 = (now + RTO_INITIAL, echo, 0)
        self.state = State.COOKIE_ECHOED

    def _cookie(self, peer_tag: int) -> bytes:
        value = struct.pack("!LL", self.local_tag, peer_tag)
        return value + hmac.new(self._key, value, hashlib.sha256).digest()[:16]

    def _on_cookie_echo(self, cookie: bytes) -> None:
        value, mac = cookie[:8], cookie[8:]
        if len(cookie) != 24 or not hmac.compare_digest(mac, hmac.new(self._key, value, hashlib.sha256).digest()[:16]):
            logger.info("dropped a COOKIE-ECHO with a bad cookie")
            return
        self._send_control(Chunk(c.COOKIE_ACK))
        if self.state is not State.ESTABLISHED:
            self._t1 = None
            self._establish()

    def _establish(self) -> None:
        self.state = State.ESTABLISHED
        self.listener.established()

    # -- stream reconfiguration (RFC 6525, in .reconfig) ----------------------------------

    def _peer_reset(self, streams: list[int]) -> None:
        assert self.receiver is not None
        for stream in streams:
            self.receiver.reset_stream(stream)
        self.listener.incoming_reset(streams)

    def _outgoing_reset(self, streams: list[int]) -> None:
        self.sender.reset_ssn(streams)
        self.listener.outgoing_reset(streams)

    # -- timers and sending ------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        deadlines = []
        if self._t1 is not None:
            deadlines.append(self._t1[0])
        if self.sender.deadline is not None:
            deadlines.append(self.sender.deadline)
        if self.receiver is not None and self.receiver.sack_deadline is not None:
            deadlines.append(self.receiver.sack_deadline)
        if self.reconfig_state.deadline is not None:
            deadlines.append(self.reconfig_state.deadline)
        return min(deadlines) if deadlines else None

    def handle_timer(self, now: float) -> None:
        if self._t1 is not None and now >= self._t1[0]:
            _, chunk, tries = self._t1
            if tries >= MAX_INIT_RETRANSMITS:
                self._close("the peer never answered the SCTP handshake", by_peer=False)
                return
            self._send_control(chunk, tag=0 if chunk.type == c.INIT else self.remote_tag)
            self._t1 = (now + RTO_INITIAL * 2 ** (tries + 1), chunk, tries + 1)
        sender = self.sender
        if sender.deadline is not None and now >= sender.deadline:
            sender.on_timer(now)
            if sender.error_count > MAX_ASSOCIATION_RETRANSMITS:
                self._close("the peer stopped acknowledging data", by_peer=False)
                return
        self.flush(now, burst_end=True)

    def flush(self, now: float, *, burst_end: bool = True) -> None:
        """Send what is due: a SACK, RE-CONFIG, FORWARD-TSN, retransmissions, new DATA."""
        if self.state is not State.ESTABLISHED and self.state is not State.SHUTDOWN:
            return
        receiver = self.receiver
        sack = receiver.sack() if receiver is not None and receiver.sack_due(now, burst_end=burst_end) else b""
        if self.reconfig_state.busy:
            self.reconfig_state.send_due(now, self.sender.last_assigned_tsn, self.sender.rto)
        if self.sender.forward_tsn_due and self.forward_tsn:
            forward = self.sender.forward_tsn()
            if forward is not None:
                self._send_control(forward.chunk())
        header = (self.port, self.remote_port, self.remote_tag)
        out = self._out
        for chunks in self.sender.transmit(now, sack):
            out.append(c.serialize_packet(*header, chunks))

    def _send_control(self, chunk: Chunk, *, tag: int | None = None) -> None:
        verification = self.remote_tag if tag is None else tag
        self._out.append(c.serialize_packet(self.port, self.remote_port, verification, bytes(chunk)))

    def _send_control_raw(self, chunk: bytes) -> None:
        self._out.append(c.serialize_packet(self.port, self.remote_port, self.remote_tag, chunk))

    def _violation(self, reason: str) -> None:
        logger.warning("aborting the SCTP association: %s", reason)
        self._abort_chunk(CAUSE_PROTOCOL_VIOLATION, reason)
        self._close(reason, by_peer=False)

    def _close(self, reason: str, *, by_peer: bool) -> None:
        if self.state is State.CLOSED:
            return
        self.state = State.CLOSED
        self._t1 = None
        self.sender.t3_deadline = self.sender.probe_deadline = None
        self.reconfig_state.request = None
        if self.receiver is not None:
            self.receiver.sack_deadline = None
        self.listener.closed(reason, by_peer=by_peer)


def new_tag() -> int:
    """A verification tag: random, never 0 (RFC 9260 section 5.3.1)."""
    while True:
        value = int.from_bytes(os.urandom(4), "big")
        if value:
            return value


def _causes(body: bytes) -> str:
    """The error causes of an ABORT or ERROR, in words (RFC 9260 section 3.3.10)."""
    names = {1: "invalid stream", 3: "stale cookie", 6: "unrecognized chunk", 12: "user abort",
             13: "protocol violation"}
    out = []
    try:
        for kind, value in c.decode_params(body):
            text = names.get(kind, f"cause {kind}")
            detail = value.decode("utf-8", "replace").strip("\x00 ") if kind in (12, 13) else ""
            out.append(f"{text}: {detail}" if detail else text)
    except SctpMalformed:
        pass
    return f" ({'; '.join(out)})" if out else ""

