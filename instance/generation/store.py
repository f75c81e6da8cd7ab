"""Generation jobs as database rows: `DbJobStore` (generator.worker.JobStore) and `then` steps.

Rows move through instance/jobs.py, the one claim/retry mechanism:

    queued --claim_batch--> running --complete--> done   (+ media row, + the `then` step)
                               |   \\--fail-------> failed | blocked     (reason kept)
                               '--fail(retry)--> queued at now + 30 s x 2^(attempts-1)
    running with an expired lease --requeue_stale--> queued    (the worker died)

`claim_batch` takes the shape key of the oldest due job, then up to N due jobs of that key in
enqueue order. `complete` and `fail` only touch a row this store claimed *and still holds*
(status running, same attempt number): a worker that lost its lease (it was presumed dead and
the job re-run elsewhere) writes nothing, so a job is published once.

`complete` writes, in ONE transaction: the job's result and status, a `MediaAttachment` (the
PNG's name in the media directory, size, hashes, blurhash, the prompt as alt text) and the
job's `then` step. A crash before the commit leaves the job running; its lease expires and it
runs again (the orphan PNG of the first run stays on disk). A crash after it leaves nothing to
redo. A `then` step that raises does not lose the image: the media row is kept and the job is
marked failed with "image made, but <step> failed: ...".

`then` steps: a job's `then` is a dict {kind: options}; each kind names an async function
`step(ctx: StepContext, options: dict) -> Post | None` in `THEN_STEPS` (by "module:function",
imported when run, so any process's worker can run any job). Options must be JSON. To add a
step (reply, remix, ...): write the function in your module, add one line to `THEN_STEPS`,
and optionally a validator in `THEN_VALIDATORS`, `(options, prompt) -> options`, that
enqueue() runs before queueing (raise ThenStepError; `prompt` is the prompt as asked, without
the persona's style).

    then = {"post": {
        "visibility": "public",              # public | unlisted | followers | direct
        "text": "…",                         # default: the prompt as asked (without style)
        "in_reply_to_post_id": 12,           # a Post.id this replies to (optional)
        "mention_account_ids": [3, 4],       # Account.ids to mention and address (optional)
        "quote_post_id": 9,                  # the remix parent's Post.id (optional)
        "quote_state": "accepted",           # with quote_post_id: accepted | link | pending
        "quote_authorization_uri": "…",      # optional
        "summary": "…", "sensitive": false, "language": "en",   # optional
        "federate": true,                    # false: store only; call posting.federate_post
    }}                                       #   later (a remix awaiting quote approval)
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from generator.errors import RecipeError
from generator.recipe import GenerationResult, Recipe
from generator.worker import Job, JobId
from instance import jobs
from instance.runtime import Runtime
from instance.storage.models import Account, GenerationJob, MediaAttachment, Post

log = logging.getLogger("dreamloom.generation")

RETRY_BASE = timedelta(seconds=30)
RETRY_MAX = timedelta(hours=1)


def retry_delay(attempts: int) -> timedelta:
    """The generation retry schedule: 30 s, 60 s, 120 s, ... at most an hour."""
    return min(RETRY_BASE * 2 ** max(0, attempts - 1), RETRY_MAX)


# -- then steps --------------------------------------------------------------------------------
@dataclass
class StepContext:
    """What a `then` step gets: the open transaction and the finished job."""

    session: AsyncSession
    rt: Runtime
    job: GenerationJob
    account: Account
    media: MediaAttachment
    result: GenerationResult


Step = Callable[[StepContext, dict[str, Any]], Awaitable[Post | None]]

THEN_STEPS: dict[str, str] = {
    "post": "instance.generation.store:post_step",
    "remix": "instance.generation.remix:remix_step",
    "answer": "instance.generation.store:post_step",  # the picture as a reply to the asker
}
FAILURE_STEPS: dict[str, str] = {
    # kind -> async (session, rt, job, options, reason): tell whoever asked that it failed
    "answer": "instance.generation.asks:answer_failed",
}
THEN_VALIDATORS: dict[str, str] = {
    "post": "instance.generation.store:validate_post",
    "remix": "instance.generation.remix:validate_remix",
    "answer": "instance.generation.store:validate_post",
}


class ThenStepError(ValueError):
    """A `then` step's options are invalid."""


def _load(ref: str) -> Any:
    module, _, name = ref.partition(":")
    return getattr(importlib.import_module(module), name)


