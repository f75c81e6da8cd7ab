"""The GPU owner: claims generation jobs, runs them in batches on one thread, writes PNGs.

One :class:`GeneratorWorker` per process owns the pipeline (weights loaded once) and one
dedicated thread that makes every torch call, so the event loop never blocks on the GPU. Jobs
live in the instance's database behind the :class:`JobStore` protocol; the worker is driven
one step at a time (:meth:`GeneratorWorker.run_once`, for tests) or by
:meth:`GeneratorWorker.run_forever`, which sleeps until :meth:`GeneratorWorker.wake` is called
(work was enqueued) or a poll interval passes.

A step: requeue jobs whose lease expired (their worker died) -> claim up to ``max_batch`` jobs
of one shape key -> check prompts (too long: failed for good, with the tokenizer's message) ->
load remix parents -> generate the batch in the GPU thread -> write each PNG (random uuid name,
recipe in text chunks, optional C2PA manifest) -> ``complete`` or ``fail``.

Failure policy (each job ends ``done``, ``failed`` or ``blocked``; never lost):

================================  ============================================  =========
what happened                     outcome                                       retry
================================  ============================================  =========
prompt too long / bad recipe      failed, the validation message                no
parent image unusable             failed, why                                   no
safety checker flagged the image  blocked, the checker's reason                 no
out of GPU memory, batch > 1      each job re-run alone (batch of 1)            —
out of GPU memory alone           failed, "out of GPU memory"                   no
ran past its deadline             failed, "generation timed out after N s"      no
model failed to load              failed, the load error                        if attempts remain
anything else                     failed, the exception                         if attempts remain
================================  ============================================  =========

``retry=True`` asks the store to queue the job again (the instance's retry policy decides
when); ``max_attempts`` bounds it. A batch's deadline is ``job_timeout_s`` times its size
(never worse than running the jobs one by one), checked between denoising steps; a thread that
does not come back within a further ``timeout_grace_s`` is abandoned and its jobs failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeVar

from generator.errors import (
    GenerationTimeout,
    GeneratorError,
    ParentImageError,
    RecipeError,
)
from generator.recipe import GenerationResult, Recipe, Timings

if TYPE_CHECKING:
    from PIL import Image

    from generator.pipelines import Generated, ImagePipeline

log = logging.getLogger(__name__)
_T = TypeVar("_T")

JobId = int | str
MAX_PARENT_BYTES = 40 * 1024 * 1024
MAX_PARENT_PIXELS = 40_000_000
OUT_OF_MEMORY = "out of GPU memory"


@dataclass(frozen=True, slots=True)
class Job:
    """A claimed generation job."""

    id: JobId
    recipe: Recipe
    attempts: int = 1
    """Attempts so far, this one included (the store increments it when claiming)."""
    enqueued_at: float | None = None
    """When the job was queued, on the worker's ``clock`` (for the queue time)."""


class JobStore(Protocol):
    """Durable generation jobs; the instance implements it on its database rows.

    Job states: ``queued`` -> ``running`` -> ``done`` | ``failed`` | ``blocked`` (and
    ``running`` -> ``queued`` again on a retry or when the lease expires).
    """

    async def claim_batch(self, limit: int, *, lease_s: float) -> list[Job]:
        """Atomically claim up to ``limit`` queued jobs of ONE shape key, oldest first.

        Pick the shape key (:meth:`Recipe.shape_key`, stored at enqueue) of the oldest queued
        job that is due, then take up to ``limit`` queued jobs with that key in enqueue order;
        mark them ``running``, increment ``attempts``, and hold them until now + ``lease_s``.
        Two workers must never claim the same job.
        """
        ...

    async def complete(self, job_id: JobId, result: GenerationResult) -> None:
        """Mark the job ``done`` and keep its result (file path, hashes, recipe as run)."""
        ...

    async def fail(self, job_id: JobId, reason: str, *, retry: bool, blocked: bool = False) -> None:
        """Mark the job ``failed`` (``blocked`` when ``blocked``) with ``reason``.

        With ``retry=True`` the job goes back to ``queued`` (when, is the store's retry policy)
        and ``reason`` is kept as its last error.
        """
        ...

    async def requeue_stale(self) -> int:
        """Put ``running`` jobs whose lease has expired back to ``queued``; return how many.

        This is how a job left running by a dead worker (crash, kill -9, power cut) is
        reclaimed after a restart. Jobs with a live lease are left alone.
        """
        ...


