"""DTLS 1.2 application data records sealed and opened in Python (AES-GCM suites). No I/O.

OpenSSL runs the handshake (:mod:`icepeer.dtls`); the records of the data
path are done here, for two reasons:

- **False Start** (RFC 7918). A DTLS 1.2 client has sent everything the
  handshake needs from it with its Finished, but OpenSSL lets it write only
  once the server's Finished is back: half a round trip after the server
  could read it. RFC 7918 lets the client send at once when the suite is
  forward secret and AEAD, the server has proved it holds its certificate's
  key (its ServerKeyExchange signature) and that certificate is the one
  announced (RFC 8122 fingerprint). OpenSSL has no False Start for DTLS.
- **Cost.** Through pyOpenSSL each record costs a write and a BIO read (or a
  BIO write and a read), each allocating a 64 KiB buffer; one AES-GCM call
  costs about half of that (docs/benchmarks.md).

The pieces, with the session's secrets that pyOpenSSL gives:

- key block: the TLS 1.2 PRF (RFC 5246 section 5) of the master secret,
  "key expansion", server random + client random (section 6.3): client key,
  server key, client IV (4 bytes), server IV;
- a record (RFC 6347 section 4.1): type, version {254, 253}, epoch 1,
  48-bit sequence number, length; then the 8-byte explicit nonce and the
  ciphertext with its tag (RFC 5288 section 3); the additional data is
  epoch + sequence, type, version and plaintext length (RFC 5246 section
  6.2.3.3);
- replays are discarded with RFC 6347 section 4.1.2.6's window, records
  that fail their tag in silence (section 4.1.2.7).

Once a side seals its records here it seals all of them (the sequence
numbers are ours from then on). Its Finished took epoch 1's sequence number
0, so ours start at 1; OpenSSL may still write a record of epoch 1 (a
resent Finished): it draws its explicit nonces from a random start, ours
from another, so no nonce is used twice under the key, which AES-GCM's
security rests on. Only AES-GCM: ChaCha20-Poly1305's nonce is the sequence
number itself (RFC 7905), which OpenSSL's own records could repeat; such a
session stays with OpenSSL.
"""

from __future__ import annotations

import hmac
import os
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["APPLICATION_DATA", "RecordReader", "RecordWriter", "SUITES", "prf", "session_keys"]

#: The AEAD suites whose records are sealed and opened here: name -> (key length, PRF hash), RFC 5289.
SUITES = {
    "ECDHE-ECDSA-AES128-GCM-SHA256": (16, "sha256"),
    "ECDHE-ECDSA-AES256-GCM-SHA384": (32, "sha384"),
}
_FIXED_IV = 4
_EXPLICIT_NONCE = 8
DTLS12 = 0xFEFD
APPLICATION_DATA = 23
_OVERHEAD = 8 + 16  # explicit nonce, tag
_WINDOW = 64
_MASK64 = (1 << 64) - 1
_HEADER = struct.Struct("!BHHHLH")  # type, version, epoch, sequence (48 bits: 16 + 32), length
_AAD = struct.Struct("!HHLBHH")  # epoch, sequence (16 + 32), type, version, length
_MAX_SEQUENCE = (1 << 48) - 1


def prf(secret: bytes, label: bytes, seed: bytes, length: int, hash_name: str = "sha256") -> bytes:
    """The TLS 1.2 PRF: P_hash(secret, label + seed) (RFC 5246 section 5)."""
    seed = label + seed
    out, a = b"", seed
    while len(out) < length:
        a = hmac.digest(secret, a, hash_name)
        out += hmac.digest(secret, a + seed, hash_name)
    return out[:length]


def session_keys(cipher: str, master_secret: bytes, client_random: bytes,
                 server_random: bytes) -> tuple[bytes, bytes, bytes, bytes]:
    """The client's and the server's write key and IV of an AES-GCM suite (RFC 5246 section 6.3)."""
    key_length, hash_name = SUITES[cipher]
    block = prf(master_secret, b"key expansion", server_random + client_random,
                2 * (key_length + _FIXED_IV), hash_name)
    k = 2 * key_length
    return block[:key_length], block[key_length:k], block[k:k + _FIXED_IV], block[k + _FIXED_IV:]


