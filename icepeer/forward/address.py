"""``HOST:PORT`` as the forward flags take it, without I/O."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError

__all__ = ["Endpoint", "parse_endpoint"]

DEFAULT_HOST = "127.0.0.1"


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_endpoint(text: str, *, allow_port_zero: bool = False) -> Endpoint:
    """``host:port``, ``[v6]:port``, or ``port`` alone (meaning 127.0.0.1: nothing is exposed by default)."""
    text = text.strip()
    if text.startswith("["):
        host, sep, port_text = text[1:].partition("]:")
        if not sep or not host:
            raise ConfigError(f"bad address {text!r}: expected [IPv6]:PORT")
    elif text.count(":") > 1:
        raise ConfigError(f"bad address {text!r}: put IPv6 addresses in brackets, [::1]:PORT")
    elif ":" in text:
        host, _, port_text = text.rpartition(":")
        host = host or DEFAULT_HOST
    else:
        host, port_text = DEFAULT_HOST, text
    if not port_text.isdigit():
        raise ConfigError(f"bad address {text!r}: expected HOST:PORT")
    port = int(port_text)
    if not (0 if allow_port_zero else 1) <= port <= 65535:
        lowest = "0 (any free port)" if allow_port_zero else "1"
        raise ConfigError(f"bad port in {text!r}: {lowest} to 65535")
    return Endpoint(host, port)
