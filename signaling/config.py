"""The signaling server's configuration: what ``python -m signaling`` flags set, checked."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from icecommon.urls import BadUrl, IceServerUrl, parse_ice_url

from .exceptions import ConfigError
from .turn_rest import mint

__all__ = ["ServerConfig", "MAX_TURN_TTL"]

#: Longest TURN credential lifetime the server mints (seconds): a day.
MAX_TURN_TTL = 86400.0


def _parse(url: str, option: str) -> IceServerUrl:
    try:
        return parse_ice_url(url)
    except BadUrl as exc:
        raise ConfigError(f"{option}: {exc}") from None


@dataclass
class ServerConfig:
    """Every option of the server; ``python -m signaling --help`` documents them."""

    host: str = "127.0.0.1"
    port: int = 8765
    room_size: int = 2
    max_message_size: int = 64 * 1024
    #: Frames per second a connection may send on average, and its burst.
    rate: float = 50.0
    burst: int = 200
    #: Seconds a connection may stay without joining a room (None: forever).
    join_timeout: float | None = 30.0
    ping_interval: float | None = 20.0
    ping_timeout: float | None = 20.0
    allowed_origins: Sequence[str] = ()
    certfile: str | None = None
    keyfile: str | None = None
    #: Static ICE server URLs handed to every peer (no credentials allowed).
    ice_servers: Sequence[str] = ()
    #: coturn REST shared secret; with turn_urls, credentials are minted per join.
    turn_secret: str | None = field(default=None, repr=False)
    turn_urls: Sequence[str] = ()
    #: Lifetime of minted TURN credentials: a relayed connection lasts at most this long.
    turn_ttl: float = 3600.0
    #: Open connections in all, and per address (IPv6: per /64); None: no cap.
    max_connections: int | None = 10_000
    max_per_ip: int | None = None
    #: Bytes that may wait for one connection before it is closed as too slow.
    max_send_queue: int = 256 * 1024
    #: Where /metrics is served: "main" (the websocket port), "off", or "HOST:PORT".
    metrics: str = "main"
    #: redis:// or rediss:// URL: share rooms with every server on the same Redis.
    redis: str | None = field(default=None, repr=False)
    #: Seconds without a heartbeat after which a server's peers are reaped.
    redis_node_ttl: float = 6.0

    def validate(self) -> None:
        """Raise :class:`ConfigError` for options that cannot work."""
        if not 0 <= self.port < 65536:
            raise ConfigError(f"port {self.port} out of range")
        if self.room_size < 1:
            raise ConfigError("--room-size must be at least 1")
        if self.max_message_size < 1024:
            raise ConfigError("--max-message-size must be at least 1024 bytes")
        if self.rate <= 0 or self.burst < 1:
            raise ConfigError("--rate must be positive and --burst at least 1")
        for url in self.ice_servers:
            if _parse(url, "--ice-server").username is not None:
                raise ConfigError(
                    f"--ice-server {url!r} carries a password: long-lived TURN passwords must "
                    "not reach clients; use --turn-secret with --turn-url instead"
                )
        for url in self.turn_urls:
            parsed = _parse(url, "--turn-url")
            if not parsed.is_turn or parsed.username is not None:
                raise ConfigError(f"--turn-url {url!r} must be a turn: or turns: URL without credentials")
        if bool(self.turn_secret) != bool(self.turn_urls):
            raise ConfigError("--turn-secret and --turn-url go together")
        if not 0 < self.turn_ttl <= MAX_TURN_TTL:
            raise ConfigError(
                f"--turn-ttl must be between 1 and {MAX_TURN_TTL:.0f} seconds: longer-lived TURN "
                "passwords are not handed out"
            )
        if bool(self.certfile) != bool(self.keyfile):
            raise ConfigError("--certfile and --keyfile go together")
        for name, cap in (("--max-connections", self.max_connections), ("--max-per-ip", self.max_per_ip)):
            if cap is not None and cap < 1:
                raise ConfigError(f"{name} must be at least 1 (0 on the command line: no cap)")
        if self.max_send_queue < 4096:
            raise ConfigError("--max-send-queue must be at least 4096 bytes")
        self.metrics_address()
        if self.redis is not None:
            if not self.redis.startswith(("redis://", "rediss://")):
                raise ConfigError(f"--redis {self.redis!r}: expected a redis:// or rediss:// URL")
            if self.redis_node_ttl < 2:
                raise ConfigError("--redis-node-ttl must be at least 2 seconds")

    def metrics_address(self) -> tuple[str, int] | None:
        """``(host, port)`` of a separate metrics listener, or None."""
        if self.metrics in ("main", "off"):
            return None
        host, sep, port = self.metrics.rpartition(":")
        host = host.removeprefix("[").removesuffix("]")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
            raise ConfigError(f"--metrics {self.metrics!r}: expected main, off or HOST:PORT")
        return host, int(port)

    @property
    def ice_servers_ttl(self) -> float | None:
        """How long the ``ice_servers`` handed out stay valid: the TURN credentials' TTL, if any."""
        return self.turn_ttl if self.turn_secret and self.turn_urls else None

    def ice_servers_for(self, peer_id: str) -> list[dict[str, Any]]:
        """The RTCIceServer list for one joining peer."""
        servers: list[dict[str, Any]] = [{"urls": list(self.ice_servers)}] if self.ice_servers else []
        if self.turn_secret and self.turn_urls:
            creds = mint(self.turn_secret, peer_id, self.turn_ttl)
            servers.append(
                {"urls": list(self.turn_urls), "username": creds.username, "credential": creds.password}
            )
        return servers
