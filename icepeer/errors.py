"""Every exception icepeer raises.

::

    IcepeerError
    ├── ConfigError             bad options: an ICE server URL, a room name, ...
    ├── SignalingFailed         the signaling server is unreachable, refused us, or went away
    ├── ConnectFailed           no connection within the timeout
    │   ├── IceFailed           ICE found no working candidate pair
    │   ├── BadDescription      the peer sent an offer, answer or candidate we cannot use
    │   ├── DtlsFailed          the DTLS handshake failed
    │   │   └── FingerprintMismatch   the peer's certificate is not the one its SDP announced
    │   └── AuthenticationFailed      the code did not match, or someone interfered (PAKE)
    ├── TurnError               a TURN server refused us (wrong credentials, quota, ...)
    ├── PeerLost                the peer left, was killed, or the network was cut
    ├── ChannelClosed           send() on a closed channel
    └── MessageTooLarge         a message bigger than the negotiated maximum

aioice, aiortc and websockets raise their own exceptions; icepeer translates
them at its boundary (``raise ... from exc``) so that applications catch
:class:`IcepeerError` only.
"""

from __future__ import annotations

__all__ = [
    "IcepeerError",
    "ConfigError",
    "SignalingFailed",
    "ConnectFailed",
    "IceFailed",
    "DtlsFailed",
    "BadDescription",
    "FingerprintMismatch",
    "AuthenticationFailed",
    "TurnError",
    "PeerLost",
    "ChannelClosed",
    "MessageTooLarge",
]


class IcepeerError(Exception):
    """Base class of icepeer's exceptions."""


class ConfigError(IcepeerError, ValueError):
    """An option is invalid (the CLI exits with 2)."""


class SignalingFailed(IcepeerError):
    """The signaling server is unreachable, refused the join, or closed the connection."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class ConnectFailed(IcepeerError):
    """No connection to the peer within the timeout."""


class IceFailed(ConnectFailed):
    """ICE connectivity checks found no working pair."""


class BadDescription(ConnectFailed):
    """The peer sent an offer, answer or candidate that cannot be used."""


class DtlsFailed(ConnectFailed):
    """The DTLS handshake over the ICE path failed."""


class FingerprintMismatch(DtlsFailed):
    """The peer's DTLS certificate does not match the fingerprint in its SDP."""


class AuthenticationFailed(ConnectFailed):
    """With a code: the peer did not prove it knows the words, or something between us changed the SDP
    or ran DTLS in the middle (docs/security.md). Nothing was sent."""


class TurnError(IcepeerError):
    """A TURN server refused an allocation (e.g. 401: wrong credentials)."""


class PeerLost(IcepeerError):
    """The peer went away: it left, was killed, or the path died."""


class ChannelClosed(IcepeerError):
    """The channel is closed."""


class MessageTooLarge(IcepeerError, ValueError):
    """The message exceeds the maximum message size."""
