"""What port forwarding raises, below :class:`icepeer.IcepeerError`.

::

    IcepeerError
    └── ForwardError            forwarding cannot go on
        ├── HandshakeFailed     the two sides do not fit (both --listen, tcp vs udp, versions)
        └── ProtocolViolation   the peer broke the framing or the flow-control window
"""

from __future__ import annotations

from ..errors import IcepeerError

__all__ = ["ForwardError", "HandshakeFailed", "ProtocolViolation"]


class ForwardError(IcepeerError):
    """Port forwarding cannot go on."""


class HandshakeFailed(ForwardError):
    """The two sides of a forward do not fit together."""


class ProtocolViolation(ForwardError):
    """The peer sent a frame that breaks the forward protocol."""
