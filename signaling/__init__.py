"""icepeer's signaling server and client, protocol v1 (docs/protocol.md)."""

import logging

from .protocol import PROTOCOL_VERSION, SUBPROTOCOL

__all__ = ["PROTOCOL_VERSION", "SUBPROTOCOL"]

logging.getLogger(__name__).addHandler(logging.NullHandler())
