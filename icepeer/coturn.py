"""Run a real coturn (``turnserver``) on free ports, for the demo, tests and benchmarks.

::

    async with Coturn(users={"alice": "secret"}) as turn:
        turn.turn_url("udp", credentials=True)   # turn:alice:secret@127.0.0.1:PORT?transport=udp

Measured on Debian's coturn 4.6.1: relaying between loopback peers needs
``--allow-loopback-peers``, which makes 4.6.x exit unless ``--no-cli`` is
also given; RFC 5780 (NAT behaviour discovery) is answered only when coturn
listens on two addresses (``alt_host``); it logs nothing that says its UDP
listeners are up, so readiness is probed with a STUN Binding request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import shutil
import socket
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Self

from aioice import stun

from .errors import IcepeerError

__all__ = ["Coturn", "CoturnUnavailable", "free_port", "turnserver_path"]

logger = logging.getLogger(__name__)


class CoturnUnavailable(IcepeerError):
    """``turnserver`` is not installed, or would not start."""


def turnserver_path() -> str | None:
    """Where ``turnserver`` is installed, if it is."""
    return shutil.which("turnserver") or next(
        (p for p in ("/usr/bin/turnserver", "/usr/local/bin/turnserver") if os.path.exists(p)), None
    )


def free_port(host: str = "127.0.0.1", *, udp: bool = True, tcp: bool = True) -> int:
    """A port free for both UDP and TCP on ``host`` right now."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(100):
        with socket.socket(family, socket.SOCK_DGRAM) as u:
            u.bind((host, 0))
            port: int = u.getsockname()[1]
            if not tcp:
                return port
            try:
                with socket.socket(family, socket.SOCK_STREAM) as t:
                    t.bind((host, port))
            except OSError:
                continue
            return port
    raise OSError(f"no free port on {host}")


