"""Port forwarding over a peer connection: TCP streams and UDP flows (``icepeer forward``).

Layers: :mod:`.framing` (wire format), :mod:`.window` (flow control) and
:mod:`.flows` (the UDP flow table) hold the logic without I/O;
:mod:`.tcp`, :mod:`.udp` and :mod:`.session` are asyncio glue. The protocol
is described in ``docs/transfer.md``.
"""

from __future__ import annotations

from .address import Endpoint, parse_endpoint
from .errors import ForwardError, HandshakeFailed, ProtocolViolation
from .flows import Flow, FlowTable
from .framing import Hello, Mode, Transport
from .session import ForwardConfig, Forwarder
from .tcp import StreamStats
from .window import DEFAULT_WINDOW, ReceiveWindow, SendCredit

__all__ = [
    "DEFAULT_WINDOW",
    "Endpoint",
    "Flow",
    "FlowTable",
    "ForwardConfig",
    "ForwardError",
    "Forwarder",
    "HandshakeFailed",
    "Hello",
    "Mode",
    "ProtocolViolation",
    "ReceiveWindow",
    "SendCredit",
    "StreamStats",
    "Transport",
    "parse_endpoint",
]
