"""Importing modules in a thread while the event loop waits on the network.

``icepeer connect`` spends about 130 ms of its start importing what ICE, DTLS
and SCTP need (aioice, dnspython, cryptography, pyOpenSSL and icepeer's own
modules; ``python -X importtime``), and then about two round trips to the
signaling server joining its room, which needs none of it. Python imports
hold the GIL but not the kernel: while a thread imports, the loop's
socket waits go on, and the TCP and WebSocket handshakes complete
meanwhile. So the CLI starts a :class:`Warmup` of the heavy modules, joins
its room (light modules only: :mod:`icepeer.rendezvous`), and awaits the
warm-up before it builds the connection. On a path with 100 ms of round
trip that is the join's time taken off the first message (docs/benchmarks.md).

Python's per-module import locks make this safe: the main thread, importing
a module the thread is still importing, waits for it rather than seeing it
half made. The thread only imports; a module that fails to import is
imported again by the code that needs it, which then raises as usual.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import threading
from collections.abc import Iterable

__all__ = ["Warmup"]

logger = logging.getLogger(__name__)


class Warmup:
    """Import ``modules`` in a daemon thread; ``await warmup.wait()`` until they are in."""

    def __init__(self, modules: Iterable[str]) -> None:
        self._modules = tuple(modules)
        loop = asyncio.get_running_loop()
        self._done: asyncio.Future[None] = loop.create_future()
        self._thread = threading.Thread(target=self._run, args=(loop,), name="icepeer-warmup", daemon=True)
        self._thread.start()

    def _run(self, loop: asyncio.AbstractEventLoop) -> None:
        for name in self._modules:
            try:
                importlib.import_module(name)
            except Exception as exc:  # noqa: BLE001 - the code that needs the module imports it again and raises
                logger.debug("warm-up import of %s failed: %s", name, exc)
        with contextlib.suppress(RuntimeError):  # the loop is closed already: nobody waits
            loop.call_soon_threadsafe(self._finish)

    def _finish(self) -> None:
        if not self._done.done():
            self._done.set_result(None)

    async def wait(self) -> None:
        await asyncio.shield(self._done)
