"""Trust nobody in the middle: SPAKE2 over the code's words, keys bound to the SDP and to DTLS. No I/O.

Both peers know the code's words; the signaling server relays, and knows
only the nameplate. So (docs/security.md, docs/protocol.md "PAKE"):

1. Each side sends ``{"type": "pake", "v": 1, "spake2": <base64>}``: a
   SPAKE2 message in symmetric mode (the ``spake2`` package, as
   magic-wormhole uses it), identity ``icepeer/v1``. Both derive the same
   key if, and only if, they used the same words; someone in the middle
   learns nothing from the messages and gets one guess per code.
2. Keys for each use come from it with HKDF-SHA256 (RFC 5869).
3. The offer and the answer carry ``"mac"``: HMAC-SHA256 of their SDP
   (ICE credentials, DTLS fingerprint, setup role: all of it) under the key
   of their kind. An SDP that does not verify is never used: whoever changed
   the fingerprint to run DTLS in the middle is caught here.
4. After DTLS, each side sends on a pre-agreed channel an HMAC of its role
   and of 32 bytes of the DTLS keying-material exporter (RFC 5705), which
   differ between two DTLS sessions: a party that relayed every PAKE and SDP
   message untouched but ran DTLS with each side is caught here too.

Any failure is :class:`icepeer.errors.AuthenticationFailed` with one
message, whatever the cause (a wrong code or an attack look the same, and
say nothing more to an attacker); a malformed, repeated or reflected PAKE
message is :class:`icepeer.errors.BadDescription`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .errors import AuthenticationFailed, BadDescription

__all__ = ["Pake", "VERSION", "EXPORTER_LABEL", "CONFIRM_STREAM", "MISMATCH"]

VERSION = 1
IDENTITY = b"icepeer/v1"
#: RFC 5705 label of the keying material the key confirmation is bound to.
EXPORTER_LABEL = b"EXPORTER-icepeer-code-confirmation"
#: The pre-agreed SCTP stream of the key confirmation (RFC 8832: negotiated out of band).
CONFIRM_STREAM = 65000
MISMATCH = "the code did not match, or someone interfered: no data was sent"
_SPAKE2_MESSAGE = 33  # one byte of side, then a compressed Ed25519 point


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: Any, what: str, length: int | None = None) -> bytes:
    if not isinstance(text, str) or len(text) > 256:
        raise BadDescription(f"{what} is not a base64 string")
    try:
        value = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise BadDescription(f"{what} is not base64") from None
    if length is not None and len(value) != length:
        raise BadDescription(f"{what} has {len(value)} bytes, not {length}")
    return value


class Pake:
    """One side of one code's PAKE."""

    def __init__(self, password: bytes) -> None:
        # Imported here: 15-20 ms of start-up that a room, without a code, does not need.
        from spake2 import SPAKE2_Symmetric

        self._spake = SPAKE2_Symmetric(password, idSymmetric=IDENTITY)
        self._outbound = self._spake.start()
        self._keys: dict[str, bytes] | None = None

    @property
    def ready(self) -> bool:
        return self._keys is not None

    def message(self) -> dict[str, Any]:
        """What to send the peer first."""
        return {"type": "pake", "v": VERSION, "spake2": _b64(self._outbound)}

    def receive(self, data: dict[str, Any]) -> None:
        """The peer's PAKE message; raises :class:`BadDescription` if it is malformed or out of turn."""
        if data.get("v") != VERSION:
            raise BadDescription(f"PAKE version {data.get('v')!r}: this icepeer speaks {VERSION}")
        inbound = _unb64(data.get("spake2"), "the PAKE message", _SPAKE2_MESSAGE)
        if self._keys is not None:
            raise BadDescription("a second PAKE message (a replay?)")
        if inbound == self._outbound:
            raise BadDescription("our own PAKE message came back (reflected)")
        try:
            key = self._spake.finish(inbound)
        except Exception as exc:  # noqa: BLE001 - spake2 raises its own errors and ValueErrors alike
            raise BadDescription(f"an unusable PAKE message ({type(exc).__name__})") from None
        self._keys = {use: self._derive(key, use) for use in ("offer", "answer", "confirm", "verifier")}

    @staticmethod
    def _derive(key: bytes, use: str) -> bytes:
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"icepeer/v1 " + use.encode()).derive(key)

    def _key(self, use: str) -> bytes:
        if self._keys is None:
            raise BadDescription(f"an {use} before the PAKE finished")
        return self._keys[use]

    # -- the offer and the answer ---------------------------------------------------------

    def seal(self, kind: str, sdp: str) -> str:
        """The ``mac`` of an offer or answer."""
        return _b64(hmac.new(self._key(kind), sdp.encode(), hashlib.sha256).digest())

    def check(self, kind: str, sdp: str, mac: Any) -> None:
        """Raise :class:`AuthenticationFailed` unless ``mac`` authenticates ``sdp`` as a ``kind``."""
        try:
            received = _unb64(mac, f"the {kind}'s mac", 32)
        except BadDescription:
            raise AuthenticationFailed(MISMATCH) from None
        expected = hmac.new(self._key(kind), sdp.encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(received, expected):
            raise AuthenticationFailed(MISMATCH)

    # -- after DTLS: key confirmation bound to the session -----------------------------------

    def confirmation(self, role: str, exporter: bytes) -> bytes:
        """The tag ``role`` (offerer or answerer) sends, over this DTLS session's exporter."""
        return hmac.new(self._key("confirm"), role.encode() + b"\x00" + exporter, hashlib.sha256).digest()

    def check_confirmation(self, role: str, exporter: bytes, tag: Any) -> None:
        if not isinstance(tag, bytes) or not hmac.compare_digest(tag, self.confirmation(role, exporter)):
            raise AuthenticationFailed(MISMATCH)

    def verifier(self) -> str:
        """A short string both people can compare by voice (``--verify``): 40 bits."""
        digest = self._key("verifier")[:5].hex()
        return "-".join(digest[i:i + 4] for i in range(0, 10, 4))
