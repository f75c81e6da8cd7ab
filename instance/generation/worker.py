"""The instance's generation worker: generator.worker.GeneratorWorker on the database's jobs.

`GenerationWorker(rt)` is what `dreamloom serve` runs (instance/app.py) and what
`dreamloom generate` runs in-process. It loads the `[generator] model` once, lazily, in the
worker's GPU thread (`load_configured_pipeline`), signs each PNG with a C2PA manifest when
`[generator] provenance` is on, and fetches remix parents: local media from the media
directory, remote images through the one safe fetcher. Failure and batching policy are the
generator's (generator/worker.py); attempts and retry timing are the generation queue's
(instance/queues.py); what happens after is DbJobStore's (store.py). The generator writes
each PNG into the media store's staging dir (the media dir itself for a local store);
DbJobStore puts it in the store. Before its first batch (or model load) the worker removes
the staged files a crashed process left behind (`prune_staging`: S3 stores only, files older
than an hour; instance/storage/media_store.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from generator.errors import ParentImageError
from generator.locating import architecture
from generator.worker import GeneratorWorker, Signer
from instance import __version__, jobs
from instance.generation.requests import MiB
from instance.generation.store import DbJobStore
from instance.metrics import GENERATION_BATCH_SECONDS, GENERATION_BATCH_SIZE, report_gpu_memory
from instance.queues import GENERATION
from instance.runtime import Runtime
from instance.settings import Settings
from instance.setup import c2pa_credentials
from instance.storage.media_store import MediaStoreError, check_key, prune_staging
from instance.storage.models import GenerationJob, Post, WorkStatus

log = logging.getLogger("dreamloom.generation")

if TYPE_CHECKING:
    from generator.pipelines import ImagePipeline


def load_configured_pipeline(settings: Settings) -> ImagePipeline:
    """`load_pipeline` with the [generator] settings ("auto" device/dtype -> detected)."""
    from generator.pipelines import load_pipeline

    quiet_hub_progress()
    gen = settings.generator
    return load_pipeline(
        gen.model,
        device=None if gen.device == "auto" else gen.device,
        dtype=None if gen.dtype == "auto" else gen.dtype,
        cache_dir=settings.cache_path,
        compile=None if gen.compile else False,
        tiny_vae=_tiny_vae_ref(settings) if gen.tiny_vae else None,
        safety_checker=gen.safety_checker,
    )


def _tiny_vae_ref(settings: Settings) -> str:
    """`[generator] tiny_vae = true` -> the TAESD decoder matching the model's family."""
    sdxl = architecture(settings.generator.model, settings.cache_path) == "sdxl"
    return "madebyollin/taesdxl" if sdxl else "madebyollin/taesd"


def quiet_hub_progress() -> None:
    """diffusers/transformers loading bars would garble the CLI's own progress display."""
    import os

    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    import diffusers.utils.logging as dlog
    import transformers.utils.logging as tlog

    dlog.disable_progress_bar()
    tlog.disable_progress_bar()  # type: ignore[no-untyped-call]


def provenance_signer(settings: Settings) -> Signer:
    """A C2PA signer with the instance's credentials (instance/setup.py)."""
    from generator.provenance import C2PASigner

    return C2PASigner(c2pa_credentials(settings), software=f"Dreamloom/{__version__}")


