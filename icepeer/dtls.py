"""DTLS 1.2 for WebRTC (RFC 6347, RFC 8842, RFC 8122) over OpenSSL's memory BIOs. No sockets.

Datagrams in (:meth:`DtlsEndpoint.receive`, which returns the application
data), datagrams out (:meth:`DtlsEndpoint.datagrams`); the caller moves them.
Each side has a fresh ECDSA P-256 certificate; the peer's must match the
fingerprints of its SDP (RFC 8122 section 5), checked when the handshake
ends, with the real cause of any failure. The use_srtp extension (RFC 5764)
is offered as browsers and aiortc do, which aiortc requires even for data
channels.

OpenSSL writes DTLS records into a memory BIO as one byte stream; they are
split here at record boundaries (RFC 6347 section 4.1) and packed into
datagrams of at most :data:`MTU` bytes, so no record is ever cut in two.
OpenSSL waits a second before resending a lost handshake flight, and its
timer cannot be set from Python: the last flight is kept here and resent
after 250 ms, doubling up to 1 s (section 4.2.4 allows any such timer).
The keying material exporter (RFC 5705) is available once connected.

With an AES-GCM suite (what browsers and icepeer choose) the application
data records are sealed and opened in Python once the handshake is over
(:mod:`icepeer.dtls_record`): cheaper than through OpenSSL's BIOs. A
client made with ``false_start`` may send as soon as its Finished is out
(RFC 7918): :attr:`DtlsEndpoint.can_send` turns true half a round trip
before the handshake ends for it.
"""

from __future__ import annotations

import binascii
import contextlib
import datetime
import enum
import logging
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from OpenSSL import SSL

from .dtls_record import APPLICATION_DATA, SUITES, RecordReader, RecordWriter, session_keys

__all__ = ["Certificate", "DtlsEndpoint", "DtlsState", "MTU", "fingerprint_of"]

logger = logging.getLogger(__name__)

#: Largest datagram we make: DTLS records around a 1189-byte SCTP packet fit the IPv6 minimum MTU.
MTU = 1252
HASHES = {"sha-256": hashes.SHA256(), "sha-384": hashes.SHA384(), "sha-512": hashes.SHA512()}
CIPHERS = (b"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305:"
           b"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA")
SRTP_PROFILES = b"SRTP_AEAD_AES_128_GCM:SRTP_AES128_CM_SHA1_80"
FLIGHT_RTO_INITIAL, FLIGHT_RTO_MAX = 0.25, 1.0
#: Records of the next epoch OpenSSL keeps while the handshake ends (its pqueue holds 100 at most).
MAX_BUFFERED_RECORDS = 101
_HANDSHAKE_TYPES = (20, 21, 22)  # change_cipher_spec, alert, handshake
_ALERT = 21
_CLOSE_NOTIFY = b"\x01\x00"  # warning, close_notify
#: OpenSSL's state once a client's last flight is written (SSL_state_string_long).
_WROTE_FINISHED = b"SSLv3/TLS write finished"
#: The first record of a client's resent last flight: its Certificate (handshake) or ChangeCipherSpec.
_RESENT_FLIGHT_TYPES = (20, 22)


def fingerprint_of(certificate: x509.Certificate, algorithm: str) -> str:
    digest = certificate.fingerprint(HASHES[algorithm]).hex().upper()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