class RecordWriter:
    """Seals one side's records of epoch 1 with AES-GCM (RFC 5288), numbered from 1 (the Finished was 0)."""

    def __init__(self, key: bytes, fixed_iv: bytes) -> None:
        self._aead = AESGCM(key)
        self._fixed_iv = fixed_iv
        self.sequence = 1
        # A random start, as OpenSSL's own (its nonces and ours never meet in practice: 2^-64 a pair).
        self._nonce = int.from_bytes(os.urandom(_EXPLICIT_NONCE), "big")

    def seal(self, data: bytes, content_type: int = APPLICATION_DATA) -> bytes:
        """One record of ``content_type`` (application data unless told) holding ``data``."""
        sequence = self.sequence
        if sequence > _MAX_SEQUENCE:
            raise ConnectionError("DTLS sequence numbers exhausted (RFC 6347 section 4.1)")
        self.sequence = sequence + 1
        explicit = ((self._nonce + sequence) & _MASK64).to_bytes(_EXPLICIT_NONCE, "big")
        high, low = sequence >> 32, sequence & 0xFFFFFFFF
        sealed = self._aead.encrypt(self._fixed_iv + explicit, data,
                                    _AAD.pack(1, high, low, content_type, DTLS12, len(data)))
        return _HEADER.pack(content_type, DTLS12, 1, high, low, _EXPLICIT_NONCE + len(sealed)) + explicit + sealed


class RecordReader:
    """Opens the peer's application data records of epoch 1 (AES-GCM), replays discarded.

    :meth:`open` opens those of a datagram and hands back the others (a
    handshake record, an alert, another epoch) for OpenSSL, which reads them
    as it reads any; bytes after the last whole record are dropped. A record that fails its
    tag is dropped in silence (RFC 6347 section 4.1.2.7); the replay window
    is RFC 6347 section 4.1.2.6's, 64 records wide, moved only by records
    that passed their tag. The peer's Finished had sequence number 0.
    """

    def __init__(self, key: bytes, fixed_iv: bytes) -> None:
        self._aead = AESGCM(key)
        self._fixed_iv = fixed_iv
        self._top = 0
        self._seen = 1
        #: Records dropped: tag failures and replays.
        self.dropped = 0

    def open(self, datagram: bytes) -> tuple[list[bytes], bytes]:
        """The application data of our records in ``datagram``, and its other records (for OpenSSL)."""
        end = len(datagram)
        if end >= 13:
            kind, version, epoch, high, low, length = _HEADER.unpack_from(datagram)
            if 13 + length == end and kind == APPLICATION_DATA and epoch == 1 and version == DTLS12:
                plain = self._open(datagram[13:], high, low)  # one record of ours: the common case
                return ([plain] if plain is not None else []), b""
        out, others = [], []
        pos = 0
        while pos + 13 <= end:
            kind, version, epoch, high, low, length = _HEADER.unpack_from(datagram, pos)
            start, pos = pos + 13, pos + 13 + length
            if pos > end:
                break  # cut short: dropped
            if kind == APPLICATION_DATA and epoch == 1 and version == DTLS12:
                plain = self._open(datagram[start:pos], high, low)
                if plain is not None:
                    out.append(plain)
            else:
                others.append(datagram[start - 13:pos])
        return out, b"".join(others)

    def _open(self, body: bytes, high: int, low: int) -> bytes | None:
        sequence = (high << 32) | low
        top = self._top
        if len(body) < _OVERHEAD or (sequence <= top and (top - sequence >= _WINDOW
                                                         or (self._seen >> (top - sequence)) & 1)):
            self.dropped += 1
            return None
        try:
            plain = self._aead.decrypt(self._fixed_iv + body[:_EXPLICIT_NONCE], body[_EXPLICIT_NONCE:],
                                       _AAD.pack(1, high, low, APPLICATION_DATA, DTLS12, len(body) - _OVERHEAD))
        except InvalidTag:
            self.dropped += 1
            return None
        if sequence > top:
            self._seen = ((self._seen << (sequence - top)) | 1) & _MASK64
            self._top = sequence
        else:
            self._seen |= 1 << (top - sequence)
        return plain
