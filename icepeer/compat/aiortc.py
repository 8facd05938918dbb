"""Every private name of aiortc (1.16) that icepeer uses, behind public ones.

- :func:`set_dtls_role`: the DTLS role comes from ``a=setup`` (RFC 8842),
  which aiortc's ORTC-style ``RTCDtlsTransport`` only takes privately.
- :func:`dtls_failure`: why a handshake that aiortc reports as ``failed``
  failed, read from its OpenSSL connection.
- :class:`SctpTransport`: aiortc's SCTP with WebRTC's retransmission timers.
- :func:`sctp_idle`: whether the association has nothing left to send or to
  see acknowledged.

The ICE transport that aiortc's DTLS reads and writes needs ``role``,
``await _recv()`` and ``await _send(data)``: the private interface of
``RTCIceTransport`` that :class:`icepeer.transport.IceTransport` provides.
``PRIVATE_NAMES`` declares each name once; ``tests/unit/test_compat.py``
checks them against the installed aiortc.
"""

from __future__ import annotations

from aiortc import RTCDtlsTransport, RTCIceTransport, RTCSctpTransport
from aiortc.rtcdtlstransport import X509_DIGEST_ALGORITHMS, certificate_digest
from aiortc.rtcsctptransport import SCTP_RTO_MAX

from . import Copied, Private

__all__ = [
    "set_dtls_role",
    "dtls_failure",
    "DtlsFailure",
    "SctpTransport",
    "sctp_idle",
    "PRIVATE_NAMES",
    "COPIED",
]

#: dcsctp's timers (WebRTC's own SCTP): RTO.Initial 500 ms, RTO.Min 400 ms,
#: instead of RFC 9260's 1 s and 3 s, so a lost INIT or DATA costs half a second.
SCTP_RTO_INITIAL = 0.5
SCTP_RTO_MIN = 0.4

PRIVATE_NAMES: tuple[Private, ...] = (
    Private(RTCDtlsTransport, "_set_role", "method", ("self", "role"), why="a=setup decides the role"),
    Private(RTCDtlsTransport, "_ssl", why="why a finished handshake failed"),
    Private(RTCIceTransport, "_recv", why="what RTCDtlsTransport awaits to read"),
    Private(RTCIceTransport, "_send", why="what RTCDtlsTransport awaits to write"),
    Private(RTCSctpTransport, "_rto", why="dcsctp's initial RTO"),
    Private(RTCSctpTransport, "_srtt"),
    Private(RTCSctpTransport, "_rttvar"),
    Private(RTCSctpTransport, "_update_rto", "method", ("self", "R"), why="dcsctp's RTO.Min"),
    Private(RTCSctpTransport, "_outbound_queue", why="drain: nothing left to send"),
    Private(RTCSctpTransport, "_sent_queue", why="drain: nothing left unacknowledged"),
    Private(RTCSctpTransport, "_data_channel_queue", why="drain: no message waiting for a stream"),
)

COPIED: tuple[Copied, ...] = ()


def set_dtls_role(dtls: RTCDtlsTransport, role: str) -> None:
    """Make ``dtls`` the DTLS ``"server"`` or ``"client"`` (RFC 8842 section 5)."""
    if role not in ("server", "client"):
        raise ValueError(f"DTLS role must be server or client, not {role!r}")
    dtls._set_role(role)


class DtlsFailure:
    """Why a DTLS handshake failed: ``tampering`` when the certificate is not the announced one."""

    def __init__(self, reason: str, *, tampering: bool = False) -> None:
        self.reason = reason
        self.tampering = tampering


def dtls_failure(dtls: RTCDtlsTransport, fingerprints: list[tuple[str, str]]) -> DtlsFailure:
    """The real cause of ``dtls.state == "failed"``, given the peer's ``(algorithm, value)`` fingerprints.

    aiortc logs the cause at debug level only; after the handshake it can
    be a certificate that does not match the fingerprints (someone in the
    signaling path), fingerprints in hash algorithms aiortc cannot check, or
    no SRTP protection profile negotiated (aiortc requires one even for data
    channels, as browsers always offer them).
    """
    if not dtls.encrypted:
        return DtlsFailure("the DTLS handshake failed: the peer rejected it or stopped answering")
    ssl = dtls._ssl
    certificate = ssl.get_peer_certificate(as_cryptography=True) if ssl is not None else None
    if certificate is None:
        return DtlsFailure("the peer sent no DTLS certificate")
    checkable = [(a.lower(), v) for a, v in fingerprints if a.lower() in X509_DIGEST_ALGORITHMS]
    if not checkable:
        offered = ", ".join(sorted({a for a, _ in fingerprints})) or "none"
        supported = ", ".join(X509_DIGEST_ALGORITHMS)
        return DtlsFailure(f"the peer's a=fingerprint uses {offered}; only {supported} can be checked")
    if any(v.upper() != certificate_digest(certificate, a) for a, v in checkable):
        return DtlsFailure(
            "the peer's DTLS certificate does not match the fingerprint in its SDP: "
            "someone may be tampering with the signaling path",
            tampering=True,
        )
    if ssl is not None and not ssl.get_selected_srtp_profile():
        return DtlsFailure(
            "the peer's DTLS negotiated no SRTP protection profile (use_srtp, RFC 5764), "
            "which aiortc requires even for data channels"
        )
    return DtlsFailure("DTLS failed after the handshake")


class SctpTransport(RTCSctpTransport):
    """aiortc's SCTP (RFC 8831) with dcsctp's retransmission timers."""

    def __init__(self, transport: RTCDtlsTransport, port: int = 5000) -> None:
        super().__init__(transport, port)
        self._rto = SCTP_RTO_INITIAL

    def _update_rto(self, R: float) -> None:
        super()._update_rto(R)
        # RFC 9260 section 6.3.1 C3-C7, with RTO.Min 400 ms instead of 1 s.
        assert self._srtt is not None and self._rttvar is not None
        self._rto = max(SCTP_RTO_MIN, min(self._srtt + 4 * self._rttvar, SCTP_RTO_MAX))

    @property
    def rto(self) -> float:
        """The current retransmission timeout, in seconds."""
        return float(self._rto)


def sctp_idle(sctp: RTCSctpTransport) -> bool:
    """True when SCTP has nothing queued, in flight, or waiting for a stream id."""
    return not (sctp._outbound_queue or sctp._sent_queue or sctp._data_channel_queue)
