"""Our own protection of a DTLS 1.2 client's application data, for False Start (RFC 7918). No I/O.

A DTLS 1.2 client has sent everything the handshake needs from it with its
Finished, but OpenSSL lets it write application data only after the
server's Finished has come back: half a round trip after the server could
have read it. RFC 7918 lets the client send at once ("False Start") when
the cipher suite is forward secret and AEAD, the server has proved it holds
its certificate's key (its ServerKeyExchange signature), and that
certificate is the one announced (RFC 8122 fingerprint). OpenSSL has no
False Start for DTLS, so the client's records are sealed here, with the
session's keys (pyOpenSSL gives the master secret and randoms):

- key block: the TLS 1.2 PRF (RFC 5246 section 5) of the master secret,
  "key expansion", server random + client random (section 6.3); for an
  AES-GCM suite: client key, server key, client IV (4 bytes), server IV;
- a record (RFC 6347 section 4.1): type, version {254, 253}, epoch 1,
  48-bit sequence number, length; then the 8-byte explicit nonce and the
  AES-GCM ciphertext with its tag (RFC 5288 section 3), the additional data
  being epoch + sequence, type, version and plaintext length (RFC 5246
  section 6.2.3.3).

Once a client has sealed one record itself it seals every later one too
(its sequence numbers are ours from then on). Its Finished took epoch 1's
sequence number 0, so ours start at 1; OpenSSL may still write a record of
epoch 1 (a resent Finished): it draws its explicit nonces from a random
start, ours from another, so no nonce is used twice under the key (what
AES-GCM's security rests on). Only AES-GCM suites: ChaCha20-Poly1305's
nonce is the sequence number itself (RFC 7905), which OpenSSL's own
records could repeat.
"""

from __future__ import annotations

import hmac
import os
import struct

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["RecordWriter", "prf", "FALSE_START_SUITES"]

#: AEAD suites False Start is used with: name -> (key length, PRF hash), RFC 5288/5289.
FALSE_START_SUITES = {
    "ECDHE-ECDSA-AES128-GCM-SHA256": (16, "sha256"),
    "ECDHE-ECDSA-AES256-GCM-SHA384": (32, "sha384"),
}
_FIXED_IV = 4
_EXPLICIT_NONCE = 8
_DTLS12 = 0xFEFD
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


class RecordWriter:
    """Seals one side's records of epoch 1 with AES-GCM (RFC 5288), numbering them from ``first_sequence``."""

    def __init__(self, cipher: str, master_secret: bytes, client_random: bytes, server_random: bytes,
                 *, client: bool, first_sequence: int = 1) -> None:
        key_length, hash_name = FALSE_START_SUITES[cipher]
        block = prf(master_secret, b"key expansion", server_random + client_random,
                    2 * (key_length + _FIXED_IV), hash_name)
        keys = (block[:key_length], block[key_length:2 * key_length])
        ivs = (block[2 * key_length:2 * key_length + _FIXED_IV], block[2 * key_length + _FIXED_IV:])
        mine = 0 if client else 1
        self._aead = AESGCM(keys[mine])
        self._fixed_iv = ivs[mine]
        self.sequence = first_sequence
        # A random start, as OpenSSL's own (its nonces and ours never meet in practice: 2^-64 a pair).
        self._nonce = int.from_bytes(os.urandom(_EXPLICIT_NONCE), "big")

    def seal(self, data: bytes, content_type: int = 23) -> bytes:
        """One record of ``content_type`` (application data unless told) holding ``data``."""
        sequence = self.sequence
        if sequence > _MAX_SEQUENCE:
            raise ConnectionError("DTLS sequence numbers exhausted (RFC 6347 section 4.1)")
        self.sequence = sequence + 1
        explicit = ((self._nonce + sequence) & 0xFFFFFFFFFFFFFFFF).to_bytes(_EXPLICIT_NONCE, "big")
        high, low = sequence >> 32, sequence & 0xFFFFFFFF
        sealed = self._aead.encrypt(self._fixed_iv + explicit, data,
                                    _AAD.pack(1, high, low, content_type, _DTLS12, len(data)))
        return _HEADER.pack(content_type, _DTLS12, 1, high, low, _EXPLICIT_NONCE + len(sealed)) + explicit + sealed
