"""The socket side of a punched connection: a UDP endpoint and the session's clock.

Datagrams that reach the socket go into the :class:`~.session.PunchSession`
with the loop's time; what the session wants sent goes out; its next
deadline becomes a timer. After each step the session's events are handed to
whoever runs the pump (:class:`~.link.PunchLink`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from .events import Event
from .session import PunchSession

__all__ = ["Endpoint", "Pump"]

logger = logging.getLogger(__name__)

Address = tuple[str, int]


class Endpoint(asyncio.DatagramProtocol):
    """The UDP socket's protocol: datagrams go to the pump, write pressure to ``writable``."""

    def __init__(self) -> None:
        self.pump: Pump | None = None
        #: Clear while the socket's buffer is full.
        self.writable = asyncio.Event()
        self.writable.set()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if self.pump is not None:
            self.pump.datagram(data, (str(addr[0]), int(addr[1])))

    def error_received(self, exc: Exception) -> None:
        # ICMP errors (port unreachable while the peer's socket is not there
        # yet, or any more): expected while punching, never fatal.
        logger.debug("socket error (ignored): %s", exc)

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()


class Pump:
    """Runs ``session`` on a socket; ``on_events`` gets its events after every step."""

    def __init__(self, session: PunchSession, transport: asyncio.DatagramTransport,
                 endpoint: Endpoint, on_events: Callable[[list[Event]], None]) -> None:
        self._session = session
        self._transport = transport
        self._endpoint = endpoint
        self._on_events = on_events
        self._loop = asyncio.get_running_loop()
        self._timer: asyncio.TimerHandle | None = None
        endpoint.pump = self

    @property
    def writable(self) -> asyncio.Event:
        return self._endpoint.writable

    @property
    def local_address(self) -> Address:
        host, port = self._transport.get_extra_info("sockname")[:2]
        return str(host), int(port)

    def now(self) -> float:
        """The clock the session runs on."""
        return self._loop.time()

    def datagram(self, data: bytes, addr: Address) -> None:
        self._session.datagram_received(data, addr, self.now())
        self.step()

    def step(self) -> None:
        """Send what the session wants sent, hand its events over, re-arm the timer.

        Call it after every input to the session.
        """
        if not self._transport.is_closing():
            for data, addr in self._session.datagrams_to_send():
                self._transport.sendto(data, addr)
        else:
            self._session.datagrams_to_send()
        self._on_events(self._session.events_received())
        self._cancel_timer()
        deadline = self._session.next_deadline()
        if deadline is not None:
            self._timer = self._loop.call_at(deadline, self._on_timer)

    def close(self) -> None:
        """Stop the timer and close the socket (idempotent)."""
        self._cancel_timer()
        if not self._transport.is_closing():
            self._transport.close()

    def abort(self) -> None:
        """Close the socket at once, as a crash would."""
        self._transport.abort()

    def _on_timer(self) -> None:
        self._timer = None
        self._session.handle_timer(self.now())
        self.step()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
