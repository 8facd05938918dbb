"""The SDP icepeer speaks: one application m-line for data channels. No I/O.

An offer or answer carries exactly what a WebRTC endpoint needs to open data
channels (RFC 8841 section 5, RFC 8839 section 5, RFC 8122 section 5)::

    v=0
    o=- 4611731400430051336 2 IN IP4 127.0.0.1
    s=-
    t=0 0
    a=group:BUNDLE 0
    m=application 9 UDP/DTLS/SCTP webrtc-datachannel
    c=IN IP4 0.0.0.0
    a=mid:0
    a=ice-ufrag:F7gI
    a=ice-pwd:x9cml/YzichV2+XlhiMu8g
    a=ice-options:trickle
    a=fingerprint:sha-256 49:66:12:...
    a=setup:actpass
    a=sctp-port:5000
    a=max-message-size:65536

Candidates are trickled separately (RFC 8838), so the description usually
has none; any ``a=candidate`` lines present are parsed too, as a browser that
does not trickle puts them there.

Three accelerations ride on it, each used only when both offer and answer
carry it: ``a=sctp-init:<base64>``, the SCTP INIT chunk of SNAP
(draft-hancke-tsvwg-snap-00); the ``sped`` ICE option of SPED
(draft-hancke-webrtc-sped-00) in ``a=ice-options``; and ``a=icepeer:1``,
which says the peer is icepeer (channels asked for by label are then
pre-agreed, RFC 8832 section 4). Other endpoints ignore attributes they do
not know (RFC 8866 section 5.13).
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from dataclasses import dataclass, field

from aioice import Candidate

from .errors import BadDescription
from .sctp.chunks import InitChunk, SctpMalformed

__all__ = ["Fingerprint", "Description", "parse", "MID", "DEFAULT_SCTP_PORT"]

MID = "0"
DEFAULT_SCTP_PORT = 5000
DEFAULT_MAX_MESSAGE_SIZE = 65536
#: RFC 8841 section 6: max-message-size is an integer up to 4294967295 (0: no
#: limit). A peer that cannot take even 1 KiB messages is refused here, with
#: the field named, rather than accepted and then failing every send.
MIN_MAX_MESSAGE_SIZE = 1024
MAX_MAX_MESSAGE_SIZE = 2**32 - 1
_SETUP = ("actpass", "active", "passive")
# RFC 8445 section 5.3: ufrag 4+ and pwd 22+ ice-chars.
_ICE_CHARS = re.compile(r"[A-Za-z0-9+/]+")
_HEX_PAIRS = re.compile(r"[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2})+")


@dataclass(frozen=True)
class Fingerprint:
    algorithm: str
    value: str


@dataclass(frozen=True)
class Description:
    """The parts of an offer or answer icepeer uses."""

    ice_ufrag: str
    ice_pwd: str
    fingerprints: tuple[Fingerprint, ...]
    setup: str
    sctp_port: int = DEFAULT_SCTP_PORT
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    ice_lite: bool = False
    candidates: tuple[Candidate, ...] = field(default=(), compare=False)
    end_of_candidates: bool = False
    #: SNAP: the SCTP INIT chunk, serialized.
    sctp_init: bytes | None = None
    #: ``a=ice-options`` (RFC 8839 section 5.6): ``trickle``, and ``sped`` for SPED.
    ice_options: tuple[str, ...] = ("trickle",)
    #: ``a=icepeer:N``: an icepeer peer, version N of its own features (pre-agreed channels).
    icepeer: int | None = None

    @property
    def snap_init(self) -> InitChunk | None:
        """The INIT chunk of ``a=sctp-init`` (checked when parsed), if any."""
        return InitChunk.deserialize(self.sctp_init) if self.sctp_init is not None else None

    def to_sdp(self, *, session_id: int | None = None, version: int = 2) -> str:
        sid = session_id if session_id is not None else secrets.randbits(62)
        lines = [
            "v=0",
            f"o=- {sid} {version} IN IP4 127.0.0.1",
            "s=-",
            "t=0 0",
            f"a=group:BUNDLE {MID}",
        ]
        if self.ice_lite:
            lines.append("a=ice-lite")
        lines += [
            "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
            "c=IN IP4 0.0.0.0",
            f"a=mid:{MID}",
            f"a=ice-ufrag:{self.ice_ufrag}",
            f"a=ice-pwd:{self.ice_pwd}",
            f"a=ice-options:{' '.join(self.ice_options)}",
        ]
        lines += [f"a=fingerprint:{f.algorithm} {f.value}" for f in self.fingerprints]
        lines += [
            f"a=setup:{self.setup}",
            f"a=sctp-port:{self.sctp_port}",
            f"a=max-message-size:{self.max_message_size}",
        ]
        if self.sctp_init is not None:
            lines.append(f"a=sctp-init:{base64.b64encode(self.sctp_init).decode()}")
        if self.icepeer is not None:
            lines.append(f"a=icepeer:{self.icepeer}")
        lines += [f"a=candidate:{c.to_sdp()}" for c in self.candidates]
        if self.end_of_candidates:
            lines.append("a=end-of-candidates")
        return "\r\n".join(lines) + "\r\n"


def _integer(value: str | None, name: str, default: int) -> int:
    """An SDP attribute's integer value (digits only, RFC 8866 section 9)."""
    if value is None or value == "":
        return default
    if not (value.isascii() and value.isdigit()) or len(value) > 10:
        raise BadDescription(f"a={name}:{value[:40]} is not a number")
    return int(value)


