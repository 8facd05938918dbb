"""icepeer: peer-to-peer connections across NATs with ICE, DTLS and SCTP."""

import logging

from .errors import (
    ChannelClosed,
    ConfigError,
    ConnectFailed,
    DtlsFailed,
    FingerprintMismatch,
    IceFailed,
    IcepeerError,
    MessageTooLarge,
    PeerLost,
    SignalingFailed,
    TurnError,
)

__version__ = "0.1.0"

__all__ = [
    "ChannelClosed",
    "ConfigError",
    "ConnectFailed",
    "DtlsFailed",
    "FingerprintMismatch",
    "IceFailed",
    "IcepeerError",
    "MessageTooLarge",
    "PeerLost",
    "SignalingFailed",
    "TurnError",
]

logging.getLogger(__name__).addHandler(logging.NullHandler())
