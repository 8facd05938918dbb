"""Run a program's main coroutine on uvloop where it is installed (Linux), else on asyncio's loop.

uvloop reads many datagrams per pass of the loop where asyncio's own loop
reads one, and sends and receives each for a fraction of the cost
(docs/benchmarks.md). The icepeer CLI runs on it; the library itself
works on any asyncio loop. ``ICEPEER_LOOP=asyncio`` chooses asyncio's own
loop. (The signaling server stays on asyncio's: its Redis connections
lose their link on uvloop, a fault not chased yet.)
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["run", "loop_name"]

T = TypeVar("T")


def _factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    if os.environ.get("ICEPEER_LOOP", "").lower() == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def loop_name() -> str:
    return "uvloop" if _factory() is not None else "asyncio"


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)``, on uvloop when available."""
    with asyncio.Runner(loop_factory=_factory()) as runner:
        return runner.run(main)
