"""icepeer: peer-to-peer connections across NATs with ICE, DTLS and SCTP.

The names below are imported when first used (PEP 562): ``import icepeer``
alone costs a few milliseconds, so that ``icepeer connect`` can join its
signaling room while the ICE, DTLS and SCTP modules load (docs/peer.md,
"Start-up").
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from .channel import Channel
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

#: Where each lazily imported name lives.
_LAZY = {
    "Channel": ".channel",
    "connect": ".peer",
    "Peer": ".peer",
    "PeerEvent": ".peer",
    "PathChanged": ".peer",
    "PathLost": ".peer",
    "Closed": ".peer",
    "ConnectionReport": ".report",
    "Endpoint": ".report",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'icepeer' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


logging.getLogger(__name__).addHandler(logging.NullHandler())
