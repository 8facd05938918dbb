"""icepeer: peer-to-peer connections across NATs with ICE, DTLS and SCTP."""

import logging

from .channel import Channel
from .errors import (
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
    "IceFailed",
    "IcepeerError",
    "MessageTooLarge",
    "PeerLost",
    "SignalingFailed",
    "TurnError",
]

logging.getLogger(__name__).addHandler(logging.NullHandler())
