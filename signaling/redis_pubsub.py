"""Two raw connections to Redis: one publishes in order without waiting for
replies, one is subscribed to this process's channel.

redis-py spends 70 to 100 µs of CPU on each command it awaits, and about
35 µs on each message a subscription receives (measured on the benchmark
machine, docs/benchmarks.md). With one ``PUBLISH`` per relayed frame at a
moderate rate, that was most of a server's work. :class:`Publisher` writes
``PUBLISH`` commands (:mod:`signaling.resp`) to its socket at once, in the
order given, and asks for no replies (``CLIENT REPLY OFF``);
:class:`Subscriber` hands each message's payload to a callback as its bytes
arrive. The scripts stay on redis-py.

Order per sender holds because every envelope a process sends goes through
its one :class:`Publisher`, and Redis delivers a connection's publications
to each subscriber in the order they were made. If Redis stops reading
(the socket's buffer fills) or a connection
breaks, it is dropped and ``on_lost`` is called; what was written and not
yet read by Redis may be lost, and a subscriber hears nothing published while it is
not connected (pub/sub delivers at most once).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Callable
from typing import Any

from redis.asyncio.connection import parse_url

from .resp import ReplyError, ReplyParser, RespProtocolError, encode

__all__ = ["Publisher", "Subscriber", "PubSubError"]

logger = logging.getLogger(__name__)

#: Bytes that may wait in the socket's user-space buffer.
MAX_BUFFERED = 16 * 1024 * 1024


class PubSubError(Exception):
    """A connection could not be set up, or broke."""


def _tls_context(options: dict[str, Any]) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=options.get("ssl_ca_certs"))
    if str(options.get("ssl_check_hostname", "true")).lower() in ("false", "0", "no"):
        context.check_hostname = False
    if str(options.get("ssl_cert_reqs", "required")).lower() == "none":
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class _Protocol(asyncio.Protocol):
    def __init__(self, owner: _Connection) -> None:
        self.owner = owner
        self.parser = ReplyParser()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed(data)
        except RespProtocolError as exc:
            self.owner.broken(PubSubError(f"Redis sent something that is not RESP: {exc}"), self)
            return
        for reply in self.parser.replies():
            self.owner.reply(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.owner.broken(PubSubError(f"connection to Redis lost: {exc or 'closed by Redis'}"), self)


class _Connection:
    """One connection: set up with a few commands, then replies go to :meth:`replied`."""

    name = "icepeer-signaling"

    def __init__(self, url: str, *, on_lost: Callable[[Exception], None]) -> None:
        self._options: dict[str, Any] = dict(parse_url(url))
        self._tls = url.startswith("rediss://")
        self._on_lost = on_lost
        self._protocol: _Protocol | None = None
        self._setup: asyncio.Future[list[Any]] | None = None
        self._setup_left = 0
        self._setup_replies: list[Any] = []

    @property
    def connected(self) -> bool:
        return self._protocol is not None and self._setup is None

    def _commands(self) -> list[bytes]:
        opts = self._options
        commands: list[bytes] = []
        if opts.get("password") is not None:
            if opts.get("username"):
                commands.append(encode("AUTH", opts["username"], opts["password"]))
            else:
                commands.append(encode("AUTH", opts["password"]))
        commands.append(encode("CLIENT", "SETNAME", self.name))
        return commands

    async def connect(self, timeout: float = 2.0) -> None:
        """Open the connection and set it up (AUTH, then what the kind needs)."""
        self.close()
        opts = self._options
        loop = asyncio.get_running_loop()
        host = opts.get("host", "localhost")
        tls = _tls_context(opts) if self._tls else None
        commands = self._commands()
        try:
            async with asyncio.timeout(timeout):
                _, protocol = await loop.create_connection(
                    lambda: _Protocol(self), host, int(opts.get("port", 6379)), ssl=tls,
                    server_hostname=host if tls else None,
                )
                self._protocol = protocol
                self._setup = loop.create_future()
                self._setup_left, self._setup_replies = len(commands), []
                assert protocol.transport is not None
                protocol.transport.write(b"".join(commands))
                replies = await self._setup
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            self.close()
            raise PubSubError(f"cannot connect to Redis: {exc}") from exc
        except PubSubError:
            self.close()
            raise
        finally:
            self._setup = None
        for reply in replies:
            if isinstance(reply, ReplyError):
                self.close()
                raise PubSubError(f"Redis refused the connection: {reply.message}")

    def reply(self, reply: Any) -> None:
        if self._setup is not None:
            self._setup_replies.append(reply)
            self._setup_left -= 1
            if self._setup_left == 0 and not self._setup.done():
                self._setup.set_result(self._setup_replies)
            return
        self.replied(reply)

    def replied(self, reply: Any) -> None:
        raise NotImplementedError

    def broken(self, exc: Exception, protocol: _Protocol | None = None) -> None:
        if protocol is not None and protocol is not self._protocol:
            return  # an old connection, already replaced
        was_connected = self.connected
        if self._setup is not None and not self._setup.done():
            self._setup.set_exception(exc)
        self.close()
        if was_connected:
            self._on_lost(exc)

    def close(self) -> None:
        protocol, self._protocol = self._protocol, None
        if protocol is not None and protocol.transport is not None:
            with contextlib.suppress(Exception):
                protocol.transport.abort()


class Publisher(_Connection):
    """``PUBLISH`` without waiting, over a connection of its own."""

    name = "icepeer-signaling-publisher"

    async def connect(self, timeout: float = 2.0) -> None:
        await super().connect(timeout)
        # No replies from now on: each `:1` would wake this process once per
        # message for nothing. A Redis that stops reading shows as a growing
        # buffer below; one that stops altogether, as failing heartbeats.
        assert self._protocol is not None and self._protocol.transport is not None
        self._protocol.transport.write(encode("CLIENT", "REPLY", "OFF"))

    def publish(self, messages: list[tuple[str, str]]) -> bool:
        """Write ``PUBLISH channel message`` for each pair, in order; False if not connected."""
        protocol = self._protocol
        if protocol is None or protocol.transport is None or self._setup is not None:
            return False
        transport = protocol.transport
        if transport.get_write_buffer_size() > MAX_BUFFERED:
            self.broken(PubSubError("Redis stopped reading what this process publishes"))
            return False
        transport.write(b"".join(encode("PUBLISH", channel, message) for channel, message in messages))
        return True

    def replied(self, reply: Any) -> None:
        pass  # none come after CLIENT REPLY OFF


class Subscriber(_Connection):
    """A connection subscribed to one channel; ``on_message`` gets each payload."""

    name = "icepeer-signaling-subscriber"

    def __init__(
        self, url: str, channel: str, *, on_message: Callable[[bytes], None],
        on_lost: Callable[[Exception], None],
    ) -> None:
        super().__init__(url, on_lost=on_lost)
        self.channel = channel
        self._on_message = on_message

    def _commands(self) -> list[bytes]:
        return [*super()._commands(), encode("SUBSCRIBE", self.channel)]

    def replied(self, reply: Any) -> None:
        # RESP2 pushes: ["message", channel, payload]
        if isinstance(reply, list) and len(reply) == 3 and reply[0] == b"message":
            payload = reply[2]
            if isinstance(payload, bytes):
                self._on_message(payload)
