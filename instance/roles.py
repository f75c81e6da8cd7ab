"""The roles of an instance and the worker process that runs some of them.

    role        what it runs                                  processes
    web         HTTP: federation endpoints and web pages       1 or more (--web-processes)
    inbox       InboxWorker, RetentionWorker                  1 or more, any host
    delivery    DeliveryWorker                                1 or more, any host
    generation  GenerationWorker (owns the GPU), ScheduleWorker  1 per GPU

The roles share nothing but the database (and the media store): every piece of work is a
row claimed with a lease (instance/jobs.py; FOR UPDATE SKIP LOCKED on PostgreSQL), so any
number of processes of a role may drain its queue, and a process that dies loses nothing.
A process tells the others that work is waiting through instance/wakeups.py.

`dreamloom serve` starts one process per role under instance/supervisor.py; `dreamloom
worker --role ...` runs `run_worker` in the foreground (a GPU host, systemd). The
generation role loads and warms its model before it claims anything, so no request and no
other role ever waits for a model load.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from instance import heartbeats
from instance.errors import UserError
from instance.generation.schedule import ScheduleWorker
from instance.generation.worker import GenerationWorker
from instance.inbound.retention import RetentionWorker
from instance.inbound.worker import InboxWorker
from instance.outbound.delivery import DeliveryWorker
from instance.runtime import Runtime, open_runtime
from instance.settings import Settings
from instance.setup import ensure_instance
from instance.wakeups import wakeups_for
from instance.workers import Worker, Workers

log = logging.getLogger("dreamloom.roles")

WEB = "web"
ROLE_WORKERS: dict[str, list[Callable[[Runtime], Worker]]] = {
    "inbox": [InboxWorker, RetentionWorker],
    "delivery": [DeliveryWorker],
    "generation": [GenerationWorker, ScheduleWorker],
}
WORKER_ROLES = tuple(ROLE_WORKERS)
ROLES = (WEB, *WORKER_ROLES)


def worker_factories(roles: Iterable[str] = WORKER_ROLES) -> list[Callable[[Runtime], Worker]]:
    """The background workers of `roles` (all of them: what one process runs in tests)."""
    return [make for role in roles for make in ROLE_WORKERS[role]]


def parse_roles(text: str, allowed: tuple[str, ...] = ROLES) -> tuple[str, ...]:
    """"web,inbox" -> ("web", "inbox"), in ROLES order; an unknown or empty list is refused."""
    names = [part.strip().lower() for part in text.split(",") if part.strip()]
    unknown = [name for name in names if name not in allowed]
    if unknown or not names:
        what = f"unknown role {unknown[0]!r}" if unknown else "no role given"
        raise UserError(f"{what}: choose from {', '.join(allowed)} (comma-separated)")
    return tuple(role for role in allowed if role in names)


def with_concurrency(settings: Settings, roles: Iterable[str], concurrency: int | None) -> Settings:
    """`--concurrency N`: inbox items handled at once, deliveries in flight, or images per
    generation batch, for the roles this process runs."""
    if concurrency is None:
        return settings
    if concurrency < 1:
        raise UserError(f"--concurrency must be at least 1, not {concurrency}")
    fed, gen = settings.federation, settings.generator
    roles = set(roles)
    if "inbox" in roles:
        fed = dataclasses.replace(fed, inbox_concurrency=concurrency)
    if "delivery" in roles:
        fed = dataclasses.replace(fed, delivery_concurrency=concurrency)
    if "generation" in roles:
        gen = dataclasses.replace(gen, max_batch=concurrency)
    return dataclasses.replace(settings, federation=fed, generator=gen)


async def run_worker(
    settings: Settings,
    roles: tuple[str, ...],
    stop: asyncio.Event,
) -> None:
    """Run the workers of `roles` in this process until `stop` is set."""
    rt = await open_runtime(settings)
    wakeups = wakeups_for(settings)
    workers: Workers | None = None
    try:
        await ensure_instance(rt)
        workers = Workers(rt, worker_factories(roles))
        for worker in workers.workers:
            if isinstance(worker, GenerationWorker) and not await _load_model(worker, stop):
                raise StoppedWhileLoading
            if isinstance(worker, InboxWorker):
                await worker.start()
        local = rt.waker  # Workers set it: wakes this process's own workers

        def wake(queue: str) -> None:
            local(queue)
            wakeups.notify(queue)  # and every other process draining it

        rt.waker = wake
        await wakeups.listen({w.name for w in workers.workers}, workers.wake)
        await workers.start()
        log.info("Dreamloom worker running %s (pid %d)", ", ".join(roles), os.getpid(),
                 extra={"roles": list(roles), "pid": os.getpid()})  # fmt: skip
        async with beating(rt, roles, _detail(settings, roles)):
            await stop.wait()
    finally:
        if workers is not None:
            await workers.stop()
        await wakeups.aclose()
        await rt.aclose()


def _detail(settings: Settings, roles: Iterable[str]) -> dict[str, Any]:
    """What /healthz shows beside each process's heartbeat."""
    detail: dict[str, Any] = {}
    if "inbox" in roles:
        detail["inbox_concurrency"] = settings.federation.inbox_concurrency
    if "delivery" in roles:
        detail["delivery_concurrency"] = settings.federation.delivery_concurrency
    if "generation" in roles:
        detail["model"] = settings.generator.model
        detail["max_batch"] = settings.generator.max_batch
    return detail


@asynccontextmanager
async def beating(
    rt: Runtime, roles: Iterable[str], detail: dict[str, Any] | None = None
) -> AsyncIterator[None]:
    """While inside, this process's heartbeat for each of `roles` is written every
    HEARTBEAT_EVERY_S (instance/heartbeats.py); its rows are removed on the way out."""
    names = list(roles)
    started = rt.now()
    leaving = asyncio.Event()

    async def loop() -> None:
        while not leaving.is_set():
            for role in names:
                try:
                    await heartbeats.beat(rt, role, started_at=started, detail=detail)
                except SQLAlchemyError as exc:  # a busy or lost database: beat next time
                    log.warning("heartbeat of %s not written: %s", role, exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(leaving.wait(), heartbeats.HEARTBEAT_EVERY_S)

    task = asyncio.create_task(loop(), name="heartbeat")
    try:
        yield
    finally:
        leaving.set()  # never cancelled mid-write: a cancelled query strands its connection
        await task
        for role in names:
            with contextlib.suppress(SQLAlchemyError):
                await heartbeats.leave(rt, role)


class StoppedWhileLoading(Exception):
    """A stop came while the model was loading: nothing was claimed yet, and the loading
    thread cannot be interrupted, so the process may simply exit."""


async def _load_model(worker: GenerationWorker, stop: asyncio.Event) -> bool:
    """Load and warm the model; False when `stop` came first."""
    began = time.monotonic()
    model = worker.rt.settings.generator.model
    loading = asyncio.ensure_future(worker.start())
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait({loading, stopping}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    if not loading.done():
        return False
    try:
        loading.result()
    except Exception as exc:  # the supervisor (or systemd) starts us again later
        raise UserError(f"the model {model!r} could not be loaded: {exc}") from exc
    log.info("model %s loaded and warmed in %.1f s", model, time.monotonic() - began)
    return True
