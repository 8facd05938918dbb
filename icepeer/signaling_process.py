"""Run the signaling server (``python -m signaling``) as a child process, for the demo.

::

    async with SignalingProcess() as server:
        server.url          # ws://127.0.0.1:PORT

icepeer talks to the server only through its protocol and client, as any
peer on another machine would: it starts the real command, waits for the
machine-readable first line (``listening on ws://...``) and stops it with
SIGTERM, which the server answers by closing every connection with 1001.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Sequence
from typing import Self

from .errors import IcepeerError

__all__ = ["SignalingProcess", "SignalingDidNotStart"]

logger = logging.getLogger(__name__)


class SignalingDidNotStart(IcepeerError):
    """``python -m signaling`` exited or said nothing within the timeout."""


class SignalingProcess:
    """``python -m signaling`` on ``host`` and a free port (or ``port``)."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, extra_args: Sequence[str] = ()) -> None:
        self.host = host
        self.port = port
        self.extra_args = list(extra_args)
        self.url = ""
        self._proc: asyncio.subprocess.Process | None = None

    async def start(self, timeout: float = 15.0) -> None:
        cmd = [sys.executable, "-m", "signaling", "--host", self.host, "--port", str(self.port),
               "--log-level", "warning", *self.extra_args]
        self._proc = await asyncio.create_subprocess_exec(
            *cmd, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert self._proc.stdout is not None and self._proc.stderr is not None
        try:
            async with asyncio.timeout(timeout):
                line = (await self._proc.stdout.readline()).decode(errors="replace").strip()
        except TimeoutError:
            await self.stop()
            raise SignalingDidNotStart(f"the signaling server said nothing within {timeout:g} s") from None
        if not line.startswith("listening on "):
            err = (await self._proc.stderr.read()).decode(errors="replace").strip()
            await self.stop()
            raise SignalingDidNotStart(f"the signaling server did not start: {err or line or 'no output'}")
        self.url = line.removeprefix("listening on ")
        logger.info("signaling server on %s", self.url)

    async def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.returncode is not None:
            return
        proc.terminate()
        try:
            async with asyncio.timeout(3):
                await proc.wait()
        except TimeoutError:
            proc.kill()
            await proc.wait()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
