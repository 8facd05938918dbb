"""The delay line's process: it joins pairs of TAP devices, holding each frame for its delay.

A delayed uplink is two TAP devices (made by the lab's build, ``ip tuntap
add ... mode tap``): one is the site's WAN interface, the other a port of
the public bridge. Nothing joins them but this process: it attaches to both
(``open("/dev/net/tun")`` inside the device's namespace, then
``ioctl(TUNSETIFF)`` with ``IFF_TAP | IFF_NO_PI``, the kernel's
Documentation/networking/tuntap.rst), reads each frame one side sends, and
writes it to the other when :class:`~icepeer.lab.delayline.Direction` says.
One process serves every link of a lab, on one thread with ``epoll``.

::

    python -m icepeer.lab.wire '[{"a_ns": ..., "a_dev": ..., "b_ns": ..., "b_dev": ..., "delay_ms": 5}]'

It prints ``ready`` once every device is attached and runs until its stdin
closes (the lab closing it, or the lab's process dying) or SIGTERM. It only
ever writes frames to the lab's own TAP devices: it opens no socket.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import signal
import struct
import sys
import time
from collections.abc import Sequence

from .delayline import Direction, WireSpec
from .netns import inside

__all__ = ["attach", "main", "serve"]

TUNSETIFF = 0x400454CA  # _IOW('T', 202, int), linux/if_tun.h
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
FRAME = 65536
BURST = 64  # frames read from one device before looking at the others


def attach(netns: str, dev: str) -> int:
    """A non-blocking file descriptor for the existing TAP device ``dev`` in ``netns``."""
    # A tun file belongs to the namespace it was opened in, and TUNSETIFF
    # looks the device up there.
    with inside(netns):
        fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", dev.encode(), IFF_TAP | IFF_NO_PI))
    except OSError:
        os.close(fd)
        raise
    return fd


def serve(specs: Sequence[WireSpec], control: int) -> None:
    """Forward frames between each spec's two devices until ``control`` reaches end of file."""
    ends: dict[int, tuple[Direction, int]] = {}
    for spec in specs:
        a, b = attach(spec.a_ns, spec.a_dev), attach(spec.b_ns, spec.b_dev)
        ends[a] = (Direction(spec.delay_ms, spec.jitter_ms), b)
        ends[b] = (Direction(spec.delay_ms, spec.jitter_ms), a)
    poller = select.epoll()
    for fd in ends:
        poller.register(fd, select.EPOLLIN)
    poller.register(control, select.EPOLLIN)
    print("ready", flush=True)
    directions = list(ends.values())
    while True:
        dues = [d.next_due for d, _ in directions if d.next_due is not None]
        timeout = max(0.0, min(dues) - time.monotonic()) if dues else None
        for fd, _ in poller.poll(timeout):
            if fd == control:
                if not os.read(control, 4096):
                    return
                continue
            direction, out = ends[fd]
            for _ in range(BURST):
                try:
                    frame = os.read(fd, FRAME)
                except BlockingIOError:
                    break
                if not direction.push(frame, time.monotonic()):
                    _write(out, frame)
        now = time.monotonic()
        for direction, out in directions:
            for frame in direction.pop_due(now):
                _write(out, frame)


def _write(fd: int, frame: bytes) -> None:
    # A device going away (the lab being removed) loses the frame, as a cut cable does.
    with contextlib.suppress(OSError):
        os.write(fd, frame)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m icepeer.lab.wire SPECS_JSON", file=sys.stderr)
        return 2
    specs = [WireSpec.from_json(d) for d in json.loads(args[0])]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    # The wire is the network: the peers' CPU load must not stretch its delays.
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, 0, -10)
    try:
        serve(specs, sys.stdin.fileno())
    except OSError as exc:
        print(f"wire: {exc}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
