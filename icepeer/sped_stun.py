"""SPED on aioice's STUN messages: which attributes go out, which come in authenticated.

:class:`icepeer.sped.Sped` decides what to embed and what was acknowledged,
without I/O; this puts its attributes into our Binding requests and
responses, takes them from the peer's once their MESSAGE-INTEGRITY checks
out (a request with our password, a response to one of our requests with
the peer's), and remembers where a check of ours was answered: DTLS can go
there as is, without waiting for the selected pair (the draft's section
3.4.5).
"""

from __future__ import annotations

from typing import Any

from aioice import stun

from .compat.aioice import register_stun_attributes
from .sped import ATTRIBUTE_TYPES, DTLS_IN_STUN, DTLS_IN_STUN_ACK, Sped

__all__ = ["SpedStun", "HANDSHAKE_RECORDS"]

#: DTLS record types of a handshake flight (RFC 6347): change_cipher_spec, alert, handshake.
HANDSHAKE_RECORDS = (20, 21, 22)
#: Our requests carrying a datagram whose answer we await, at most (the answer acknowledges it).
MAX_REQUESTS = 256

register_stun_attributes(ATTRIBUTE_TYPES)


class SpedStun:
    def __init__(self, *, dtls_server: bool) -> None:
        self.state = Sped(dtls_server=dtls_server)
        self._requests: dict[bytes, dict[str, object]] = {}
        #: A socket and remote address where a check of ours was answered.
        self.path: tuple[Any, tuple[str, int]] | None = None
        #: The path was just found: what is pending should go there now (see :meth:`Agent.stun_received`).
        self.opened = False

    def flight(self, datagrams: list[bytes]) -> None:
        """What DTLS sends: its handshake records become the datagrams to embed."""
        if self.state.active:
            handshake = [d for d in datagrams if d and d[0] in HANDSHAKE_RECORDS]
            if handshake:
                self.state.flight(handshake)

    def embed_in_request(self, request: stun.Message) -> None:
        """Before MESSAGE-INTEGRITY is added (aioice adds it when sending)."""
        attributes = self.state.embed()
        request.attributes.update(attributes)
        if DTLS_IN_STUN in attributes and len(self._requests) < MAX_REQUESTS:
            self._requests[request.transaction_id] = dict(attributes)

    def embed_in_response(self, response: stun.Message, local_password: str) -> None:
        """Into a response aioice already signed: sign it again with the attributes in."""
        if "MESSAGE-INTEGRITY" not in response.attributes:
            return
        attributes = self.state.embed()
        if attributes:
            response.attributes.pop("MESSAGE-INTEGRITY")
            response.attributes.pop("FINGERPRINT", None)
            response.attributes.update(attributes)
            response.add_message_integrity(local_password.encode("utf8"))

    def take(self, message: stun.Message, addr: tuple[str, int], sock: Any, *, local_username: str,
             local_password: str, remote_password: str | None) -> bytes | None:
        """The DTLS datagram an authenticated message of the peer carries, if new."""
        attributes = message.attributes
        if DTLS_IN_STUN not in attributes and DTLS_IN_STUN_ACK not in attributes:
            return None
        if message.message_class == stun.Class.REQUEST:
            username = attributes.get("USERNAME")
            if not (isinstance(username, str) and username.startswith(local_username + ":")
                    and message.check_message_integrity(local_password.encode("utf8"))):
                return None
        elif message.message_class == stun.Class.RESPONSE:
            # Any response signed with the peer's password: also the answers to
            # copies of a check whose transaction an earlier answer completed
            # (each may carry a later datagram, such as the server's last flight).
            if remote_password is None or not message.check_message_integrity(remote_password.encode("utf8")):
                return None
            request = self._requests.pop(message.transaction_id, None)
            if request is not None:
                self.state.answered(request)
            if self.path is None:
                self.path = (sock, addr)
                self.opened = True
        else:
            return None
        return self.state.receive(attributes)
