"""Two SCTP endpoints (with data channels) wired together in memory, with a fake clock and loss."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from icepeer.sctp.datachannels import ChannelParameters, DataChannels


@dataclass
class Side:
    name: str
    opens: list[tuple[int, ChannelParameters, bool]] = field(default_factory=list)
    messages: list[tuple[int, str | bytes]] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    closed_channels: list[int] = field(default_factory=list)
    up: bool = False
    ended: tuple[str, bool] | None = None
    auto_read: bool = True
    channels: DataChannels = None  # type: ignore[assignment]

    # ChannelEvents
    def opened(self, stream: int, parameters: ChannelParameters, *, by_peer: bool) -> None:
        self.opens.append((stream, parameters, by_peer))

    def message(self, stream: int, data: str | bytes, size: int) -> None:
        self.messages.append((stream, data))
        self.sizes.append(size)
        if self.auto_read:
            self.channels.consumed(size)

    def channel_closed(self, stream: int) -> None:
        self.closed_channels.append(stream)

    def association_up(self) -> None:
        self.up = True

    def association_closed(self, reason: str, *, by_peer: bool) -> None:
        self.ended = (reason, by_peer)

    def read_all(self) -> None:
        for size in self.sizes:
            self.channels.consumed(size)
        self.sizes = []


class World:
    """a (DTLS client) and b (DTLS server); ``loss`` drops packets at random, ``drop`` picks them."""

    def __init__(self, *, loss: float = 0.0, seed: int = 1, delay: float = 0.01, **options: int) -> None:
        self.now = 0.0
        self.delay = delay
        self.rng = random.Random(seed)
        self.loss = loss
        self.drop: Callable[[str, bytes], bool] | None = None
        self.a, self.b = Side("a"), Side("b")
        self.a.channels = DataChannels(self.a, dtls_client=True, **options)
        self.b.channels = DataChannels(self.b, dtls_client=False, **options)
        #: (arrival time, receiver name, packet)
        self.wire: list[tuple[float, str, bytes]] = []
        self.sent = {"a": 0, "b": 0}

    def side(self, name: str) -> Side:
        return self.a if name == "a" else self.b

    def start(self) -> None:
        self.a.channels.association.start(self.now)
        self.b.channels.association.start(self.now)
        self.pump()

    def pump(self) -> None:
        """Collect what each side has to send and put it on the wire."""
        for name, other in (("a", "b"), ("b", "a")):
            association = self.side(name).channels.association
            association.flush(self.now, burst_end=True)
            for packet in association.packets():
                self.sent[name] += 1
                if self.drop is not None and self.drop(name, packet):
                    continue
                if self.loss and self.rng.random() < self.loss:
                    continue
                self.wire.append((self.now + self.delay, other, packet))

    def step(self) -> bool:
        """Advance to the next event (a packet arriving or a timer); False when nothing is left."""
        candidates = [t for t, _, _ in self.wire]
        for side in (self.a, self.b):
            deadline = side.channels.association.next_deadline()
            if deadline is not None:
                candidates.append(deadline)
        if not candidates:
            return False
        self.now = max(self.now, min(candidates))
        arrived = [item for item in self.wire if item[0] <= self.now]
        self.wire = [item for item in self.wire if item[0] > self.now]
        for _, name, packet in arrived:
            self.side(name).channels.association.receive(packet, self.now)
        for side in (self.a, self.b):
            association = side.channels.association
            deadline = association.next_deadline()
            if deadline is not None and deadline <= self.now:
                association.handle_timer(self.now)
        self.pump()
        return True

    def run(self, until: Callable[[], bool] | None = None, *, limit: float = 60.0) -> None:
        while self.now < limit:
            if until is not None and until():
                return
            if not self.step():
                return

    def connect(self) -> None:
        self.start()
        self.run(lambda: self.a.up and self.b.up, limit=10)
        assert self.a.up and self.b.up, "no association"