class Certificate:
    """A self-signed ECDSA certificate and its key, valid for 30 days (as browsers make them)."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, binascii.hexlify(os.urandom(16)).decode())])
        now = datetime.datetime.now(tz=datetime.UTC)
        self.x509 = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
            .sign(self.key, hashes.SHA256())
        )

    def fingerprint(self, algorithm: str = "sha-256") -> str:
        return fingerprint_of(self.x509, algorithm)

    def context(self) -> SSL.Context:
        ctx = SSL.Context(SSL.DTLS_METHOD)
        # No renegotiation: keys change only with a new session (and False Start's stay valid).
        ctx.set_options(SSL.OP_NO_TICKET | SSL.OP_NO_RENEGOTIATION)
        # Any certificate is accepted during the handshake; the fingerprint
        # check afterwards is what authenticates the peer (RFC 8122).
        ctx.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, lambda *args: True)
        ctx.use_certificate(self.x509)
        ctx.use_privatekey(self.key)
        ctx.set_cipher_list(CIPHERS)
        ctx.set_tlsext_use_srtp(SRTP_PROFILES)
        return ctx


class DtlsState(enum.Enum):
    NEW = "new"
    HANDSHAKING = "handshaking"
    CONNECTED = "connected"
    CLOSED = "closed"
    FAILED = "failed"


class DtlsEndpoint:
    """One DTLS session: ``server`` per a=setup (RFC 8842 section 5)."""

    def __init__(self, certificate: Certificate, *, server: bool, remote_fingerprints: list[tuple[str, str]],
                 false_start: bool = False) -> None:
        self.server = server
        self.false_start = false_start and not server
        #: Our records' sealing and the peer's opening, in Python (AES-GCM suites): from a False
        #: Start, or from the handshake's end (:mod:`icepeer.dtls_record`).
        self._writer: RecordWriter | None = None
        self._reader: RecordReader | None = None
        #: We sent before the handshake ended for us (RFC 7918).
        self.false_started = False
        self.remote_fingerprints = [(a.lower(), v.upper()) for a, v in remote_fingerprints]
        self._ssl = SSL.Connection(certificate.context(), None)
        if server:
            self._ssl.set_accept_state()
        else:
            self._ssl.set_connect_state()
        self.state = DtlsState.NEW
        #: Why the session failed, and whether the certificate was not the announced one.
        self.failure: str | None = None
        self.tampering = False
        self.closed_by_peer = False
        self._out: list[bytes] = []
        self._flight: list[bytes] = []
        self._last_flight: list[bytes] = []
        self._new_flight = True
        self._rto = FLIGHT_RTO_INITIAL
        self.flight_deadline: float | None = None
        #: Flights sent again: by the timer, or (a server) in answer to the client's resent last flight.
        self.flights_resent = 0
        self.timer_resends = 0

    # -- the handshake -------------------------------------------------------------------

    def start(self, now: float) -> None:
        if self.state is DtlsState.NEW:
            self.state = DtlsState.HANDSHAKING
            self._handshake(now)

    def _handshake(self, now: float) -> None:
        try:
            self._ssl.do_handshake()
        except SSL.WantReadError:
            self._collect(now)
            if self.false_start and self._writer is None and self._ssl.get_state_string() == _WROTE_FINISHED:
                self._start_false()
            return
        except SSL.Error as exc:
            self._collect(now)
            self._fail(f"the DTLS handshake failed: {_reason(exc)}")
            return
        self._collect(now)
        self.flight_deadline = None
        # A server's last flight (ChangeCipherSpec, Finished) may be lost; the
        # client then resends its own, byte for byte, which OpenSSL drops as a
        # replay without answering: we answer it with this (RFC 6347 4.2.4).
        self._last_flight = self._flight if self.server else []
        self._flight = []
        if self._verify():
            self.state = DtlsState.CONNECTED
            keys = self._keys()
            if keys is not None:
                if self._writer is None:
                    self._writer = RecordWriter(keys[0], keys[1])
                self._reader = RecordReader(keys[2], keys[3])

    def _start_false(self) -> None:
        """Our Finished is out: send from now on if RFC 7918 section 3 allows it (else wait as usual)."""
        keys = self._keys()
        # The certificate is the announced one before anything is sent.
        if keys is not None and self._verify():
            self._writer = RecordWriter(keys[0], keys[1])
            self.false_started = True
            logger.debug("DTLS False Start")

    def _keys(self) -> tuple[bytes, bytes, bytes, bytes] | None:
        """Our write key and IV, the peer's: for a DTLS 1.2 session with an AES-GCM suite."""
        ssl = self._ssl
        cipher = ssl.get_cipher_name()
        secrets = ssl.master_key(), ssl.client_random(), ssl.server_random()
        if ssl.get_protocol_version_name() != "DTLSv1.2" or cipher not in SUITES or not all(secrets):
            return None
        client_key, server_key, client_iv, server_iv = session_keys(cipher, *(bytes(s or b"") for s in secrets))
        if self.server:
            return server_key, server_iv, client_key, client_iv
        return client_key, client_iv, server_key, server_iv

    def _verify(self) -> bool:
        certificate = self._ssl.get_peer_certificate(as_cryptography=True)
        if certificate is None:
            self._fail("the peer sent no DTLS certificate")
            return False
        checkable = [(a, v) for a, v in self.remote_fingerprints if a in HASHES]
        if not checkable:
            offered = ", ".join(sorted({a for a, _ in self.remote_fingerprints})) or "none"
            self._fail(f"the peer's a=fingerprint uses {offered}; only {', '.join(HASHES)} can be checked")
            return False
        if any(fingerprint_of(certificate, a) != v for a, v in checkable):
            self.tampering = True
            self._fail("the peer's DTLS certificate does not match the fingerprint in its SDP: "
                       "someone may be tampering with the signaling path")
            return False
        return True

    def _fail(self, reason: str) -> None:
        self.state = DtlsState.FAILED
        self.failure = reason
        self.flight_deadline = None
        logger.info("DTLS failed: %s", reason)

    @property
    def connected(self) -> bool:
        return self.state is DtlsState.CONNECTED

    @property
    def can_send(self) -> bool:
        """Connected, or a False Start client whose handshake is still ending."""
        return self.state is DtlsState.CONNECTED or (self.false_started and self.state is DtlsState.HANDSHAKING)

    # -- datagrams in ----------------------------------------------------------------------

    def receive(self, datagram: bytes, now: float) -> list[bytes]:
        """One datagram from the peer; the application data it carried."""
        if self.state in (DtlsState.CLOSED, DtlsState.FAILED):
            return []
        if self._reader is not None:
            opened, others = self._reader.open(datagram)
            return opened + self._receive(others, now) if others else opened
        return self._receive(datagram, now)

    def _receive(self, datagram: bytes, now: float) -> list[bytes]:
        """Through OpenSSL: the handshake, and everything until our own records take over."""
        if self.state is DtlsState.NEW:
            self.state = DtlsState.HANDSHAKING
        ssl = self._ssl
        try:
            ssl.bio_write(datagram)
        except SSL.Error:
            return []
        records = _count_records(datagram)
        was_connected = self.state is DtlsState.CONNECTED
        if self.state is DtlsState.HANDSHAKING:
            # The peer answered: what we send next is a new flight.
            self._new_flight = True
            self._handshake(now)
            if not self.connected:
                return []
            # Application data that came before the handshake ended (the peer
            # finished first: SNAP lets it send at once) waits in OpenSSL's
            # buffer of the next epoch's records: read it all now.
            records = MAX_BUFFERED_RECORDS
        out = []
        # One recv() per record in the datagram: no exception to end the loop
        # in the common case (a record that fails its MAC is just skipped).
        for _ in range(records):
            try:
                out.append(ssl.recv(65536))
            except SSL.WantReadError:
                if records == MAX_BUFFERED_RECORDS:
                    break
                continue
            except SSL.ZeroReturnError:
                self.state = DtlsState.CLOSED
                self.closed_by_peer = True
                break
            except SSL.Error as exc:
                # A fatal alert from the peer, or a record OpenSSL refuses.
                self._fail(f"DTLS failed: {_reason(exc)}")
                break
        if datagram[0] != APPLICATION_DATA:
            # OpenSSL may answer a handshake record (the peer resent its last flight).
            self._collect(now)
            if was_connected and self._last_flight and datagram[0] in _RESENT_FLIGHT_TYPES:
                self._out += self._last_flight
                self.flights_resent += 1
        return out

    # -- datagrams out -----------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        """Encrypt one message (one record; the caller keeps it under the MTU)."""
        if not self.can_send:
            raise ConnectionError(f"DTLS is {self.state.value}")
        if self._writer is not None:
            self._out.append(self._writer.seal(data))
            return
        self._ssl.send(data)
        self._out.append(self._ssl.bio_read(65536))

    def datagrams(self) -> list[bytes]:
        out, self._out = self._out, []
        return out

    def _collect(self, now: float) -> None:
        """Move what OpenSSL wrote into datagrams, whole records only; remember handshake flights."""
        try:
            data = self._ssl.bio_read(65536)
        except SSL.WantReadError:
            return
        except SSL.Error:
            return
        datagrams = _pack(data)
        if self.state is DtlsState.HANDSHAKING and datagrams and datagrams[0][0] in _HANDSHAKE_TYPES:
            if self._new_flight:
                self._flight, self._new_flight = [], False
                self._rto = FLIGHT_RTO_INITIAL
            self._flight += datagrams
            self.flight_deadline = now + self._rto
        self._out += datagrams

    def handle_timer(self, now: float) -> None:
        """Resend the last handshake flight if nothing came back (RFC 6347 section 4.2.4)."""
        if self.flight_deadline is None or now < self.flight_deadline:
            return
        if self.state is not DtlsState.HANDSHAKING or not self._flight:
            self.flight_deadline = None
            return
        self.flights_resent += 1
        self.timer_resends += 1
        self._out += self._flight
        self._rto = min(self._rto * 2, FLIGHT_RTO_MAX)
        self.flight_deadline = now + self._rto

    def close(self) -> None:
        """Send close_notify (RFC 6347 section 4.1, RFC 5246 section 7.2.1)."""
        if self._writer is not None and self.can_send:
            self._out.append(self._writer.seal(_CLOSE_NOTIFY, _ALERT))
        elif self.state is DtlsState.CONNECTED:
            with contextlib.suppress(SSL.Error):
                self._ssl.shutdown()
            self._collect(0.0)
        self.state = DtlsState.CLOSED

    def export_keying_material(self, label: bytes, length: int, context: bytes | None = None) -> bytes:
        """Keys bound to this session (RFC 5705)."""
        if self.state is not DtlsState.CONNECTED:
            raise ConnectionError("DTLS is not connected")
        return bytes(self._ssl.export_keying_material(label, length, context))

    @property
    def srtp_profile(self) -> bytes | None:
        profile = self._ssl.get_selected_srtp_profile()
        return bytes(profile) if profile else None


def _count_records(data: bytes) -> int:
    """How many DTLS records a datagram holds (RFC 6347 section 4.1: 13-byte headers)."""
    count, pos, end = 0, 0, len(data)
    while pos + 13 <= end:
        pos += 13 + ((data[pos + 11] << 8) | data[pos + 12])
        count += 1
    return count


def _pack(data: bytes) -> list[bytes]:
    """Split a byte stream of DTLS records into datagrams of at most MTU bytes, records whole."""
    datagrams: list[bytes] = []
    pos, start, end = 0, 0, len(data)
    while pos + 13 <= end:
        length = (data[pos + 11] << 8) | data[pos + 12]
        record_end = pos + 13 + length
        if record_end > end:
            break
        if record_end - start > MTU and pos > start:
            datagrams.append(data[start:pos])
            start = pos
        pos = record_end
    if pos > start:
        datagrams.append(data[start:pos])
    return datagrams


def _reason(exc: SSL.Error) -> str:
    try:
        return "; ".join(str(e[2]) for e in exc.args[0]) or str(exc)
    except (IndexError, TypeError):
        return str(exc) or type(exc).__name__
