"""A real redis-server (Debian package ``redis-server``) on a free loopback port.

::

    async with RedisServer() as redis:
        url = redis.url                  # redis://127.0.0.1:PORT/0
        await redis.restart()            # stop, then start empty on the same port
        await redis.stop()               # gone until start()

No persistence: a restart comes back with no data, as a Redis without
RDB/AOF does after a crash. With ``tls=(certfile, keyfile)`` it listens for
TLS only (``rediss://``).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from typing import Self

from icepeer.coturn import free_port

__all__ = ["RedisServer", "redis_server_path"]


def redis_server_path() -> str | None:
    if found := shutil.which("redis-server"):
        return found
    return "/usr/bin/redis-server" if os.access("/usr/bin/redis-server", os.X_OK) else None


class RedisServer:
    def __init__(self, *, tls: tuple[str, str] | None = None, password: str | None = None) -> None:
        self.host = "127.0.0.1"
        self.port = free_port(self.host, udp=False)
        self.tls = tls
        self.password = password
        self._dir = tempfile.TemporaryDirectory(prefix="icepeer-redis-")
        self._proc: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        scheme = "rediss" if self.tls else "redis"
        auth = f":{self.password}@" if self.password else ""
        return f"{scheme}://{auth}{self.host}:{self.port}/0"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    async def start(self) -> None:
        path = redis_server_path()
        assert path, "redis-server is not installed"
        args = [path, "--bind", self.host, "--save", "", "--appendonly", "no",
                "--dir", self._dir.name, "--daemonize", "no", "--loglevel", "warning"]
        if self.password:
            args += ["--requirepass", self.password]
        if self.tls:
            certfile, keyfile = self.tls
            args += ["--port", "0", "--tls-port", str(self.port), "--tls-cert-file", certfile,
                     "--tls-key-file", keyfile, "--tls-auth-clients", "no"]
        else:
            args += ["--port", str(self.port)]
        self._proc = await asyncio.create_subprocess_exec(
            *args, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        # Ready once it accepts a TCP connection on its port.
        async with asyncio.timeout(10):
            while True:
                if self._proc.returncode is not None:
                    raise RuntimeError(f"redis-server exited with {self._proc.returncode}")
                try:
                    _, writer = await asyncio.open_connection(self.host, self.port)
                except OSError:
                    await asyncio.sleep(0.02)
                    continue
                writer.close()
                return

    async def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.returncode is not None:
            return
        proc.kill()  # as a crash does: no chance to save anything
        await proc.wait()

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
        self._dir.cleanup()
