"""The TCP connection race of the signaling client, as plain asyncio: no sockets, no timing asserts."""

from __future__ import annotations

import asyncio

import pytest

from signaling.client import race


class Attempts:
    """Attempt ``n`` waits for ``gates[n]`` then returns ``n`` (or raises if the gate says so)."""

    def __init__(self, count: int) -> None:
        self.gates = [asyncio.get_running_loop().create_future() for _ in range(count)]
        self.started: list[int] = []
        self.cancelled: list[int] = []
        self.discarded: list[int] = []

    async def __call__(self, n: int) -> int:
        self.started.append(n)
        try:
            outcome = await self.gates[n]
        except asyncio.CancelledError:
            self.cancelled.append(n)
            raise
        if isinstance(outcome, BaseException):
            raise outcome
        return n

    async def until_started(self, n: int) -> None:
        """Wait (at most 2 s: a race that never starts attempt ``n`` fails here) for ``n`` attempts."""
        async with asyncio.timeout(2):
            while len(self.started) < n:
                await asyncio.sleep(0.001)

    def run(self, delay: float) -> asyncio.Task[int]:
        return asyncio.ensure_future(race(self, delay=delay, attempts=len(self.gates),
                                          discard=self.discarded.append))


async def test_one_attempt_when_the_first_answers_in_time() -> None:
    a = Attempts(3)
    task = a.run(delay=10)
    await asyncio.sleep(0)
    a.gates[0].set_result(None)
    assert await task == 0
    assert a.started == [0] and a.cancelled == [] and a.discarded == []


async def test_a_second_attempt_starts_after_the_delay_and_wins() -> None:
    a = Attempts(3)
    task = a.run(delay=0.01)
    await a.until_started(2)  # the first is "lost": its gate never opens
    a.gates[1].set_result(None)
    assert await task == 1
    # the losers are cancelled, not left running
    assert sorted(a.cancelled) == ([0, 2] if 2 in a.started else [0])


async def test_a_failed_attempt_starts_the_next_at_once() -> None:
    a = Attempts(2)
    task = a.run(delay=3600)  # the delay never passes in this test
    await asyncio.sleep(0)
    a.gates[0].set_result(ConnectionRefusedError("refused"))
    await a.until_started(2)
    a.gates[1].set_result(None)
    assert await task == 1


async def test_all_failing_raises_the_last_error() -> None:
    a = Attempts(2)
    task = a.run(delay=3600)
    await asyncio.sleep(0)
    a.gates[0].set_result(ConnectionRefusedError("first"))
    await a.until_started(2)
    a.gates[1].set_result(OSError("second"))
    with pytest.raises(OSError, match="second"):
        await task
    assert a.started == [0, 1]


async def test_a_loser_that_connected_anyway_is_discarded() -> None:
    a = Attempts(2)
    task = a.run(delay=0.01)
    await a.until_started(2)
    a.gates[0].set_result(None)
    a.gates[1].set_result(None)  # both connected in the same pass of the loop
    winner = await task
    assert a.discarded == [1 - winner]


async def test_cancelling_the_race_cancels_every_attempt() -> None:
    a = Attempts(3)
    task = a.run(delay=0.01)
    await a.until_started(3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sorted(a.cancelled) == [0, 1, 2]
