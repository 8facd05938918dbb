"""One cell of the lab: two peers, one mode, and what happened. No I/O.

A peer is the real CLI (``icepeer connect`` or ``icepeer punch``) with
``--json``: one JSON object per line on stdout. :class:`Transcript` reads
those lines; :class:`CellResult` is what a cell reports.
"""

from __future__ import annotations

import enum
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from .topology import STUN_IP

__all__ = ["CellResult", "Mode", "PeerReport", "Transcript", "ice_server_args"]


class Mode(str, enum.Enum):
    """How the two peers try to connect."""

    ICE = "ice"
    """ICE with STUN and TURN over UDP and TCP."""
    ICE_NO_TURN = "ice-no-turn"
    """ICE with STUN only: direct paths or nothing."""
    RELAY_ONLY = "relay-only"
    """ICE with TURN (UDP and TCP) and relay candidates only."""
    PUNCH = "punch"
    """The hole puncher, with STUN."""

    @property
    def verb(self) -> str:
        return "punch" if self is Mode.PUNCH else "connect"


def ice_server_args(mode: Mode, *, host: str = STUN_IP, port: int = 3478,
                    user: str = "lab", password: str = "lab") -> list[str]:
    """The ``--ice-server`` (and ``--relay-only``) flags of ``mode``."""
    stun = f"stun:{host}:{port}"
    turn = [f"turn:{user}:{password}@{host}:{port}?transport={t}" for t in ("udp", "tcp")]
    urls = {
        Mode.ICE: [stun, *turn],
        Mode.ICE_NO_TURN: [stun],
        Mode.RELAY_ONLY: turn,
        Mode.PUNCH: [stun],
    }[mode]
    args = [a for url in urls for a in ("--ice-server", url)]
    if mode is Mode.RELAY_ONLY:
        args.append("--relay-only")
    return args


@dataclass
class Transcript:
    """What one peer printed with ``--json``, line by line."""

    connected: dict[str, Any] | None = None
    path: dict[str, Any] | None = None
    """The latest ``path`` event: the selected path changed after ``connected``."""
    messages: list[str] = field(default_factory=list)
    closed: str | None = None
    errors: list[str] = field(default_factory=list)
    other: list[str] = field(default_factory=list)
    """Lines that were not events (a contract breach worth showing)."""

    def feed(self, line: str) -> str | None:
        """Take one stdout line; return the event name, or ``None`` for a non-event line."""
        line = line.strip()
        if not line:
            return None
        try:
            event = json.loads(line)
        except ValueError:
            event = None
        if not isinstance(event, dict) or not isinstance(event.get("event"), str):
            self.other.append(line)
            return None
        name: str = event["event"]
        if name == "connected":
            self.connected = event
        elif name == "path":
            self.path = event
        elif name == "message":
            self.messages.append(str(event.get("data", "")))
        elif name == "closed":
            self.closed = str(event.get("reason", ""))
        elif name == "error":
            self.errors.append(str(event.get("message", "")))
        return name

    @property
    def elapsed_ms(self) -> float | None:
        value = (self.connected or {}).get("elapsed_ms")
        return float(value) if isinstance(value, (int, float)) else None

    @property
    def moved_ms(self) -> float | None:
        """When the path moved off the relay, in ms after ICE connected."""
        value = (self.path or {}).get("elapsed_ms")
        if (self.path or {}).get("reason") != "direct" or not isinstance(value, (int, float)):
            return None
        return float(value)

    @property
    def relayed(self) -> bool:
        return "relay" in (self.candidate("local").get("type"), self.candidate("remote").get("type"))

    def candidate(self, side: str) -> dict[str, Any]:
        """One end of the path in use: the latest ``path`` event's, else ``connected``'s."""
        value = (self.path or self.connected or {}).get(side)
        return value if isinstance(value, dict) else {}