ParentLoader = Callable[[str], Awaitable[bytes]]
Signer = Callable[[bytes, Recipe, bytes | None], bytes]
"""(png bytes, recipe, parent png bytes or None) -> signed png bytes (see provenance)."""


class GeneratorWorker:
    """Owns the pipeline and the GPU thread; see the module docstring for the policy."""

    def __init__(
        self,
        pipeline_factory: Callable[[], ImagePipeline],
        store: JobStore,
        media_dir: Path,
        *,
        max_batch: int = 8,
        job_timeout_s: float = 120.0,
        timeout_grace_s: float = 30.0,
        max_attempts: int = 3,
        clock: Callable[[], float] = time.time,
        load_parent: ParentLoader | None = None,
        sign: Signer | None = None,
        warmup: Callable[[ImagePipeline], object] | None = None,
        min_free_bytes: int = 256 * 1024 * 1024,
        disk_free: Callable[[Path], int] | None = None,
        stale_check_s: float = 30.0,
        poll_s: float = 5.0,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.pipeline_factory = pipeline_factory
        self.store = store
        self.media_dir = Path(media_dir)
        self.max_batch = max_batch
        self.job_timeout_s = job_timeout_s
        self.timeout_grace_s = timeout_grace_s
        self.max_attempts = max_attempts
        self.clock = clock
        self.load_parent = load_parent or self._load_local_parent
        self.sign = sign
        self.warmup = warmup
        self.min_free_bytes = min_free_bytes
        self.disk_free = disk_free or (lambda p: shutil.disk_usage(p).free)
        self.stale_check_s = stale_check_s
        self.poll_s = poll_s
        self.pipeline: ImagePipeline | None = None
        self.paused: str | None = None
        """Why the worker is not claiming jobs right now (low disk), or None."""
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dreamloom-gpu")
        self._wake = asyncio.Event()
        self._load_lock = asyncio.Lock()
        self._last_stale_check: float | None = None

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> float:
        """Load the pipeline (and warm it up) now rather than on the first job; return ms."""
        return await self._ensure_pipeline()

    def wake(self) -> None:
        """Tell :meth:`run_forever` that work was enqueued (call from the event loop)."""
        self._wake.set()

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Process batches until ``stop`` is set; idle until woken or ``poll_s`` passes."""
        while not stop.is_set():
            self._wake.clear()
            try:
                processed = await self.run_once()
            except Exception:
                log.exception("generator worker step failed")
                processed = 0
            if processed:
                continue
            waiters = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
            try:
                await asyncio.wait(
                    waiters, timeout=self.poll_s, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                for w in waiters:
                    w.cancel()

    async def close(self) -> None:
        """Let the GPU thread finish its current call, then stop it."""
        await asyncio.get_running_loop().run_in_executor(None, self._executor.shutdown, True)

    # -- one step --------------------------------------------------------------------------

    async def run_once(self) -> int:
        """Claim and process at most one batch; return the number of jobs it held."""
        now = self.clock()
        if self._last_stale_check is None or now - self._last_stale_check >= self.stale_check_s:
            self._last_stale_check = now
            if n := await self.store.requeue_stale():
                log.warning("requeued %d generation job(s) left running by a dead worker", n)
        if not self._disk_ok():
            return 0
        lease_s = self.job_timeout_s * self.max_batch + self.timeout_grace_s + 60.0
        jobs = await self.store.claim_batch(self.max_batch, lease_s=lease_s)
        if not jobs:
            return 0
        claimed_at = self.clock()
        try:
            load_ms = await self._ensure_pipeline()
        except Exception as exc:
            log.error("generator model failed to load: %s", exc)
            for job in jobs:
                await self._fail(job, f"model failed to load: {exc}", transient=True)
            return len(jobs)
        runnable = await self._prepare(jobs)
        if runnable:
            await self._generate(runnable, claimed_at, load_ms)
        return len(jobs)

    async def _prepare(self, jobs: list[Job]) -> list[_Item]:
        """Resolve recipes (prompt length, model) and load parents; fail the bad jobs."""
        pipeline = self.pipeline
        assert pipeline is not None
        resolved = await self._in_gpu_thread(lambda: [_try_resolve(pipeline, j) for j in jobs])
        out: list[_Item] = []
        for job, res in zip(jobs, resolved, strict=True):
            if isinstance(res, Exception):
                await self._fail(job, str(res), transient=False)
                continue
            parent: _Parent | None = None
            if res.parent is not None:
                try:
                    data = await self.load_parent(res.parent)
                    if len(data) > MAX_PARENT_BYTES:
                        raise ParentImageError(
                            f"parent image is {len(data)} bytes, max {MAX_PARENT_BYTES}"
                        )
                    parent = _Parent(data, await asyncio.to_thread(_decode_parent, data))
                except (ParentImageError, OSError) as exc:
                    await self._fail(job, f"parent image unusable: {exc}", transient=False)
                    continue
            out.append(_Item(job, res, parent))
        return out

    async def _generate(self, batch: list[_Item], claimed_at: float, load_ms: float) -> None:
        try:
            generated = await self._run_batch(batch)
        except Exception as exc:
            if _is_oom(exc) and len(batch) > 1:
                log.warning("out of GPU memory for a batch of %d; retrying one by one", len(batch))
                for item in batch:
                    await self._generate([item], claimed_at, load_ms)
                return
            for item in batch:
                await self._fail(item.job, *self._describe(exc, len(batch)))
            return
        for item, gen in zip(batch, generated, strict=True):
            job = item.job
            if gen.blocked is not None or gen.image is None:
                await self.store.fail(
                    job.id, gen.blocked or "no image was produced", retry=False, blocked=True
                )
                continue
            queue_ms = max(0.0, (claimed_at - job.enqueued_at) * 1000) if job.enqueued_at else 0.0
            timings = Timings(
                queue_ms=queue_ms,
                load_ms=load_ms,
                denoise_ms=gen.denoise_ms,
                decode_ms=gen.decode_ms,
            )
            try:
                parent = item.parent.data if item.parent else None
                result = await asyncio.to_thread(self._write, gen, parent, timings)
            except Exception as exc:
                log.exception("writing the image of job %s failed", job.id)
                await self._fail(job, f"could not write the image: {exc}", transient=True)
                continue
            await self.store.complete(job.id, result)

    async def _run_batch(self, batch: list[_Item]) -> list[Generated]:
        pipeline = self.pipeline
        assert pipeline is not None
        budget = self.job_timeout_s * len(batch)
        recipes = [item.recipe for item in batch]
        parents = [item.parent.image for item in batch if item.parent] or None

        def work() -> list[Generated]:
            return pipeline.generate(recipes, parents, deadline=time.monotonic() + budget)

        try:
            return await asyncio.wait_for(
                self._in_gpu_thread(work), timeout=budget + self.timeout_grace_s
            )
        except TimeoutError as exc:
            log.error("the GPU thread did not return within %.0f s; abandoning the batch", budget)
            raise GenerationTimeout("generation timed out") from exc

    def _describe(self, exc: BaseException, n: int) -> tuple[str, bool]:
        """-> (reason, transient) for a batch-level exception."""
        if _is_oom(exc):
            return OUT_OF_MEMORY, False
        if isinstance(exc, GenerationTimeout):
            return f"generation timed out after {self.job_timeout_s * n:g} s", False
        if isinstance(exc, RecipeError | ParentImageError):
            return str(exc), False
        log.error("generation failed", exc_info=exc)
        return f"generation failed: {type(exc).__name__}: {exc}", True

    async def _fail(self, job: Job, reason: str, transient: bool) -> None:
        retry = transient and job.attempts < self.max_attempts
        await self.store.fail(job.id, reason, retry=retry)

    # -- helpers ---------------------------------------------------------------------------

    async def _in_gpu_thread(self, fn: Callable[[], _T]) -> _T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    async def _ensure_pipeline(self) -> float:
        """Load once (in the GPU thread); return the ms this call spent loading."""
        if self.pipeline is not None:
            return 0.0
        async with self._load_lock:
            if self.pipeline is not None:
                return 0.0
            t = time.perf_counter()

            def load() -> ImagePipeline:
                pipeline = self.pipeline_factory()
                if self.warmup is not None:
                    self.warmup(pipeline)
                return pipeline

            self.pipeline = await self._in_gpu_thread(load)
            return (time.perf_counter() - t) * 1000

    def _disk_ok(self) -> bool:
        self.media_dir.mkdir(parents=True, exist_ok=True)
        free = self.disk_free(self.media_dir)
        if free < self.min_free_bytes:
            if self.paused is None:
                log.error("generation paused: %s", self._low_disk_message(free))
            self.paused = self._low_disk_message(free)
            return False
        self.paused = None
        return True

    def _low_disk_message(self, free: int) -> str:
        return (
            f"only {free // (1024 * 1024)} MiB free in {self.media_dir}; generation resumes "
            f"above {self.min_free_bytes // (1024 * 1024)} MiB"
        )

    def _write(self, gen: Generated, parent: bytes | None, timings: Timings) -> GenerationResult:
        from generator.png import encode_png

        assert gen.image is not None
        t = time.perf_counter()
        encoded = encode_png(gen.image, gen.recipe)
        data, digest = encoded.data, encoded.sha256
        if self.sign is not None:
            data = self.sign(data, gen.recipe, parent)
            digest = hashlib.sha256(data).hexdigest()
        path = _write_new_file(self.media_dir, data)
        return GenerationResult(
            path=path,
            sha256=digest,
            width=encoded.width,
            height=encoded.height,
            blurhash=encoded.blurhash,
            size_bytes=len(data),
            recipe=gen.recipe,
            timings=replace(timings, encode_ms=(time.perf_counter() - t) * 1000),
            c2pa=self.sign is not None,
        )

    async def _load_local_parent(self, ref: str) -> bytes:
        """Default parent loader: files inside ``media_dir`` only; URLs are the instance's job."""
        if "://" in ref:
            raise ParentImageError(
                f"{ref!r} is a URL; the instance must fetch remote parents (pass load_parent)"
            )
        root = self.media_dir.resolve()
        path = (root / ref).resolve()
        if not path.is_relative_to(root):
            raise ParentImageError(f"{ref!r} is outside the media directory")
        if not path.is_file():
            raise ParentImageError(f"{ref!r} does not exist")
        return await asyncio.to_thread(path.read_bytes)


@dataclass(frozen=True, slots=True)
class _Parent:
    data: bytes
    image: Image.Image


@dataclass(frozen=True, slots=True)
class _Item:
    """A job ready for the GPU: its resolved recipe and, for a remix, its parent."""

    job: Job
    recipe: Recipe
    parent: _Parent | None


def _try_resolve(pipeline: ImagePipeline, job: Job) -> Recipe | Exception:
    try:
        return pipeline.resolve(job.recipe)
    except (RecipeError, GeneratorError) as exc:
        return exc


def _is_oom(exc: BaseException) -> bool:
    from generator.devices import is_out_of_memory

    return is_out_of_memory(exc)


def _decode_parent(data: bytes) -> Image.Image:
    import io

    from PIL import Image, UnidentifiedImageError

    try:
        im = Image.open(io.BytesIO(data))
        if im.width * im.height > MAX_PARENT_PIXELS:
            raise ParentImageError(f"parent image is {im.width}x{im.height}, too many pixels")
        im.load()
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise ParentImageError(f"parent image cannot be decoded: {exc}") from exc
    return im.convert("RGB")


def _write_new_file(directory: Path, data: bytes) -> Path:
    """Write ``data`` to a new random name in ``directory`` atomically (temp file + rename).

    The image is public (anyone may fetch it), so it is readable by all (0644), for a web
    server in front to serve it; ``mkstemp`` alone would leave it 0600."""
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / f"{uuid.uuid4().hex}.png"
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".png")
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return final
