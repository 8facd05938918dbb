"""The socket under one local candidate: what may come in, and early copies of checks.

Every datagram is sorted by its first byte (RFC 7983 section 7):

- 0-3 is STUN. It is parsed here; a datagram that does not parse is counted
  and dropped (aioice 0.13 lets ``struct.error`` escape its parser on some
  malformed attributes, such as a PRIORITY of the wrong length, and hands
  anything else that fails to parse to the data path, from any address).
  Responses go to their transaction, requests to the ICE agent, which
  answers only those authenticated with its password.
- 20-63 is DTLS. It reaches the DTLS layer only from the remote address of
  one of our candidate pairs: anyone else's datagram is counted and dropped.
- Anything else is counted and dropped.

It also sends early copies of a connectivity check (see
:meth:`CandidateSocket.request`), and reports the answers to our checks,
which are authenticated with the peer's password: the only thing that
refreshes consent (RFC 7675).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

from aioice import stun
from aioice.ice import StunProtocol

from icecommon.urls import IceServerUrl

__all__ = ["CandidateSocket", "SocketOwner", "EARLY_RESENDS"]

logger = logging.getLogger(__name__)

#: Extra early copies of a connectivity check, in seconds after the first.
EARLY_RESENDS = (0.15, 0.3)


class SocketOwner(Protocol):
    """What a :class:`CandidateSocket` needs from its ICE agent."""

    checks_settled: bool
    connected: bool

    def count(self, what: str) -> None: ...

    def is_pair_address(self, socket: CandidateSocket, addr: tuple[str, int]) -> bool: ...

    def request_received(self, message: stun.Message, addr: tuple[str, int], protocol: StunProtocol) -> None: ...

    def peer_data_received(self, data: bytes, socket: CandidateSocket) -> None: ...

    def check_answered(self, socket: CandidateSocket, rtt: float, *, consent: bool) -> None: ...

    def stun_received(self, message: stun.Message, addr: tuple[str, int], socket: CandidateSocket) -> None: ...

    def decorate_response(self, message: stun.Message) -> None: ...


class CandidateSocket(StunProtocol):
    """aioice's socket protocol, filtering what reaches DTLS and counting what it drops."""

    #: The TURN server behind a relay candidate's socket.
    turn_url: IceServerUrl | None = None

    def __init__(self, owner: Any) -> None:
        super().__init__(owner)
        self.owner: SocketOwner = owner
        #: The connectivity check in progress towards each remote address.
        self.inflight: dict[tuple[str, int], stun.Message] = {}

    def datagram_received(self, data: bytes | str, addr: tuple[Any, ...]) -> None:
        addr = (addr[0], addr[1])
        owner = self.owner
        if not data or not isinstance(data, bytes):
            owner.count("foreign")
            return
        first = data[0]
        if first < 4:
            self._stun_received(data, addr)
        elif 19 < first < 64 and owner.is_pair_address(self, addr):
            owner.peer_data_received(data, self)
        else:
            owner.count("foreign")

    def _stun_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            message = stun.parse_message(data)
        except Exception as exc:  # noqa: BLE001 - aioice raises struct.error, ValueError, KeyError...
            self.owner.count("malformed")
            logger.info("dropped a malformed STUN datagram from %s: %r", addr, exc)
            return
        self.owner.stun_received(message, addr, self)
        if message.message_class in (stun.Class.RESPONSE, stun.Class.ERROR):
            transaction = self.transactions.get(message.transaction_id)
            if transaction is not None:
                transaction.response_received(message, addr)
        elif message.message_class == stun.Class.REQUEST:
            self.owner.request_received(message, addr, self)

    async def request(
        self,
        request: stun.Message,
        addr: tuple[str, int],
        integrity_key: bytes | None = None,
        retransmissions: int | None = None,
    ) -> tuple[stun.Message, tuple[str, int]]:
        """A STUN transaction; for a connectivity check, with early copies and counted answers."""
        check = "USERNAME" in request.attributes and integrity_key is not None
        if not check:
            return await super().request(request, addr, integrity_key, retransmissions)
        consent = self.owner.connected
        self.owner.count("consent_sent" if consent else "checks_sent")
        self.inflight[addr] = request
        if not consent:
            self._early_resends(request, addr)
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            response = await super().request(request, addr, integrity_key, retransmissions)
        finally:
            if self.inflight.get(addr) is request:
                del self.inflight[addr]
        # aioice's transaction only accepts an answer signed with integrity_key.
        self.owner.check_answered(self, loop.time() - started, consent=consent)
        return response

    def send_stun(self, message: stun.Message, addr: tuple[str, int]) -> None:
        if message.message_class == stun.Class.RESPONSE:
            self.owner.decorate_response(message)  # SPED: our answers carry DTLS too
        super().send_stun(message, addr)

    def resend_pending(self, addr: tuple[str, int]) -> None:
        """Send the check in progress towards ``addr`` again (a triggered check, RFC 8445 7.3.1.4)."""
        pending = self.inflight.get(addr)
        if pending is not None and not self.owner.checks_settled:
            self.send_stun(pending, addr)

    def _early_resends(self, request: stun.Message, addr: tuple[str, int]) -> None:
        """Send a connectivity check again at 150 and 300 ms while it is unanswered.

        aioice's first retransmission comes after 500 ms (RFC 8489's default
        RTO); a first check dropped by the peer's NAT, or lost, then costs half
        a second. Extra copies of the same request (same transaction id) are
        retransmissions as far as the peer is concerned, and the answer to any
        of them completes the transaction.
        """
        loop = asyncio.get_running_loop()
        for delay in EARLY_RESENDS:
            loop.call_later(delay, self._resend_if_pending, request, addr)

    def _resend_if_pending(self, request: stun.Message, addr: tuple[str, int]) -> None:
        if self.inflight.get(addr) is request and not self.owner.checks_settled:
            self.send_stun(request, addr)