@dataclass(frozen=True)
class PeerReport:
    """One peer's side of a cell."""

    connected: bool
    local: str | None = None
    """``type address:port/protocol`` of the local candidate in use."""
    remote: str | None = None
    elapsed_ms: float | None = None
    sent: int = 0
    received: int = 0
    exit_code: int | None = None
    error: str | None = None
    closed: str | None = None
    """The reason of the peer's ``closed`` event."""

    @classmethod
    def from_transcript(cls, t: Transcript, *, sent: int, exit_code: int | None,
                        stderr_tail: str = "") -> PeerReport:
        def text(c: dict[str, Any]) -> str | None:
            if not c:
                return None
            return f"{c.get('type')} {c.get('address')}:{c.get('port')}/{c.get('protocol')}"

        error = "; ".join(t.errors) or None
        if error is None and exit_code not in (0, None) and not t.connected:
            error = stderr_tail.strip().splitlines()[-1] if stderr_tail.strip() else f"exit {exit_code}"
        return cls(t.connected is not None, text(t.candidate("local")), text(t.candidate("remote")),
                   t.elapsed_ms, sent, len(t.messages), exit_code, error, t.closed)


@dataclass(frozen=True)
class CellResult:
    """What ``icepeer lab run`` reports for one pair of router kinds in one mode."""

    a: str
    b: str
    mode: str
    connected: bool
    local_type: str | None = None
    """A's candidate type on the selected pair: host, srflx, prflx or relay."""
    remote_type: str | None = None
    protocol: str | None = None
    connect_ms: float | None = None
    """The slower of the two peers' ``elapsed_ms``."""
    wall_ms: float | None = None
    """From starting both processes until both said connected."""
    sent: int = 0
    lost: int = 0
    seconds: float = 0.0
    error: str | None = None
    peers: tuple[PeerReport, ...] = ()
    options: dict[str, Any] = field(default_factory=dict)
    ip_version: int | None = None
    """4 or 6: the address family of the selected pair (A's candidate)."""
    moved_ms: float | None = None
    """A relayed pair was selected first, and a direct one this long after (A's clock)."""

    @classmethod
    def from_peers(cls, a: str, b: str, mode: Mode, pa: PeerReport, pb: PeerReport, ta: Transcript,
                   *, wall_ms: float | None, seconds: float,
                   options: dict[str, Any] | None = None) -> CellResult:
        connected = pa.connected and pb.connected
        local, remote = ta.candidate("local"), ta.candidate("remote")
        times = [t for t in (pa.elapsed_ms, pb.elapsed_ms) if t is not None]
        sent = pa.sent + pb.sent
        lost = (pa.sent - pb.received) + (pb.sent - pa.received)
        error = None if connected else (pa.error or pb.error or "no connection")
        address = str(local.get("address", ""))
        version = (6 if ":" in address else 4) if connected and address else None
        return cls(a, b, mode.value, connected,
                   local.get("type") if connected else None,
                   remote.get("type") if connected else None,
                   local.get("protocol") if connected else None,
                   max(times) if connected and times else None,
                   wall_ms if connected else None, sent, max(lost, 0) if connected else sent,
                   round(seconds, 3), error, (pa, pb), dict(options or {}), version,
                   ta.moved_ms if connected else None)

    @property
    def outcome(self) -> str:
        """``direct``, ``relay`` or ``failed``."""
        if not self.connected:
            return "failed"
        return "relay" if "relay" in (self.local_type, self.remote_type) else "direct"

    @property
    def path(self) -> str | None:
        if not self.connected:
            return None
        family = ", IPv6" if self.ip_version == 6 else ""
        return f"{self.local_type} -> {self.remote_type} ({self.protocol}{family})"

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["outcome"] = self.outcome
        doc["path"] = self.path
        doc["peers"] = [asdict(p) for p in self.peers]
        return doc

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> CellResult:
        fields = {k: v for k, v in doc.items() if k not in ("outcome", "path", "peers")}
        peers = tuple(PeerReport(**p) for p in doc.get("peers", ()))
        return cls(**fields, peers=peers)

    def summary(self) -> str:
        """One line for a person."""
        name = f"{self.a} x {self.b} {self.mode}"
        if not self.connected:
            return f"{name}: FAILED after {self.seconds:.1f} s ({self.error})"
        t = f"{self.connect_ms:.0f} ms" if self.connect_ms is not None else "?"
        text = (f"{name}: {self.outcome} {self.path}, connected in {t}, "
                f"{self.lost} of {self.sent} messages lost")
        for side, p in zip("AB", self.peers):
            if p.exit_code:
                text += f"; {side} exited {p.exit_code} ({p.closed or p.error or 'no reason given'})"
        return text