def validate_then(then: dict[str, Any], prompt: str) -> dict[str, Any]:
    """Check `then` before a job is queued; InvalidGenerationRequest when it is wrong."""
    from instance.generation.requests import InvalidGenerationRequest

    if not isinstance(then, dict):
        raise InvalidGenerationRequest("then must be a dict of {step: options}")
    checked: dict[str, Any] = {}
    for kind, options in then.items():
        if kind not in THEN_STEPS:
            raise InvalidGenerationRequest(
                f"unknown then step {kind!r} (known: {', '.join(THEN_STEPS)})"
            )
        if not isinstance(options, dict):
            raise InvalidGenerationRequest(f"then[{kind!r}] must be a dict of options")
        checked[kind] = options
        if kind in THEN_VALIDATORS:
            try:
                checked[kind] = _load(THEN_VALIDATORS[kind])(options, prompt)
            except ThenStepError as exc:
                raise InvalidGenerationRequest(str(exc)) from None
    return checked


def validate_post(options: dict[str, Any], prompt: str) -> dict[str, Any]:
    """Check the post options; the text defaults to the prompt as asked."""
    from instance.content.posting import VISIBILITIES

    visibility = options.get("visibility", "public")
    if visibility not in VISIBILITIES:
        raise ThenStepError(
            f"unknown visibility {visibility!r} (use one of {', '.join(VISIBILITIES)})"
        )
    ids = options.get("mention_account_ids", [])
    if not isinstance(ids, list) or not all(isinstance(i, int) for i in ids):
        raise ThenStepError("mention_account_ids must be a list of account ids")
    return {**options, "text": options.get("text") or prompt}


async def post_step(ctx: StepContext, options: dict[str, Any]) -> Post:
    """Publish the image as a post by the job's account (instance.posting.publish)."""
    from instance.content.posting import Draft, publish

    s = ctx.session
    reply_to = await _post(s, options.get("in_reply_to_post_id"), "in_reply_to_post_id")
    quote = await _post(s, options.get("quote_post_id"), "quote_post_id")
    mentions = []
    for account_id in options.get("mention_account_ids", []):
        account = await s.get(Account, account_id)
        if account is not None:
            mentions.append(account)
    draft = Draft(
        text=options.get("text") or ctx.result.recipe.prompt,
        visibility=options.get("visibility", "public"),
        summary=options.get("summary"),
        sensitive=bool(options.get("sensitive", False)),
        language=options.get("language", "en"),
        media=[ctx.media],
        mentions=mentions,
        in_reply_to=reply_to,
        quote=quote,
        quote_state=options.get("quote_state") if quote else None,
        quote_authorization_uri=options.get("quote_authorization_uri"),
        recipe=ctx.result.recipe.to_json(),
    )
    federate = bool(options.get("federate", True))
    return await publish(s, ctx.rt.urls, ctx.account, draft, federate=federate)


async def _post(session: AsyncSession, post_id: Any, name: str) -> Post | None:
    if post_id is None:
        return None
    post = await session.get(Post, post_id)
    if post is None or post.deleted_at is not None:
        raise ThenStepError(f"{name} {post_id} is not a post (deleted?)")
    return post


# -- the store ---------------------------------------------------------------------------------
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


class DbJobStore:
    """generator.worker.JobStore over GenerationJob rows (see the module docstring)."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self._held: dict[int, int] = {}  # job id -> attempt number this store claimed

    async def claim_batch(self, limit: int, *, lease_s: float) -> list[Job]:
        now = self.rt.now()
        async with self.rt.session() as s:
            key = await s.scalar(
                select(GenerationJob.shape_key)
                .where(jobs.due(GenerationJob, now))
                .order_by(GenerationJob.id)
                .limit(1)
            )
            if key is None:
                return []
            rows = await jobs.claim(
                s, GenerationJob, now=now, limit=limit, lease=timedelta(seconds=lease_s),
                where=[GenerationJob.shape_key == key], order_by=[GenerationJob.id],
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
            log.warning("generation job %s is no longer ours (lease lost); dropping", jid)
            return None
        return await s.get(GenerationJob, jid, populate_existing=True)

    async def complete(self, job_id: JobId, result: GenerationResult) -> None:
        try:
            async with self.rt.session() as s:
                row = await self._own(s, job_id)
                if row is None:
                    result.path.unlink(missing_ok=True)
                    return
                media = await self._record(s, row, result)
                await self._then(s, row, media, result)
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
            description=result.recipe.prompt,
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
            step: Step = _load(THEN_STEPS[kind])
            post = await step(ctx, options)
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
            if retry:
                jobs.retry(row, now, retry_delay(row.attempts), reason)
            else:
                jobs.fail(row, now, reason, status="blocked" if blocked else "failed")
                await self._on_failure(s, row, reason)
        self._held.pop(int(job_id), None)

    async def _on_failure(self, s: AsyncSession, row: GenerationJob, reason: str) -> None:
        for kind, options in (row.then or {}).items():
            if kind in FAILURE_STEPS:
                await _load(FAILURE_STEPS[kind])(s, self.rt, row, options, reason)

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
