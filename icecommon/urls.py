"""STUN and TURN server URLs (RFC 7064, RFC 7065) and RTCIceServer entries.

Grammar accepted (RFC 7064 section 3.1, RFC 7065 section 3.1)::

    stun:host[:port]            stuns:host[:port]
    turn:host[:port][?transport=udp|tcp]
    turns:host[:port][?transport=tcp]

``host`` is a name, an IPv4 address or a bracketed IPv6 address. As an
extension for command lines, TURN URLs may carry credentials before the host:
``turn:user:pass@host:port?transport=udp``. The default ports are 3478 and,
for the TLS schemes, 5349.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import unquote

__all__ = ["BadUrl", "IceServerUrl", "parse_ice_url", "parse_ice_servers"]


class BadUrl(ValueError):
    """A STUN/TURN URL or RTCIceServer entry that cannot be used; the message says why."""


_SCHEMES = {"stun": 3478, "stuns": 5349, "turn": 3478, "turns": 5349}
_HOST_RE = re.compile(r"\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+")


@dataclass(frozen=True)
class IceServerUrl:
    scheme: str
    host: str
    port: int
    transport: str = "udp"
    username: str | None = None
    password: str | None = None

    @property
    def is_turn(self) -> bool:
        return self.scheme in ("turn", "turns")

    @property
    def secure(self) -> bool:
        return self.scheme in ("stuns", "turns")

    def url(self, *, credentials: bool = False) -> str:
        """The URL in RFC form (credentials only when asked for)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        auth = ""
        if credentials and self.username is not None:
            auth = f"{self.username}:{self.password or ''}@"
        text = f"{self.scheme}:{auth}{host}:{self.port}"
        if self.scheme == "turn":
            text += f"?transport={self.transport}"
        return text

    def __str__(self) -> str:
        return self.url()


def parse_ice_url(text: str) -> IceServerUrl:
    """Parse one STUN/TURN URL; raise :class:`BadUrl` if it is not one."""
    if not isinstance(text, str) or ":" not in text:
        raise BadUrl(f"not a STUN/TURN URL: {text!r} (expected e.g. stun:host:3478)")
    scheme, _, rest = text.partition(":")
    scheme = scheme.lower()
    if scheme not in _SCHEMES:
        raise BadUrl(f"unknown scheme {scheme!r} in {text!r}: use stun, stuns, turn or turns")
    rest = rest.removeprefix("//")
    rest, _, query = rest.partition("?")
    username = password = None
    if "@" in rest:
        auth, _, rest = rest.rpartition("@")
        if scheme not in ("turn", "turns"):
            raise BadUrl(f"credentials belong to TURN URLs only: {text!r}")
        user, sep, pwd = auth.partition(":")
        if not user or not sep:
            raise BadUrl(f"credentials must be user:password@ in {text!r}")
        username, password = unquote(user), unquote(pwd)
    match = _HOST_RE.match(rest)
    if not match:
        raise BadUrl(f"missing host in {text!r}")
    host = match.group(0)
    tail = rest[match.end():]
    port = _SCHEMES[scheme]
    if tail:
        if not re.fullmatch(r":[0-9]{1,5}", tail) or not 0 < int(tail[1:]) < 65536:
            raise BadUrl(f"bad port in {text!r}")
        port = int(tail[1:])
    transport = "tcp" if scheme in ("stuns", "turns") else "udp"
    if query:
        key, _, value = query.partition("=")
        if scheme not in ("turn", "turns") or key != "transport" or value not in ("udp", "tcp"):
            raise BadUrl(f"bad query {query!r} in {text!r}: only turn URLs take ?transport=udp|tcp")
        if scheme == "turns" and value == "udp":
            raise BadUrl(f"TURN over DTLS is not supported: {text!r}")
        transport = value
    return IceServerUrl(scheme, host.strip("[]"), port, transport, username, password)


def parse_ice_servers(entries: list[dict[str, Any]] | tuple[dict[str, Any], ...]) -> list[IceServerUrl]:
    """Flatten an RTCIceServer list (``{"urls", "username", "credential"}``) into URLs."""
    out: list[IceServerUrl] = []
    for entry in entries:
        if not isinstance(entry, dict):
            raise BadUrl(f"an ICE server entry must be an object, got {entry!r}")
        urls = entry.get("urls", [])
        if isinstance(urls, str):
            urls = [urls]
        if not isinstance(urls, list) or not urls:
            raise BadUrl(f"an ICE server entry needs 'urls': {entry!r}")
        for url in urls:
            parsed = parse_ice_url(url)
            if parsed.is_turn and parsed.username is None and "username" in entry:
                parsed = replace(
                    parsed,
                    username=str(entry["username"]),
                    password=str(entry.get("credential", "")),
                )
            out.append(parsed)
    return out
