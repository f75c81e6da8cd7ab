"""Generation jobs as database rows: `DbJobStore`, the generator.worker.JobStore of an instance.

Rows move through instance/jobs.py, the one claim/retry mechanism, on the generation queue's
schedule (instance/queues.py):

    queued --claim_batch--> running --complete--> done   (+ media row, + the `then` step)
                               |   \\--fail-------> failed | blocked     (reason kept)
                               '--fail(retry)--> queued at now + 30 s x 2^(attempts-1)
    running with an expired lease --requeue_stale--> queued    (the worker died)
    queued | running --`dreamloom queue cancel`--> cancelled (a running job's image is dropped)

Nothing is claimed while the admin has paused the generator (instance/generation/control.py).

`claim_batch` takes the shape key of the oldest due job, then up to N due jobs of that key in
enqueue order. `complete` and `fail` only touch a row this store claimed *and still holds*
(status running, same attempt number): a worker that lost its lease (it was presumed dead and
the job re-run elsewhere) writes nothing, so a job is published once.

`complete` writes, in ONE transaction: the job's result and status, a `MediaAttachment` (the
PNG's name in the media directory, size, hashes, blurhash, the prompt as alt text) and the
job's `then` steps (instance/generation/steps.py). A crash before the commit leaves the job
running; its lease expires and it runs again (the orphan PNG of the first run stays on disk).
A crash after it leaves nothing to redo. Before that transaction the PNG goes into the media
store (`rt.media.adopt`: uploaded from the staging dir for S3, and the staged file removed),
so no post names an image the store does not have; when that fails, the job is retried.
A step that raises does not lose the image: the media row is kept and the job is marked
failed with "image made, but <step> failed: ...".
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from generator.errors import RecipeError
from generator.recipe import GenerationResult, Recipe
from generator.worker import Job, JobId
from instance import jobs
from instance.content import renditions
from instance.content.ai_label import ai_alt_text
from instance.generation import control
from instance.generation.steps import FAILURE_STEPS, STEPS, StepContext
from instance.metrics import GENERATION_JOB_SECONDS
from instance.queues import GENERATION
from instance.runtime import Runtime
from instance.storage.models import Account, GenerationJob, MediaAttachment

log = logging.getLogger("dreamloom.generation")


def result_json(result: GenerationResult) -> dict[str, Any]:
    return {
        "file_name": result.path.name,
        "sha256": result.sha256,
        "width": result.width,
        "height": result.height,
        "blurhash": result.blurhash,
        "size_bytes": result.size_bytes,
        "media_type": result.media_type,
        "c2pa": result.c2pa,
        "recipe": result.recipe.to_json(),
        "timings": result.timings.to_json(),
    }


async def _renditions(rt: Runtime, result: GenerationResult, data: bytes) -> None:
    """The image's smaller copies for srcset; a failure only costs the lazy path."""
    try:
        await renditions.make_all(rt.media, result.path.name, data)
    except Exception:
        log.exception("the renditions of %s could not be made", result.path.name)