class GenerationWorker:
    """The `generation` worker: name, run_once(), wake(), aclose() (instance/workers.py)."""

    name = GENERATION.name

    def __init__(
        self,
        rt: Runtime,
        *,
        pipeline_factory: Callable[[], ImagePipeline] | None = None,
        **overrides: Any,
    ) -> None:
        settings = rt.settings
        gen = settings.generator
        self.rt = rt
        self.store = DbJobStore(rt)
        options: dict[str, Any] = {
            "max_batch": gen.max_batch,
            "max_attempts": GENERATION.max_attempts,
            "job_timeout_s": gen.job_timeout_s,
            "clock": lambda: rt.now().timestamp(),
            "load_parent": self._load_parent,
            "sign": provenance_signer(settings) if gen.provenance else None,
            "min_free_bytes": gen.min_free_disk_mb * MiB,
            **overrides,
        }
        self.inner = GeneratorWorker(
            pipeline_factory or (lambda: load_configured_pipeline(settings)),
            self.store,
            rt.media.staging_dir,  # the media dir itself, or S3's staging dir (DbJobStore uploads)
            **options,
        )
        self._staging_pruned = False

    @property
    def pipeline(self) -> ImagePipeline | None:
        return self.inner.pipeline

    async def start(self) -> float:
        """Load the model now; return milliseconds (ModelLoadError when it cannot)."""
        await self.prune_staging()
        ms = await self.inner.start()
        report_gpu_memory()
        return ms

    def wake(self) -> None:
        self.inner.wake()

    async def run_once(self) -> int:
        """One batch (instance/metrics.py counts its size and time, and the GPU's memory)."""
        await self.prune_staging()
        started = time.perf_counter()
        n = await self.inner.run_once()
        if n:
            GENERATION_BATCH_SECONDS.observe(time.perf_counter() - started)
            GENERATION_BATCH_SIZE.observe(n)
            report_gpu_memory()
        return n

    async def prune_staging(self) -> None:
        """Once per worker: the staged files of dead jobs go (see the module docstring)."""
        if self._staging_pruned:
            return
        self._staging_pruned = True
        try:
            pruned = await asyncio.to_thread(prune_staging, self.rt.media)
        except OSError as exc:  # a staging dir we cannot read: the jobs will say so
            log.warning("the staging dir could not be pruned: %s", exc)
            return
        if pruned.removed:
            log.info("removed %d staged files (%d bytes) left by dead jobs in %s",
                     pruned.removed, pruned.bytes, pruned.directory)  # fmt: skip

    async def aclose(self) -> None:
        await self.inner.close()

    async def _load_parent(self, ref: str) -> bytes:
        """A remix parent: our own media file by URL or name, else a safe remote fetch."""
        media_prefix = self.rt.urls.media("")
        if ref.startswith(media_prefix) or "://" not in ref:
            name = ref.removeprefix(media_prefix)
            try:
                data = await self.rt.media.read(check_key(name))
            except ValueError:
                data = None
            except MediaStoreError as exc:
                raise ParentImageError(f"could not read {ref!r}: {exc}") from exc
            if data is None:
                raise ParentImageError(f"{ref!r} is not one of this instance's images")
            return data
        try:
            data, _ = await self.rt.fetcher.fetch_media(ref)
        except Exception as exc:
            raise ParentImageError(f"could not fetch {ref}: {exc}") from exc
        return data


# -- one job, start to finish (the CLI) ------------------------------------------------------
FINAL: tuple[WorkStatus, ...] = ("done", "failed", "blocked", "cancelled")
Stage = Callable[[str], None]


class _StagedPipeline:
    """Reports "generating" / "writing" around each batch; everything else passes through."""

    def __init__(self, inner: ImagePipeline, on_stage: Stage) -> None:
        self._inner = inner
        self._on_stage = on_stage

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def generate(self, *args: Any, **kwargs: Any) -> Any:
        self._on_stage("generating")
        out = self._inner.generate(*args, **kwargs)
        self._on_stage("writing")
        return out


def staged_factory(
    factory: Callable[[], ImagePipeline], on_stage: Stage
) -> Callable[[], ImagePipeline]:
    def load() -> ImagePipeline:
        on_stage("loading model")
        return _StagedPipeline(factory(), on_stage)

    return load


@dataclass(frozen=True)
class Outcome:
    """How a job ended, as the CLI reports it."""

    job: str
    status: str
    reason: str | None
    path: str | None
    url: str | None
    recipe: dict[str, Any]
    timings: dict[str, Any] | None
    post_url: str | None
    post_uri: str | None = None  # the Note's id, for federation

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


async def run_until_final(
    rt: Runtime, job_id: int, worker: GenerationWorker, *, idle_s: float = 0.25
) -> Outcome:
    """Run `worker` in this process until job `job_id` is done, failed or blocked.

    The model is loaded first: when it cannot be, the job is failed with the load error
    (every later attempt would fail the same way). Other queued jobs that come first are run
    too; a job held by another process's worker is waited for."""
    try:
        await worker.start()
    except Exception as exc:  # any load failure ends this job the same way
        async with rt.session() as s:
            row = await s.get(GenerationJob, job_id)
            if row is not None and row.status == "queued":
                jobs.fail(row, rt.now(), f"model failed to load: {exc}")
    while True:
        async with rt.sessions() as s:
            row = await s.get(GenerationJob, job_id)
            assert row is not None, f"generation job {job_id} vanished"
            if row.status in FINAL:
                post = await s.get(Post, row.post_id) if row.post_id else None
                return _outcome(rt, row, post)
        if not await worker.run_once():
            await asyncio.sleep(idle_s)


def _outcome(rt: Runtime, row: GenerationJob, post: Post | None) -> Outcome:
    result = row.result or {}
    file_name = result.get("file_name")
    return Outcome(
        job=row.public_id,
        status=row.status,
        reason=row.last_error,
        path=_local_file(rt, file_name),
        url=rt.urls.media(file_name) if file_name else None,
        recipe=result.get("recipe") or row.recipe,
        timings=result.get("timings"),
        post_url=post.url if post is not None else None,
        post_uri=post.uri if post is not None else None,
    )


def _local_file(rt: Runtime, file_name: str | None) -> str | None:
    """Where the image is on this disk (a local store), for the CLI; None in a bucket."""
    path = rt.media.local_path(file_name) if file_name else None
    return str(path) if path is not None else None
