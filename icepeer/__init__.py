"""icepeer: peer-to-peer connections across NATs with ICE, DTLS and SCTP."""

import logging

from .channel import Channel
from .code import Code, new_code, parse_code
from .errors import (
    AuthenticationFailed,
    BadDescription,
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
from .peer import Closed, PathChanged, PathLost, Peer, PeerEvent, connect
from .report import ConnectionReport, Endpoint

__version__ = "0.1.0"

__all__ = [
    "connect",
    "new_code",
    "parse_code",
    "Code",
    "Peer",
    "Channel",
    "ConnectionReport",
    "Endpoint",
    "PeerEvent",
    "PathChanged",
    "PathLost",
    "Closed",
    "ChannelClosed",
    "ConfigError",
    "ConnectFailed",
    "BadDescription",
    "DtlsFailed",
    "FingerprintMismatch",
    "AuthenticationFailed",
    "IceFailed",
    "IcepeerError",
    "MessageTooLarge",
    "PeerLost",
    "SignalingFailed",
    "TurnError",
]

logging.getLogger(__name__).addHandler(logging.NullHandler())