class DbJobStore:
    """generator.worker.JobStore over GenerationJob rows (see the module docstring)."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self._held: dict[int, int] = {}  # job id -> attempt number this store claimed

    async def claim_batch(self, limit: int, *, lease_s: float) -> list[Job]:
        now = self.rt.now()
        async with self.rt.session() as s:
            if await control.is_paused(s):  # `dreamloom generator pause`: nothing starts
                return []
            key = await s.scalar(
                select(GenerationJob.shape_key)
                .where(jobs.due(GenerationJob, now))
                .order_by(GenerationJob.id)
                .limit(1)
            )
            if key is None:
                return []
            rows = await jobs.claim(
                s, GenerationJob, GENERATION, now=now, limit=limit,
                lease=timedelta(seconds=lease_s), where=[GenerationJob.shape_key == key],
                order_by=[GenerationJob.id],
            )  # fmt: skip
        claimed: list[Job] = []
        for row in rows:
            self._held[row.id] = row.attempts
            try:
                recipe = Recipe.from_json(row.recipe)
            except RecipeError as exc:
                await self.fail(row.id, f"stored recipe is invalid: {exc}", retry=False)
                continue
            claimed.append(Job(row.id, recipe, row.attempts, row.created_at.timestamp()))
        return claimed

    async def _own(self, s: AsyncSession, job_id: JobId) -> GenerationJob | None:
        """The row, if this store still holds it; locks it (a no-op UPDATE) for the txn."""
        jid = int(job_id)
        conds = [GenerationJob.id == jid, GenerationJob.status == "running"]
        if jid in self._held:
            conds.append(GenerationJob.attempts == self._held[jid])
        res = await s.execute(
            update(GenerationJob)
            .where(*conds)
            .values(status="running")
            .execution_options(synchronize_session=False)
        )
        if res.rowcount != 1:  # type: ignore[attr-defined]
            log.warning("generation job %s is no longer ours (lease lost, cancelled)", jid)
            return None
        return await s.get(GenerationJob, jid, populate_existing=True)

    async def complete(self, job_id: JobId, result: GenerationResult) -> None:
        media_store = self.rt.media
        try:  # into the media store before any post names it (a no-op for a local store)
            data = await asyncio.to_thread(result.path.read_bytes)
            await media_store.adopt(result.path, result.media_type)
        except Exception as exc:
            log.exception("the image of generation job %s could not be stored", job_id)
            result.path.unlink(missing_ok=True)
            await self.fail(job_id, f"the image could not be stored: {exc}", retry=True)
            return
        try:
            async with self.rt.session() as s:
                row = await self._own(s, job_id)
                if row is None:
                    await media_store.delete(result.path.name)
                    return
                media = await self._record(s, row, result)
                await self._then(s, row, media, result)
            await _renditions(self.rt, result, data)
            t = result.timings
            took = round(t.load_ms + t.denoise_ms + t.decode_ms + t.encode_ms)
            GENERATION_JOB_SECONDS.observe((t.queue_ms + took) / 1000)
            log.info("generation job %s done in %d ms (%dx%d)", job_id, took, result.width,
                     result.height, extra={"job": int(job_id), "duration_ms": took})
        except Exception as exc:
            log.exception("the follow-up step of generation job %s failed", job_id)
            await self._after_step_failure(job_id, result, exc)
        finally:
            self._held.pop(int(job_id), None)

    async def _record(
        self, s: AsyncSession, row: GenerationJob, result: GenerationResult
    ) -> MediaAttachment:
        now = self.rt.now()
        media = MediaAttachment(
            account_id=row.account_id,
            file_name=result.path.name,
            media_type=result.media_type,
            width=result.width,
            height=result.height,
            blurhash=result.blurhash,
            description=ai_alt_text(result.recipe.prompt),
            size_bytes=result.size_bytes,
            sha256=result.sha256,
            created_at=now,
        )
        s.add(media)
        await s.flush()
        row.media_id = media.id
        row.result = result_json(result)
        jobs.finish(row, now)
        return media

    async def _then(
        self, s: AsyncSession, row: GenerationJob, media: MediaAttachment, r: GenerationResult
    ) -> None:
        if not row.then:
            return
        account = await s.get(Account, row.account_id)
        assert account is not None
        ctx = StepContext(s, self.rt, row, account, media, r)
        for kind, options in row.then.items():
            post = await STEPS[kind](ctx, options)
            if post is not None and row.post_id is None:
                row.post_id = post.id

    async def _after_step_failure(
        self, job_id: JobId, result: GenerationResult, exc: Exception
    ) -> None:
        """Keep the image (media row, result), fail the job with the step's error."""
        async with self.rt.session() as s:
            row = await self._own(s, job_id)
            if row is None:
                return
            await self._record(s, row, result)
            kinds = ", ".join(row.then) or "the follow-up"
            jobs.fail(row, self.rt.now(), f"image made, but {kinds} failed: {exc}")

    async def fail(self, job_id: JobId, reason: str, *, retry: bool, blocked: bool = False) -> None:
        now = self.rt.now()
        async with self.rt.session() as s:
            row = await self._own(s, job_id)
            if row is None:
                return
            delay = GENERATION.retry_delay(row.attempts) if retry else None
            log.info("generation job %s failed%s: %s", job_id,
                     ", retried later" if delay is not None else "", reason,
                     extra={"job": int(job_id), "reason": reason})
            if delay is not None:
                jobs.retry(row, now, delay, reason)
            else:
                jobs.fail(row, now, reason, status="blocked" if blocked else "failed")
                await self._on_failure(s, row, reason)
        self._held.pop(int(job_id), None)

    async def _on_failure(self, s: AsyncSession, row: GenerationJob, reason: str) -> None:
        for kind, options in (row.then or {}).items():
            if kind in FAILURE_STEPS:
                await FAILURE_STEPS[kind](s, self.rt, row, options, reason)

    async def requeue_stale(self) -> int:
        now = self.rt.now()
        async with self.rt.session() as s:
            res = await s.execute(
                update(GenerationJob)
                .where(GenerationJob.status == "running", GenerationJob.locked_until < now)
                .values(status="queued", locked_until=None, run_at=now)
                .execution_options(synchronize_session=False)
            )
        return int(res.rowcount or 0)  # type: ignore[attr-defined]
