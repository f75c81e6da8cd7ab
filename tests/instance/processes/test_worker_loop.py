"""The loop every background worker runs in (instance/workers.py): woken on new work, a
wake-up that comes while a step runs is kept, and a worker that finds nothing does not
claim again for every wake-up in a burst (at most one step per IDLE_GAP_S)."""

from __future__ import annotations

import asyncio
import time

from instance import workers
from instance.workers import Workers


class Counting:
    """A worker whose steps find nothing; it records when each step began."""

    name = "counting"

    def __init__(self, rt: object, wake_during_first: bool = False) -> None:
        self.rt = rt
        self.began: list[float] = []
        self.wake_during_first = wake_during_first

    async def run_once(self) -> int:
        self.began.append(time.monotonic())
        if self.wake_during_first and len(self.began) == 1:
            self.rt.wake("counting")  # type: ignore[attr-defined]  # work came mid-step
        return 0


async def test_a_burst_of_wake_ups_costs_an_idle_worker_a_step_per_gap(runtime) -> None:
    pool = Workers(runtime, [Counting])
    worker = pool.workers[0]
    await pool.start()
    try:
        await asyncio.sleep(0.02)
        assert len(worker.began) == 1  # the first step, at start
        burst_until = time.monotonic() + 0.25
        while time.monotonic() < burst_until:  # a web batch every millisecond, each a wake-up
            runtime.wake("counting")
            await asyncio.sleep(0.001)
        steps = len(worker.began) - 1
    finally:
        await pool.stop()
    assert 3 <= steps <= 0.25 / workers.IDLE_GAP_S + 1, worker.began  # not ~250
    gaps = [b - a for a, b in zip(worker.began, worker.began[1:], strict=False)]
    assert min(gaps) >= workers.IDLE_GAP_S * 0.9


async def test_a_wake_up_during_a_step_is_not_lost(runtime) -> None:
    """Woken while its step runs, the worker steps again after the idle gap, not after the
    poll interval."""
    pool = Workers(runtime, [lambda rt: Counting(rt, wake_during_first=True)])
    worker = pool.workers[0]
    await pool.start()
    try:
        await asyncio.sleep(workers.IDLE_GAP_S + 0.15)
    finally:
        await pool.stop()
    assert len(worker.began) >= 2, worker.began
    assert worker.began[1] - worker.began[0] < workers.POLL_SECONDS / 2
