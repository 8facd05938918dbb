"""The server's counters in Prometheus' text format, and a listener of their own.

``/metrics`` is served on the websocket port by default. ``--metrics
HOST:PORT`` moves it to a separate listener (:class:`MetricsListener`, a
minimal HTTP/1.1 responder: ``GET /metrics`` and ``GET /healthz``, nothing
else), so that a public port does not expose it; ``--metrics off`` serves it
nowhere.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from .protocol import ErrorCode

__all__ = ["Metrics", "MetricsListener", "CONTENT_TYPE"]

logger = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass
class Metrics:
    """Counters kept by the websocket layer; room figures come from the room backend."""

    connections: int = 0
    connections_total: int = 0
    errors: collections.Counter[str] = field(default_factory=collections.Counter)
    #: Connections closed at once because a cap was reached, by cap.
    refused: collections.Counter[str] = field(default_factory=collections.Counter)
    #: Connections closed because their delivery queue overflowed.
    slow_closed: int = 0

    def render(self, *, rooms: int, relayed: int, extra: list[str] | None = None) -> str:
        lines = [
            "# HELP icepeer_signaling_connections Open websocket connections.",
            "# TYPE icepeer_signaling_connections gauge",
            f"icepeer_signaling_connections {self.connections}",
            "# HELP icepeer_signaling_connections_total Websocket connections accepted.",
            "# TYPE icepeer_signaling_connections_total counter",
            f"icepeer_signaling_connections_total {self.connections_total}",
            "# HELP icepeer_signaling_rooms Rooms with at least one peer (on this process).",
            "# TYPE icepeer_signaling_rooms gauge",
            f"icepeer_signaling_rooms {rooms}",
            "# HELP icepeer_signaling_messages_relayed_total Signal frames relayed to a peer.",
            "# TYPE icepeer_signaling_messages_relayed_total counter",
            f"icepeer_signaling_messages_relayed_total {relayed}",
            "# HELP icepeer_signaling_errors_total Error frames sent, by code.",
            "# TYPE icepeer_signaling_errors_total counter",
        ]
        for code in ErrorCode:
            lines.append(
                f'icepeer_signaling_errors_total{{code="{code.value}"}} {self.errors[code.value]}'
            )
        lines += [
            "# HELP icepeer_signaling_refused_total Connections closed with 1013 at a cap, by cap.",
            "# TYPE icepeer_signaling_refused_total counter",
        ]
        for cap in ("max-connections", "max-per-ip"):
            lines.append(f'icepeer_signaling_refused_total{{cap="{cap}"}} {self.refused[cap]}')
        lines += [
            "# HELP icepeer_signaling_slow_closed_total Connections closed because they read too slowly.",
            "# TYPE icepeer_signaling_slow_closed_total counter",
            f"icepeer_signaling_slow_closed_total {self.slow_closed}",
        ]
        lines += extra or []
        return "\n".join(lines) + "\n"


class MetricsListener:
    """``GET /metrics`` and ``GET /healthz`` on an address of their own."""

    def __init__(self, host: str, port: int, render: Callable[[], str]) -> None:
        self.host = host
        self.port = port
        self._render = render
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        logger.info("metrics on http://%s:%d/metrics", self.host, self.port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(5):
                request = await reader.readuntil(b"\r\n\r\n")
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
            writer.close()
            return
        method, _, rest = request.partition(b" ")
        path = rest.partition(b" ")[0].partition(b"?")[0]
        if method != b"GET":
            status, body, ctype = "405 Method Not Allowed", "GET only\n", "text/plain"
        elif path == b"/metrics":
            status, body, ctype = "200 OK", self._render(), CONTENT_TYPE
        elif path == b"/healthz":
            status, body, ctype = "200 OK", "ok\n", "text/plain"
        else:
            status, body, ctype = "404 Not Found", "not found\n", "text/plain"
        data = body.encode()
        head = (
            f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(data)}\r\n"
            "Connection: close\r\n\r\n"
        )
        with contextlib.suppress(OSError):
            writer.write(head.encode() + data)
            await writer.drain()
        writer.close()