def parse(sdp: str) -> Description:
    """Parse an offer or answer; raise :class:`BadDescription` if it cannot carry data channels."""
    if not isinstance(sdp, str) or not sdp.startswith("v=0"):
        raise BadDescription("not an SDP description (it must start with v=0)")
    session: dict[str, list[str]] = {}
    media: dict[str, list[str]] | None = None
    application_lines: dict[str, list[str]] | None = None
    for raw in sdp.splitlines():
        line = raw.strip()
        if line.startswith("m="):
            media = {}
            if line.split()[0] == "m=application" and "webrtc-datachannel" in line and application_lines is None:
                application_lines = media
            continue
        if not line.startswith("a="):
            continue
        key, _, value = line[2:].partition(":")
        (media if media is not None else session).setdefault(key, []).append(value)
    if application_lines is None:
        raise BadDescription("no 'm=application ... webrtc-datachannel' section")

    def get(key: str) -> str | None:
        # Media-level attributes override session-level ones (RFC 8866 section 5).
        values = application_lines.get(key) or session.get(key)
        return values[0].strip() if values else None

    ufrag, pwd = get("ice-ufrag"), get("ice-pwd")
    if not ufrag or not pwd:
        raise BadDescription("missing a=ice-ufrag or a=ice-pwd")
    if not _ICE_CHARS.fullmatch(ufrag) or not _ICE_CHARS.fullmatch(pwd) or len(ufrag) < 4 or len(pwd) < 22:
        raise BadDescription("a=ice-ufrag / a=ice-pwd are not valid ICE credentials (RFC 8839 section 5.4)")
    fingerprints = []
    for value in application_lines.get("fingerprint", []) or session.get("fingerprint", []):
        algorithm, _, digest = value.strip().partition(" ")
        if not _HEX_PAIRS.fullmatch(digest.strip()):
            raise BadDescription(f"malformed a=fingerprint:{value}")
        fingerprints.append(Fingerprint(algorithm.lower(), digest.strip().upper()))
    if not fingerprints:
        raise BadDescription("missing a=fingerprint: the DTLS certificate cannot be checked")
    setup = get("setup") or "actpass"
    if setup not in _SETUP:
        raise BadDescription(f"a=setup:{setup} is not one of {', '.join(_SETUP)}")
    sctp_port = _integer(get("sctp-port"), "sctp-port", DEFAULT_SCTP_PORT)
    if not 0 < sctp_port < 65536:
        raise BadDescription(f"a=sctp-port:{sctp_port} out of range (1 to 65535)")
    max_size = _integer(get("max-message-size"), "max-message-size", DEFAULT_MAX_MESSAGE_SIZE)
    if max_size != 0 and not MIN_MAX_MESSAGE_SIZE <= max_size <= MAX_MAX_MESSAGE_SIZE:
        raise BadDescription(
            f"a=max-message-size:{max_size} out of range (0 for no limit, or "
            f"{MIN_MAX_MESSAGE_SIZE} to {MAX_MAX_MESSAGE_SIZE})"
        )
    sctp_init = None
    if (text := get("sctp-init")) is not None:
        try:
            sctp_init = base64.b64decode(text, validate=True)
            InitChunk.deserialize(sctp_init)
        except (binascii.Error, ValueError) as exc:
            what = "base64" if not isinstance(exc, SctpMalformed) else f"an SCTP INIT chunk ({exc})"
            raise BadDescription(f"a=sctp-init:{text[:40]} is not {what}") from None
    ice_options = tuple((get("ice-options") or "").split())
    marker = get("icepeer")
    icepeer = int(marker) if marker and marker.isascii() and marker.isdigit() and len(marker) < 6 else None
    candidates = []
    for value in application_lines.get("candidate", []):
        try:
            candidates.append(Candidate.from_sdp(value))
        except (ValueError, IndexError) as exc:
            raise BadDescription(f"malformed a=candidate:{value} ({exc})") from None
    return Description(
        ice_ufrag=ufrag,
        ice_pwd=pwd,
        fingerprints=tuple(fingerprints),
        setup=setup,
        sctp_port=sctp_port,
        # RFC 8841 section 6: 0 means "no limit"; keep ours then.
        max_message_size=max_size or DEFAULT_MAX_MESSAGE_SIZE,
        ice_lite="ice-lite" in session,
        candidates=tuple(candidates),
        end_of_candidates="end-of-candidates" in application_lines,
        sctp_init=sctp_init,
        ice_options=ice_options,
        icepeer=icepeer,
    )
