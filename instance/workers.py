"""Background workers: one asyncio task per worker, woken on new work.

A worker is anything with `name` (its queue's name, instance/queues.py) and
`async run_once() -> int` (work done this step; tests call it directly and never sleep).
`Workers` runs each in a loop: after a step that did nothing it waits for `rt.wake(name)` or
the poll interval, so rows written by another process (the CLI) are picked up too. A wake-up
that comes during a step is kept (the event is cleared before the step, not after it), and
a step that did nothing is followed by another no sooner than IDLE_GAP_S later, however
often the worker is woken: with two inbox processes and one sending actor, whose items only
one process may hold at a time (instance/inbound/claim.py), the other was woken by each of
the web's batches and ran an empty claim for each of them (six statements), taking the CPU
the web and the busy process needed. An idle worker still starts at once when woken; work
that arrives right after an empty step waits at most IDLE_GAP_S. Which workers an instance
runs, and in which role's process, is instance/roles.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Protocol

from instance.runtime import Runtime

log = logging.getLogger("dreamloom.workers")
POLL_SECONDS = 1.0
IDLE_GAP_S = 0.05
STOP_GRACE_S = 10.0  # under the supervisor's own grace before it kills a process


class Worker(Protocol):
    name: str

    async def run_once(self) -> int: ...


class Workers:
    def __init__(self, rt: Runtime, factories: list[Callable[[Runtime], Worker]]) -> None:
        self.rt = rt
        self.workers = [make(rt) for make in factories]
        self.events = {w.name: asyncio.Event() for w in self.workers}
        self.tasks: list[asyncio.Task[None]] = []
        self.stopping = asyncio.Event()
        rt.waker = self.wake

    def wake(self, name: str | None = None) -> None:
        for worker_name, event in self.events.items():
            if name is None or name == worker_name:
                event.set()

    async def start(self) -> None:
        for worker in self.workers:
            self.tasks.append(asyncio.create_task(self._loop(worker), name=worker.name))

    async def _loop(self, worker: Worker) -> None:
        event = self.events[worker.name]
        while not self.stopping.is_set():
            event.clear()  # a wake-up during the step below is not lost
            try:
                done = await worker.run_once()
            except Exception:
                log.exception("worker %s step failed", worker.name)
                done = 0
            if done:
                continue
            await asyncio.sleep(IDLE_GAP_S)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), POLL_SECONDS - IDLE_GAP_S)

    async def stop(self) -> None:
        """Let each worker finish its step (a task cancelled mid-query strands its database
        connection, which the pool then resets from the garbage collector with a logged
        traceback), for at most STOP_GRACE_S; only then cancel what is left."""
        self.stopping.set()
        self.wake()
        if self.tasks:
            _, late = await asyncio.wait(self.tasks, timeout=STOP_GRACE_S)
            for task in late:
                task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        close = [getattr(w, "aclose", None) for w in self.workers]
        await asyncio.gather(*(c() for c in close if c), return_exceptions=True)
