"""What a connection did: the selected path, the candidates, the checks, the timings."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aioice.ice import CandidatePair

    from .gathering import AgentStats

__all__ = ["Endpoint", "ConnectionReport", "endpoints"]


@dataclass(frozen=True)
class Endpoint:
    """One end of the selected candidate pair."""

    type: str  # host, srflx, prflx, relay
    address: str
    port: int
    #: How packets leave this machine: udp, or tcp/tls for a relay reached over TURN/TCP or TLS.
    protocol: str = "udp"
    #: For a relay candidate, the TURN server it was allocated from.
    server: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {"type": self.type, "address": self.address, "port": self.port, "protocol": self.protocol}
        if self.server:
            out["server"] = self.server
        return out


@dataclass
class ConnectionReport:
    room: str
    role: str | None = None
    local: Endpoint | None = None
    remote: Endpoint | None = None
    #: Local candidates gathered, by type.
    gathered: dict[str, int] = field(default_factory=dict)
    #: Remote candidates received, by type.
    remote_candidates: dict[str, int] = field(default_factory=dict)
    checks_sent: int = 0
    checks_answered: int = 0
    consent_sent: int = 0
    consent_answered: int = 0
    rtt_ms: float | None = None
    #: Milliseconds since connect() started, per phase.
    timings_ms: dict[str, float] = field(default_factory=dict)
    #: STUN/TURN servers that gave no candidate, with the reason.
    server_failures: dict[str, str] = field(default_factory=dict)
    #: STUN/TURN servers still being asked when the connection was made: not waited for.
    servers_abandoned: list[str] = field(default_factory=list)
    ice_restarts: int = 0
    malformed_stun: int = 0
    foreign_packets: int = 0
    #: Which accelerations both sides had: SNAP, SPED, pre-agreed channels (docs/peer.md).
    accelerated: dict[str, bool] = field(default_factory=dict)

    @property
    def phases(self) -> list[tuple[str, float, float | None]]:
        """Each phase after the peer was found: its name, its milliseconds, and those in round trips
        of the path (the checks' RTT); the phases before go through the signaling server."""
        out: list[tuple[str, float, float | None]] = []
        previous: float | None = None
        for name, at in self.timings_ms.items():
            if previous is not None and name not in ("joined", "peer_found"):
                took = at - previous
                rtt = self.rtt_ms
                out.append((name, round(took, 1), round(took / rtt, 1) if rtt else None))
            previous = at
        return out

    def add_agent(self, stats: AgentStats) -> None:
        """Take the counters of the current ICE agent."""
        self.gathered = dict(stats.gathered)
        self.checks_sent, self.checks_answered = stats.checks_sent, stats.checks_answered
        self.consent_sent, self.consent_answered = stats.consent_sent, stats.consent_answered
        self.rtt_ms = round(stats.rtt * 1000, 2) if stats.rtt is not None else None
        self.server_failures = {f.server: f.reason for f in stats.failures}
        self.servers_abandoned = list(stats.abandoned)
        self.malformed_stun, self.foreign_packets = stats.malformed, stats.foreign

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["local"] = self.local.to_dict() if self.local else None
        out["remote"] = self.remote.to_dict() if self.remote else None
        out["phases"] = [{"phase": n, "ms": ms, "round_trips": rt} for n, ms, rt in self.phases]
        return out

    @property
    def path(self) -> str:
        if not self.local or not self.remote:
            return "not connected"
        return f"{self.local.type} -> {self.remote.type} over {self.local.protocol}"

    def describe(self) -> str:
        """A few lines for a person."""
        lines = [f"room {self.room}, {self.role or 'no'} role, path {self.path}"]
        if self.local and self.remote:
            lines.append(
                f"  local  {self.local.type:5} {self.local.address}:{self.local.port}"
                + (f" via {self.local.server}" if self.local.server else "")
            )
            lines.append(f"  remote {self.remote.type:5} {self.remote.address}:{self.remote.port}")
        gathered = ", ".join(f"{n} {t}" for t, n in sorted(self.gathered.items())) or "none"
        remote = ", ".join(f"{n} {t}" for t, n in sorted(self.remote_candidates.items())) or "none"
        lines.append(f"  candidates: gathered {gathered}; received {remote}")
        rtt = f", rtt {self.rtt_ms:.1f} ms" if self.rtt_ms is not None else ""
        lines.append(f"  checks: {self.checks_answered}/{self.checks_sent} answered{rtt}")
        if self.timings_ms:
            lines.append("  timings: " + ", ".join(f"{k} {v:.0f} ms" for k, v in self.timings_ms.items()))
        if self.phases:
            lines.append("  phases: " + ", ".join(
                f"{n} {ms:.0f} ms" + (f" ({rt:g} RTT)" if rt is not None else "") for n, ms, rt in self.phases))
        if self.accelerated:
            used = [k for k, v in self.accelerated.items() if v]
            lines.append("  handshake: " + (f"accelerated ({', '.join(used)})" if used else "standard"))
        for server, reason in self.server_failures.items():
            lines.append(f"  no candidate from {server}: {reason}")
        if self.ice_restarts:
            lines.append(f"  ICE restarts: {self.ice_restarts}")
        return "\n".join(lines)


def endpoints(pair: CandidatePair) -> tuple[Endpoint, Endpoint]:
    """Both ends of a selected candidate pair, with the TURN server of a relay."""
    local = pair.local_candidate
    turn_url = getattr(pair.protocol, "turn_url", None)
    mine = Endpoint(
        type=local.type,
        address=local.host,
        port=local.port,
        protocol=("tls" if turn_url.secure else turn_url.transport) if turn_url else "udp",
        server=f"{turn_url.host}:{turn_url.port}" if turn_url else None,
    )
    remote = pair.remote_candidate
    return mine, Endpoint(type=remote.type, address=remote.host, port=remote.port)
