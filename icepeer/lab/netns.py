"""Open sockets inside a lab namespace from this process.

A socket belongs to the network namespace its creating thread was in, and
keeps it after the thread moves back. :func:`inside` moves the calling thread
into a named namespace (``setns(2)``, Linux only) and back::

    with inside("ipl3fa2c-a-h1"):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.sendto(b"x", ("198.51.100.2", 4000))   # sent from inside the namespace

Only the calling thread moves; keep the ``with`` block short and free of
``await`` (another task would run in the namespace).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from collections.abc import Iterator
from contextlib import contextmanager

from .errors import LabUnavailable

__all__ = ["inside"]

CLONE_NEWNET = 0x40000000
_libc: ctypes.CDLL | None = None


def _setns(fd: int) -> None:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise LabUnavailable(f"setns failed: {os.strerror(err)}")


@contextmanager
def inside(netns: str) -> Iterator[None]:
    """Run the block with the calling thread in network namespace ``netns``."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        target = os.open(f"/run/netns/{netns}", os.O_RDONLY)
        try:
            _setns(target)
        finally:
            os.close(target)
        try:
            yield
        finally:
            _setns(own)
    finally:
        os.close(own)
