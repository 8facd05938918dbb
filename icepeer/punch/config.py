"""The puncher's vocabulary: its states, why it drops datagrams, its timers and limits."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .wire import OVERHEAD

__all__ = ["MAX_KEEPALIVE_INTERVAL", "PRE_CONNECT", "Ignored", "PunchConfig", "State"]

#: Keepalives at least this often: NAT UDP mappings may expire after 30 s
#: (RFC 4787 REQ-5 asks for at least 2 minutes, many home routers do less),
#: and RFC 8445 section 11 sends them every 15 s.
MAX_KEEPALIVE_INTERVAL = 15.0


class State(enum.Enum):
    GATHERING = "gathering"
    READY = "ready"
    PUNCHING = "punching"
    CONNECTED = "connected"
    CLOSED = "closed"
    FAILED = "failed"


#: The states before the connection, which the connect deadline ends.
PRE_CONNECT = (State.GATHERING, State.READY, State.PUNCHING)


class Ignored(str, enum.Enum):
    """Why a datagram was dropped (each is counted, none is fatal)."""

    FOREIGN = "foreign"        # neither a punch packet nor STUN
    MALFORMED = "malformed"    # our magic or STUN's, but undecodable
    STUN = "stun"              # a STUN message that answers none of our requests
    TOKEN = "token"            # a punch packet for another session
    INTEGRITY = "integrity"    # right token, wrong tag: forged or corrupted
    EARLY = "early"            # authentic-looking, but we cannot check it yet
    CLOSED = "closed"          # after the session ended


@dataclass(frozen=True)
class PunchConfig:
    """Timers and limits. ``None`` disables a limit."""

    punch_interval: float = 0.1
    max_tries: int | None = 30
    #: After the last try, how long to wait for a late answer before giving up.
    final_wait: float = 0.5
    #: Dead-peer detection: no authenticated packet for this long.
    dead_timeout: float | None = 10.0
    #: None: ``min(15 s, dead_timeout / 3)``, so that two lost keepalives are survivable.
    keepalive_interval: float | None = None
    #: After signaling says the peer left, how long the path may stay silent.
    peer_left_grace: float = 1.5
    stun_rto: float = 0.5
    stun_timeout: float = 3.0
    #: The largest datagram we send; 1200 bytes avoids IP fragmentation on
    #: practically every path (RFC 8085 section 3.2, QUIC's RFC 9000 section 14).
    max_packet_size: int = 1200
    max_message_size: int = 1 << 20
    window: int = 64
    min_rto: float = 0.2
    max_rto: float = 3.0

    @property
    def keepalive(self) -> float:
        if self.keepalive_interval is not None:
            return min(self.keepalive_interval, MAX_KEEPALIVE_INTERVAL)
        if self.dead_timeout is None:
            return MAX_KEEPALIVE_INTERVAL
        return min(MAX_KEEPALIVE_INTERVAL, self.dead_timeout / 3)

    @property
    def max_datagram_size(self) -> int:
        return self.max_packet_size - OVERHEAD

    @property
    def fragment_size(self) -> int:
        return self.max_packet_size - OVERHEAD - 4
