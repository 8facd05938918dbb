"""Exceptions raised by the signaling package.

::

    SignalingError
    ├── ProtocolError          a frame broke protocol v1 (carries the error code)
    ├── ServerRefused          the server answered {"type": "error"} (room-full, ...)
    ├── SignalingUnavailable   the server could not be reached or went away
    └── ConfigError            a bad server option (ICE server URL, TLS files, ...)
"""

from __future__ import annotations

__all__ = [
    "SignalingError",
    "ProtocolError",
    "ServerRefused",
    "SignalingUnavailable",
    "ConfigError",
]


class SignalingError(Exception):
    """Base class of every error raised by :mod:`signaling`."""


class ProtocolError(SignalingError):
    """A frame is not valid protocol v1. ``code`` is the error code to answer."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = str(getattr(code, "value", code))
        self.message = message


class ServerRefused(SignalingError):
    """The server answered an ``error`` frame, e.g. ``room-full``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"signaling server refused: {message} ({code})")
        self.code = code
        self.message = message


class SignalingUnavailable(SignalingError):
    """The signaling server could not be reached, or closed the connection."""


class ConfigError(SignalingError):
    """An option of the server is invalid."""
