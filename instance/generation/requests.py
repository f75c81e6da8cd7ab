"""Asking for an image: `enqueue()` is the one way a generation job is made (CLI, web pages,
mentions, remixes, schedules).

It writes a `GenerationJob` row in the caller's transaction; the GPU worker
(instance/generation/worker.py) claims it through `DbJobStore` (store.py), writes the PNG,
and runs the job's `then` step (then.py, steps.py) in the transaction that marks it done.
A prompt becomes a recipe as recipes.py says; a ready Recipe (reproduce, remix) is used as
given, on this instance's model.

Refusals (`GenerationRefused` subclasses in instance/errors.py, with an HTTP status for the
web pages):

- `InvalidGenerationRequest` (400): the recipe's or the `then` step's validation message, or
  a prompt longer than the model's tokenizer takes (it would be silently truncated);
- `LowDiskError` (503): less than `[generator] min_free_disk_mb` free;
- `QueueFullError` (503 + Retry-After): `[generator] max_queue` jobs queued or running.

The queue bound holds exactly: the new row is inserted *before* the jobs are counted, and the
row is removed again when the count is over the cap. On SQLite the insert takes the database's
single write lock, which is held until the caller commits, so concurrent enqueues count one
after another; on PostgreSQL a transaction-scoped advisory lock does the same. (A prompt too
long for a tokenizer that is not on disk yet is found by the worker, which has it: the job
fails with "prompt too long: N tokens, max 77".)
"""

from __future__ import annotations

import shutil
from typing import Any

from sqlalchemy import event, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from generator.recipe import Recipe
from instance.errors import LowDiskError, QueueFullError
from instance.generation.recipes import build_recipe, check_prompt_tokens, for_this_instance
from instance.generation.then import validate_then
from instance.runtime import Runtime
from instance.settings import Settings
from instance.storage.media_store import make_media_store
from instance.storage.models import Account, GenerationJob

MiB = 1024 * 1024
ACTIVE = ("queued", "running")
_PG_QUEUE_LOCK = 0x64726C6D  # "drlm": one advisory lock key for the generation queue


def check_disk(settings: Settings) -> None:
    """LowDiskError when the disk the generator writes to (the media dir, or S3's staging
    dir) has less than min_free_disk_mb free."""
    need = settings.generator.min_free_disk_mb
    path = make_media_store(settings).staging_dir
    path.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(path).free // MiB
    if free < need:
        raise LowDiskError(
            f"not enough disk space for new images: {free} MiB free in {path}, "
            f"[generator] min_free_disk_mb is {need}; free some space and try again"
        )


async def active_count(session: AsyncSession) -> int:
    return int(
        await session.scalar(
            select(func.count()).select_from(GenerationJob).where(GenerationJob.status.in_(ACTIVE))
        )
        or 0
    )


async def enqueue(
    session: AsyncSession,
    rt: Runtime,
    account: Account,
    request: str | Recipe,
    *,
    seed: int | None = None,
    steps: int | None = None,
    size: tuple[int, int] | None = None,
    negative: str | None = None,
    then: dict[str, Any] | None = None,
    requested_by: str | None = None,
) -> GenerationJob:
    """Queue a generation job for `account` in the caller's transaction (the caller commits).

    `request` is a prompt or a ready Recipe (with `seed`/`steps`/`size`/`negative` applied on
    top). `then` is what to do with the image (then.py); `requested_by` the actor URI of
    whoever asked. Raises a GenerationRefused subclass.
    """
    settings = rt.settings
    asked = request.prompt if isinstance(request, Recipe) else request.strip()
    then = validate_then(then or {}, asked)
    if isinstance(request, Recipe):
        width, height = size if size is not None else (None, None)
        recipe = for_this_instance(
            request, seed=seed, steps=steps, width=width, height=height, negative_prompt=negative
        )
    else:
        recipe = build_recipe(
            settings, account, request, seed=seed, steps=steps, size=size, negative=negative
        )
    check_prompt_tokens(settings, recipe)
    check_disk(settings)
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_QUEUE_LOCK})
    now = rt.now()
    job = GenerationJob(
        account_id=account.id,
        requested_by=requested_by,
        recipe=recipe.to_json(),
        shape_key=recipe.shape_key(),
        then=then,
        status="queued",
        run_at=now,
        created_at=now,
    )
    session.add(job)
    await session.flush()  # the insert first: on SQLite this takes the write lock
    active = await active_count(session)
    if active > settings.generator.max_queue:
        await session.delete(job)
        await session.flush()
        raise QueueFullError(
            f"the generation queue is full ({active - 1} jobs queued or running, "
            f"[generator] max_queue is {settings.generator.max_queue}); "
            f"try again in a minute or two"
        )
    _wake_after_commit(session, rt)
    return job


def _wake_after_commit(session: AsyncSession, rt: Runtime) -> None:
    """Nudge the generation worker once the job is visible to it."""
    event.listen(session.sync_session, "after_commit", lambda _s: rt.wake("generation"),
                 once=True)  # fmt: skip
