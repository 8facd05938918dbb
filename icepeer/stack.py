"""The data path: DTLS over the ICE path, SCTP over DTLS, channels over SCTP (RFC 8261, RFC 8831).

This is the thin asyncio glue around three parts that do no I/O:
:class:`~icepeer.dtls.DtlsEndpoint`, :class:`~icepeer.sctp.association.Association`
and :class:`~icepeer.sctp.datachannels.DataChannels`. A datagram from the
ICE agent goes through DTLS and SCTP in one synchronous call chain (no
queue, no task, no await between the socket and the channel); what they
have to send is written to the selected pair's socket at once.

Sending is coalesced per event-loop pass: :meth:`Stack.send` only queues,
and one flush per pass bundles what was queued into packets. Receiving is
acknowledged per read burst the same way: the SCTP receiver SACKs at the
end of the pass (or sooner when a packet is out of order, RFC 9260 section
6.7), not for every packet. An ICE restart moves the stack to the new
agent (:meth:`Stack.switch`); DTLS and SCTP do not notice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from . import sdp
from .agent import Agent
from .channel import MAX_MESSAGE_SIZE, Channel
from .dtls import Certificate, DtlsEndpoint, DtlsState
from .errors import ConnectFailed, DtlsFailed, FingerprintMismatch
from .pake import CONFIRM_STREAM
from .sctp.association import DEFAULT_RECEIVE_BUFFER, Association, new_tag
from .sctp.chunks import InitChunk
from .sctp.datachannels import ChannelParameters, DataChannels

__all__ = ["Stack"]

#: SCTP packets kept when they come before the association exists (a window's worth at most).
MAX_EARLY_RECORDS = 64

logger = logging.getLogger(__name__)


def _ignore(*args: object) -> None:
    pass


class Stack:
    """DTLS, SCTP and the channels of one connection."""

    def __init__(self, *, receive_buffer: int = DEFAULT_RECEIVE_BUFFER) -> None:
        self.certificate = Certificate()
        self.receive_buffer = receive_buffer
        # Fixed now, so that SNAP can put our INIT in the SDP before the association exists.
        self._local_tag = new_tag()
        self._initial_tsn = new_tag()
        self.dtls: DtlsEndpoint | None = None
        self.sctp: DataChannels | None = None
        self.channels: dict[int, Channel] = {}
        self.confirm_channel: Channel | None = None
        self.max_message_size = MAX_MESSAGE_SIZE
        self._agent: Agent | None = None
        self._loop = asyncio.get_running_loop()
        self._timer: asyncio.TimerHandle | None = None
        self._flush_pending = False
        self._dtls_done: asyncio.Future[None] = self._loop.create_future()
        self._sctp_up: asyncio.Future[None] = self._loop.create_future()
        self._waiting_writable: set[Channel] = set()
        self._early_records: list[bytes] = []
        self._closed = False
        # Set by the owner.
        self.on_channel: Callable[[Channel], None] = _ignore
        self.on_closed: Callable[[str, bool], None] = _ignore
        self.on_channel_closed: Callable[[Channel], None] = _ignore

    def fingerprints(self) -> tuple[sdp.Fingerprint, ...]:
        return (sdp.Fingerprint("sha-256", self.certificate.fingerprint("sha-256")),)

    def sctp_init(self) -> bytes:
        """Our SCTP INIT chunk, for SNAP's ``a=sctp-init``."""
        return Association.local_init(self._local_tag, self._initial_tsn, self.receive_buffer).serialize()

    # -- start-up -----------------------------------------------------------------------

    async def start_dtls(self, agent: Agent, *, dtls_role: str, remote: sdp.Description) -> None:
        """The DTLS handshake over ``agent``'s selected pair; :class:`DtlsFailed` with its cause."""
        self.begin_dtls(agent, dtls_role=dtls_role, remote=remote)
        await self.wait_dtls()

    def begin_dtls(self, agent: Agent, *, dtls_role: str, remote: sdp.Description, false_start: bool = False) -> None:
        """Start the DTLS handshake over ``agent``: on its selected pair, or (SPED) in its checks.

        With ``false_start``, a DTLS client may send once its Finished is out (RFC 7918):
        :meth:`wait_dtls` returns then, half a round trip before the handshake ends.
        """
        self.dtls = DtlsEndpoint(self.certificate, server=dtls_role == "server",
                                 remote_fingerprints=[(f.algorithm, f.value) for f in remote.fingerprints],
                                 false_start=false_start)
        self.switch(agent)
        self.dtls.start(self._loop.time())
        self._send_dtls()
        self._rearm()

    async def wait_dtls(self) -> None:
        """Until the handshake :meth:`begin_dtls` started is over; :class:`DtlsFailed` with its cause."""
        assert self.dtls is not None
        await asyncio.shield(self._dtls_done)
        if not self.dtls.can_send:
            failure = self.dtls.failure or f"DTLS is {self.dtls.state.value}"
            raise (FingerprintMismatch if self.dtls.tampering else DtlsFailed)(failure)

    async def start_sctp(self, remote: sdp.Description, *, confirm: bool = False,
                         snap: InitChunk | None = None) -> None:
        """The SCTP association, with the peer's port and max-message-size (RFC 8841).

        With ``confirm``, the pre-agreed channel of the code's key
        confirmation exists before anything can arrive on it. With ``snap``
        (the peer's INIT, both SDPs having carried one), the association is
        up at once, without its handshake.
        """
        assert self.dtls is not None
        self.max_message_size = min(remote.max_message_size or MAX_MESSAGE_SIZE, MAX_MESSAGE_SIZE)
        self.sctp = DataChannels(self, dtls_client=not self.dtls.server, remote_port=remote.sctp_port,
                                 receive_buffer=self.receive_buffer, max_message=MAX_MESSAGE_SIZE,
                                 local_tag=self._local_tag, initial_tsn=self._initial_tsn)
        if confirm:
            self.confirm_channel = self.open_channel(ChannelParameters("icepeer-confirm"), stream=CONFIRM_STREAM)
        association = self.sctp.association
        if snap is not None:
            association.start_negotiated(snap)
        else:
            association.start(self._loop.time())
        early, self._early_records = self._early_records, []
        for record in early:
            association.receive(record, self._loop.time())
        self._flush()
        await asyncio.shield(self._sctp_up)
        if not self.sctp.association.established:
            raise ConnectFailed("the SCTP association did not start")

    def switch(self, agent: Agent) -> None:
        """Carry DTLS over ``agent`` from now on (first connection, or after an ICE restart)."""
        if self._agent is not None and self._agent is not agent:
            self._agent.on_data = None
        self._agent = agent
        agent.on_data = self._datagram

    # -- datagrams in ---------------------------------------------------------------------

    def _datagram(self, data: bytes) -> None:
        dtls = self.dtls
        if dtls is None:
            return
        now = self._loop.time()
        was, could_send = dtls.state, dtls.can_send
        records = dtls.receive(data, now)
        if dtls.state is not was or dtls.can_send is not could_send:
            self._dtls_changed()
        if was is not DtlsState.CONNECTED:
            # A handshake flight goes out now: SPED embeds it in the answer to the
            # check that brought the peer's, which aioice sends right after this.
            self._send_dtls()
        sctp = self.sctp
        if sctp is not None:
            association = sctp.association
            for record in records:
                association.receive(record, now)
        elif records and len(self._early_records) < MAX_EARLY_RECORDS:
            # SCTP from a peer that is up before us (its DTLS ended first, or
            # SNAP let it send at once): kept until start_sctp, not lost to a
            # retransmission timer.
            self._early_records += records[:MAX_EARLY_RECORDS - len(self._early_records)]
        self._schedule_flush()

    def _dtls_changed(self) -> None:
        dtls = self.dtls
        assert dtls is not None
        if (dtls.can_send or dtls.state in (DtlsState.FAILED, DtlsState.CLOSED)) and not self._dtls_done.done():
            self._dtls_done.set_result(None)
        if dtls.state is DtlsState.CONNECTED and self._agent is not None:
            # Called on each change, so once CONNECTED; not at a False Start (state
            # HANDSHAKING): SPED keeps offering our last flight until the handshake ends.
            self._agent.dtls_connected()
        if dtls.state is DtlsState.CLOSED and dtls.closed_by_peer:
            self._end("peer closed the connection", graceful=True)
        elif dtls.state is DtlsState.FAILED and self._sctp_up.done():
            self._end(dtls.failure or "DTLS failed", graceful=False)

    # -- sending --------------------------------------------------------------------------

    def send(self, stream: int, data: str | bytes) -> None:
        assert self.sctp is not None
        self.sctp.send(stream, data, self._loop.time())
        self._schedule_flush()

    def _schedule_flush(self) -> None:
        if not self._flush_pending:
            self._flush_pending = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_pending = False
        if self._closed:
            return
        now = self._loop.time()
        sctp, dtls = self.sctp, self.dtls
        if sctp is not None and dtls is not None and dtls.can_send:
            association = sctp.association
            association.flush(now, burst_end=True)
            for packet in association.packets():
                dtls.send(packet)
            if self._waiting_writable:
                self._wake_writers()
        self._send_dtls()
        self._rearm()

    def _send_dtls(self) -> None:
        if self.dtls is None or self._agent is None:
            return
        datagrams = self.dtls.datagrams()
        if datagrams:
            self._agent.send_dtls(datagrams)

    def wait_writable(self, channel: Channel) -> None:
        self._waiting_writable.add(channel)

    def _wake_writers(self) -> None:
        from .channel import LOW_WATER

        for channel in list(self._waiting_writable):
            if self.buffered(channel.id) <= LOW_WATER:
                self._waiting_writable.discard(channel)
                channel._on_writable()

    # -- timers -----------------------------------------------------------------------------

    def _rearm(self) -> None:
        deadlines = []
        if self.dtls is not None and self.dtls.flight_deadline is not None:
            deadlines.append(self.dtls.flight_deadline)
        if self.sctp is not None:
            deadline = self.sctp.association.next_deadline()
            if deadline is not None:
                deadlines.append(deadline)
        deadline = min(deadlines) if deadlines else None
        timer = self._timer
        if timer is not None:
            if deadline is not None and timer.when() == deadline:
                return
            timer.cancel()
            self._timer = None
        if deadline is not None:
            self._timer = self._loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        now = self._loop.time()
        if self.dtls is not None:
            self.dtls.handle_timer(now)
        if self.sctp is not None:
            deadline = self.sctp.association.next_deadline()
            if deadline is not None and deadline <= now:
                self.sctp.association.handle_timer(now)
        self._flush()

    # -- channels (DataChannels' events) ------------------------------------------------------

    def open_channel(self, parameters: ChannelParameters, *, stream: int | None = None) -> Channel:
        assert self.sctp is not None
        sid = self.sctp.open(parameters, self._loop.time(), stream=stream)
        channel = Channel(self, sid, parameters, max_message_size=self.max_message_size,
                          opened=stream is not None, on_closed=self.on_channel_closed)
        self.channels[sid] = channel
        if stream is not None:
            self.sctp.release(sid)
        self._schedule_flush()
        return channel

    def close_channel(self, stream: int) -> None:
        if self.sctp is not None:
            self.sctp.close(stream)
            self._schedule_flush()

    def buffered(self, stream: int) -> int:
        return self.sctp.buffered(stream) if self.sctp is not None else 0

    def consumed(self, size: int) -> None:
        if self.sctp is not None:
            self.sctp.consumed(size)
            receiver = self.sctp.association.receiver
            if receiver is not None and receiver.sack_now:
                self._schedule_flush()  # the window opened: tell the sender

    def opened(self, stream: int, parameters: ChannelParameters, *, by_peer: bool) -> None:
        if by_peer:
            channel = Channel(self, stream, parameters, max_message_size=self.max_message_size, opened=True,
                              on_closed=self.on_channel_closed)
            self.channels[stream] = channel
            self.on_channel(channel)
        elif stream in self.channels:
            self.channels[stream]._on_open()

    def message(self, stream: int, data: str | bytes, size: int) -> None:
        channel = self.channels.get(stream)
        if channel is None:
            assert self.sctp is not None
            self.sctp.consumed(size)
            return
        channel._on_message(data, size)

    def channel_closed(self, stream: int) -> None:
        channel = self.channels.pop(stream, None)
        if channel is not None:
            self._waiting_writable.discard(channel)
            channel.abort()

    def association_up(self) -> None:
        if not self._sctp_up.done():
            self._sctp_up.set_result(None)

    def association_closed(self, reason: str, *, by_peer: bool) -> None:
        if not self._sctp_up.done():
            self._sctp_up.set_result(None)
        # The peer closing on purpose aborts with "user abort" (aiortc, browsers).
        graceful = by_peer and "protocol violation" not in reason
        self._end("peer closed the connection" if graceful else reason, graceful=graceful)

    # -- the end ---------------------------------------------------------------------------------

    def idle(self) -> bool:
        """Nothing waits to be sent or acknowledged."""
        return self.sctp is None or self.sctp.association.idle

    def _end(self, reason: str, *, graceful: bool) -> None:
        if self._closed:
            return
        for channel in list(self.channels.values()):
            channel.abort()
        self.channels.clear()
        self.on_closed(reason, graceful)

    async def stop(self) -> None:
        """Close on purpose: SCTP ABORT and DTLS close_notify, as browsers do."""
        if self._closed:
            return
        self._closed = True
        if self.sctp is not None and self.dtls is not None and self.dtls.can_send:
            self.sctp.association.abort("closed")
            for packet in self.sctp.association.packets():
                self.dtls.send(packet)
        if self.dtls is not None:
            self.dtls.close()
            self._send_dtls()
        for channel in list(self.channels.values()):
            channel.abort()
        self.channels.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._dtls_done.done():
            self._dtls_done.set_result(None)
        if not self._sctp_up.done():
            self._sctp_up.set_result(None)
        if self._agent is not None:
            self._agent.on_data = None
