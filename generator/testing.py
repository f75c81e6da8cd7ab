"""Test doubles: an in-memory :class:`JobStore` and a fake pipeline with injectable faults.

Both are small enough to read in one go and follow the contracts the real ones must keep, so
the instance's tests can use them too.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Literal

from generator.errors import (
    GenerationTimeout,
    ParentImageError,
    PromptTooLongError,
    RecipeError,
)
from generator.pipelines import Generated
from generator.recipe import GenerationResult, Recipe
from generator.worker import Job, JobId

if TYPE_CHECKING:
    from PIL import Image

Status = Literal["queued", "running", "done", "failed", "blocked"]


@dataclass
class StoredJob:
    """One row of the in-memory store."""

    id: int
    recipe: Recipe
    enqueued_at: float
    status: Status = "queued"
    attempts: int = 0
    lease_until: float | None = None
    reason: str | None = None
    result: GenerationResult | None = None
    history: list[str] = field(default_factory=list)


class InMemoryJobStore:
    """A :class:`generator.worker.JobStore` in a dict, with an injectable clock."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.jobs: dict[int, StoredJob] = {}
        self._next = 1
        self.claims: list[list[int]] = []

    def enqueue(self, recipe: Recipe) -> int:
        """Queue a job; return its id."""
        job_id = self._next
        self._next += 1
        self.jobs[job_id] = StoredJob(job_id, recipe, self.clock())
        return job_id

    def get(self, job_id: JobId) -> StoredJob:
        """The row of ``job_id``."""
        return self.jobs[int(job_id)]

    async def claim_batch(self, limit: int, *, lease_s: float) -> list[Job]:
        queued = [j for j in self.jobs.values() if j.status == "queued"]
        if not queued:
            return []
        key = min(queued, key=lambda j: (j.enqueued_at, j.id)).recipe.shape_key()
        picked = sorted(
            (j for j in queued if j.recipe.shape_key() == key), key=lambda j: (j.enqueued_at, j.id)
        )[:limit]
        now = self.clock()
        for j in picked:
            j.status, j.attempts, j.lease_until = "running", j.attempts + 1, now + lease_s
            j.history.append("running")
        self.claims.append([j.id for j in picked])
        return [Job(j.id, j.recipe, j.attempts, j.enqueued_at) for j in picked]

    async def complete(self, job_id: JobId, result: GenerationResult) -> None:
        j = self.get(job_id)
        j.status, j.result, j.lease_until = "done", result, None
        j.history.append("done")

    async def fail(
        self, job_id: JobId, reason: str, *, retry: bool, blocked: bool = False
    ) -> None:
        j = self.get(job_id)
        j.reason, j.lease_until = reason, None
        j.status = "queued" if retry else ("blocked" if blocked else "failed")
        j.history.append(j.status)

    async def requeue_stale(self) -> int:
        now = self.clock()
        stale = [
            j
            for j in self.jobs.values()
            if j.status == "running" and j.lease_until is not None and j.lease_until < now
        ]
        for j in stale:
            j.status, j.lease_until = "queued", None
            j.history.append("requeued")
        return len(stale)


class FakePipeline:
    """A pipeline that paints each recipe a flat colour derived from its seed.

    Faults to inject: ``oom_over`` (batches larger than this raise CUDA-style OOM),
    ``oom_prompts`` (a batch containing one of these prompts always raises OOM),
    ``block_prompts`` (the safety checker blocks these), ``max_chars`` (longer prompts are
    too long), ``slow_s`` (cooperative: honours the deadline like the real pipeline),
    ``hang`` (an Event the call waits on, ignoring the deadline), ``error`` (raised as is).
    """

    def __init__(
        self,
        *,
        model_id: str = "fake:flat",
        oom_over: int | None = None,
        oom_prompts: Sequence[str] = (),
        block_prompts: Sequence[str] = (),
        max_chars: int = 75,
        slow_s: float = 0.0,
        hang: threading.Event | None = None,
        error: Exception | None = None,
        generic_oom: bool = False,
    ) -> None:
        self.model_id = model_id
        self.weights_hash = "sha256:" + "0" * 64
        self.oom_over = oom_over
        self.oom_prompts = set(oom_prompts)
        self.block_prompts = set(block_prompts)
        self.max_chars = max_chars
        self.slow_s = slow_s
        self.hang = hang
        self.error = error
        self.generic_oom = generic_oom
        self.batches: list[list[Recipe]] = []
        self.threads: set[str] = set()

    def check_prompt(self, prompt: str, *, field: str = "prompt") -> int:
        n = len(prompt) + 2
        if n > self.max_chars + 2:
            raise PromptTooLongError(n, self.max_chars + 2, field=field)
        return n

    def resolve(self, recipe: Recipe) -> Recipe:
        if recipe.model and recipe.model != self.model_id:
            raise RecipeError(f"this instance runs model {self.model_id!r}")
        self.check_prompt(recipe.prompt)
        self.check_prompt(recipe.negative_prompt, field="negative_prompt")
        return replace(
            recipe,
            model=self.model_id,
            weights_hash=self.weights_hash,
            scheduler=recipe.scheduler or "DDIMScheduler",
        )

    def _oom(self, n: int) -> Exception:
        if self.generic_oom:
            return RuntimeError("CUDA error: out of memory")
        import torch

        return torch.cuda.OutOfMemoryError(f"CUDA out of memory (batch of {n})")

    def generate(
        self,
        recipes: Sequence[Recipe],
        parent_images: Sequence[Image.Image] | None = None,
        *,
        deadline: float | None = None,
    ) -> list[Generated]:
        from PIL import Image

        self.threads.add(threading.current_thread().name)
        resolved = [self.resolve(r) for r in recipes]
        self.batches.append(resolved)
        if self.error is not None:
            raise self.error
        if self.oom_over is not None and len(recipes) > self.oom_over:
            raise self._oom(len(recipes))
        if any(r.prompt in self.oom_prompts for r in recipes):
            raise self._oom(len(recipes))
        if self.hang is not None:
            self.hang.wait()
        end = time.monotonic() + self.slow_s
        while time.monotonic() < end:
            if deadline is not None and time.monotonic() > deadline:
                raise GenerationTimeout("generation timed out")
            time.sleep(0.001)
        if recipes and recipes[0].is_remix and (
            parent_images is None or len(parent_images) != len(recipes)
        ):
            raise ParentImageError("a remix batch needs one parent image per recipe")
        out = []
        for r in resolved:
            colour = (r.seed % 256, (r.seed * 7) % 256, (r.seed * 13) % 256)
            blocked = r.prompt in self.block_prompts
            image = None if blocked else Image.new("RGB", (r.width, r.height), colour)
            reason = "blocked by the model's safety checker (test)" if blocked else None
            out.append(Generated(r, image, reason, denoise_ms=1.0, decode_ms=1.0))
        return out
