"""Run the ``icepeer`` command as a user does: subprocesses, stdin, stdout, exit codes."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from dataclasses import dataclass
from typing import Any

ICEPEER = [sys.executable, "-m", "icepeer"]


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    @property
    def events(self) -> list[dict[str, Any]]:
        """Every stdout line must be one JSON object."""
        return [json.loads(line) for line in self.stdout.splitlines()]


async def start(*args: str, env: dict[str, str] | None = None) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *ICEPEER, *args,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )


async def finish(proc: asyncio.subprocess.Process, stdin: str = "", *, linger: float = 0.0, timeout: float = 30) -> Result:
    """Feed ``stdin`` and close it after ``linger`` seconds; wait for the exit."""
    assert proc.stdin is not None
    proc.stdin.write(stdin.encode())
    await proc.stdin.drain()
    if linger:
        await asyncio.sleep(linger)
    proc.stdin.close()
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(), err.decode())


async def run(*args: str, stdin: str = "", timeout: float = 30) -> Result:
    return await finish(await start(*args), stdin, timeout=timeout)