class Coturn:
    """A coturn process listening on ``host`` (both UDP and TCP on one port)."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        users: dict[str, str] | None = None,
        secret: str | None = None,
        realm: str = "icepeer",
        relay_ip: str | None = None,
        alt_host: str | None = None,
        allow_loopback_peers: bool = True,
        tls: tuple[str, str] | None = None,
        extra_args: Sequence[str] = (),
        netns: str | None = None,
        config_file: str | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.users = dict(users or {})
        self.secret = secret
        self.realm = realm
        self.relay_ip = relay_ip or host
        self.alt_host = alt_host
        self.allow_loopback_peers = allow_loopback_peers
        self.tls = tls
        self.tls_port: int | None = None
        self.extra_args = list(extra_args)
        self.netns = netns
        self.config_file = config_file
        self._proc: asyncio.subprocess.Process | None = None
        self._dir: tempfile.TemporaryDirectory[str] | None = None

    # -- URLs ---------------------------------------------------------------

    def _host_text(self) -> str:
        return f"[{self.host}]" if ":" in self.host else self.host

    def _auth(self, credentials: bool) -> str:
        if credentials and self.users:
            user, password = next(iter(self.users.items()))
            return f"{user}:{password}@"
        return ""

    def stun_url(self) -> str:
        return f"stun:{self._host_text()}:{self.port}"

    def turn_url(self, transport: str = "udp", *, credentials: bool = False) -> str:
        return f"turn:{self._auth(credentials)}{self._host_text()}:{self.port}?transport={transport}"

    def turns_url(self, *, credentials: bool = False) -> str:
        return f"turns:{self._auth(credentials)}{self._host_text()}:{self.tls_port}"

    @property
    def log_path(self) -> Path:
        assert self._dir is not None
        return Path(self._dir.name) / "turnserver.log"

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except (OSError, AssertionError):
            return ""

    # -- process ------------------------------------------------------------

    def command(self) -> list[str]:
        binary = turnserver_path()
        if binary is None:
            raise CoturnUnavailable(
                "coturn is not installed (no 'turnserver' on PATH): install it with "
                "'apt-get install coturn' or run the README's test command, which does"
            )
        assert self._dir is not None and self.port is not None
        min_port = random.randrange(20000, 60000, 200)
        args = [binary]
        args += ["-c", self.config_file] if self.config_file else ["-n"]
        args += [
            f"--listening-ip={self.host}",
            f"--listening-port={self.port}",
            f"--relay-ip={self.relay_ip}",
            f"--min-port={min_port}",
            f"--max-port={min_port + 199}",
            f"--realm={self.realm}",
            "--fingerprint",
            "--no-dtls",
            "--no-cli",
            f"--log-file={self.log_path}",
            "--simple-log",
            f"--pidfile={Path(self._dir.name) / 'turnserver.pid'}",
            "--no-software-attribute",
        ]
        if self.alt_host:
            args.append(f"--listening-ip={self.alt_host}")
        if self.tls:
            assert self.tls_port is not None
            args += [f"--cert={self.tls[0]}", f"--pkey={self.tls[1]}", f"--tls-listening-port={self.tls_port}"]
        else:
            args.append("--no-tls")
        if self.allow_loopback_peers:
            args.append("--allow-loopback-peers")
        if self.secret is not None:
            args += ["--use-auth-secret", f"--static-auth-secret={self.secret}"]
        elif self.users:
            args.append("--lt-cred-mech")
            args += [f"--user={u}:{p}" for u, p in self.users.items()]
        args += self.extra_args
        if self.netns:
            args = ["ip", "netns", "exec", self.netns, *args]
        return args

    async def start(self, *, timeout: float = 5.0) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="icepeer-coturn-")
        if self.port is None:
            self.port = free_port(self.host)
        if self.tls and self.tls_port is None:
            self.tls_port = free_port(self.host, udp=False)
        cmd = self.command()
        logger.debug("starting %s", " ".join(cmd))
        self._proc = await asyncio.create_subprocess_exec(
            *cmd, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            await self._wait_ready(timeout)
        except BaseException:  # noqa: BLE001 - cancelled too: stop the process, then say why
            tail = self.log_tail()
            await self.stop()
            raise CoturnUnavailable(f"turnserver did not start within {timeout}s:\n{tail}") from None
        logger.info("coturn listening on %s:%s (log %s)", self.host, self.port, self.log_path)

    async def _wait_ready(self, timeout: float) -> None:
        """Poll with STUN Binding requests (RFC 8489) until coturn answers."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        request = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST)
        if self.netns:
            # The probe must come from inside the namespace (coturn 4.6.1 logs
            # nothing that says its UDP listeners are up).
            from .lab.netns import inside

            with inside(self.netns):
                probe = socket.socket(family, socket.SOCK_DGRAM)
        else:
            probe = socket.socket(family, socket.SOCK_DGRAM)
        with probe as sock:
            sock.setblocking(False)
            loop = asyncio.get_running_loop()
            async with asyncio.timeout(timeout):
                while True:
                    if not self._alive():
                        raise CoturnUnavailable("turnserver exited")
                    with contextlib.suppress(OSError):
                        sock.sendto(bytes(request), (self.host, self.port))
                    try:
                        async with asyncio.timeout(0.1):
                            await loop.sock_recv(sock, 2048)
                        return
                    except (TimeoutError, OSError):
                        await asyncio.sleep(0.02)

    def _alive(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    async def stop(self) -> None:
        if self._proc is not None and self._proc.returncode is None:
            self._proc.terminate()
            try:
                async with asyncio.timeout(3):
                    await self._proc.wait()
            except TimeoutError:
                self._proc.kill()
                await self._proc.wait()
        self._proc = None

    async def restart(self) -> None:
        """Stop and start again on the same ports: every allocation is lost."""
        await self.stop()
        assert self._dir is not None
        self._dir.cleanup()
        await self.start()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None
