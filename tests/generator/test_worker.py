"""GeneratorWorker: batching, files, and every failure path, one step at a time."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from generator.errors import ModelLoadError
from generator.png import read_recipe
from generator.recipe import Recipe
from generator.testing import FakePipeline, InMemoryJobStore
from generator.worker import OUT_OF_MEMORY, GeneratorWorker


class Clock:
    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def rec(prompt: str = "a heron", seed: int = 1, **kw) -> Recipe:
    base = dict(prompt=prompt, seed=seed, steps=2, guidance=6.0, width=32, height=32)
    base.update(kw)
    return Recipe(**base)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(clock: Clock) -> InMemoryJobStore:
    return InMemoryJobStore(clock)


@pytest.fixture
async def make_worker(store: InMemoryJobStore, clock: Clock, tmp_path: Path):
    made: list[GeneratorWorker] = []

    def make(pipeline, **kw) -> GeneratorWorker:
        factory = pipeline if callable(pipeline) and not hasattr(pipeline, "generate") else (
            lambda: pipeline
        )
        w = GeneratorWorker(factory, kw.pop("store", store), tmp_path / "media",
                            clock=clock, **kw)
        made.append(w)
        return w

    yield make
    for w in made:
        await w.close()


async def test_batches_one_shape_key_and_writes_pngs(tiny, store, clock, make_worker) -> None:
    ids = [store.enqueue(rec(seed=i)) for i in range(3)]
    other = store.enqueue(rec(width=48))
    clock.t += 2.5
    worker = make_worker(tiny)
    assert await worker.run_once() == 3
    assert store.claims == [ids]
    for job_id in ids:
        row = store.get(job_id)
        assert row.status == "done", row.reason
        res = row.result
        assert res is not None
        assert res.path.parent == worker.media_dir and len(res.path.stem) == 32
        assert res.path.read_bytes() == res.read_bytes()
        import hashlib

        assert hashlib.sha256(res.read_bytes()).hexdigest() == res.sha256
        assert res.size_bytes == res.path.stat().st_size
        assert (res.width, res.height) == (32, 32)
        assert len(res.blurhash) == 28
        assert read_recipe(res.path) == res.recipe
        assert res.recipe.model == "builtin:tiny" and res.recipe.weights_hash == tiny.weights_hash
        assert res.timings.queue_ms == pytest.approx(2500.0)
        assert res.timings.denoise_ms > 0 and res.timings.encode_ms > 0
    assert store.get(other).status == "queued"
    assert await worker.run_once() == 1
    assert store.get(other).status == "done"
    assert await worker.run_once() == 0
    names = {store.get(i).result.path.name for i in [*ids, other]}
    assert len(names) == 4


async def test_worker_result_is_the_pipeline_result(tiny, store, make_worker) -> None:
    """A job's pixels equal a direct batch-of-one generation of its recipe."""
    import numpy as np
    from PIL import Image

    job = store.enqueue(rec(seed=77))
    await make_worker(tiny).run_once()
    with Image.open(store.get(job).result.path) as im:
        got = np.asarray(im.convert("RGB"))
    assert np.array_equal(got, np.asarray(tiny.generate([rec(seed=77)])[0].image))


async def test_loads_once_lazily_in_the_gpu_thread(store, make_worker) -> None:
    calls: list[str] = []
    fake = FakePipeline()

    def factory():
        calls.append(threading.current_thread().name)
        return fake

    worker = make_worker(factory, max_batch=2)
    assert await worker.run_once() == 0 and calls == []
    for i in range(3):
        store.enqueue(rec(seed=i))
    assert await worker.run_once() == 2
    assert await worker.run_once() == 1
    assert len(calls) == 1 and calls[0].startswith("dreamloom-gpu")
    assert all(t.startswith("dreamloom-gpu") for t in fake.threads)
    first, second = (store.get(i).result.timings.load_ms for i in (1, 3))
    assert first > 0 and second == 0


async def test_start_loads_and_warms_up(make_worker) -> None:
    warmed: list[object] = []
    fake = FakePipeline()
    worker = make_worker(fake, warmup=warmed.append)
    assert await worker.start() >= 0
    assert warmed == [fake] and worker.pipeline is fake
    assert await worker.start() == 0.0


async def test_oom_in_a_batch_retries_each_job_alone(store, make_worker) -> None:
    fake = FakePipeline(oom_over=1)
    ids = [store.enqueue(rec(seed=i)) for i in range(3)]
    assert await make_worker(fake).run_once() == 3
    assert [len(b) for b in fake.batches] == [3, 1, 1, 1]
    assert all(store.get(i).status == "done" for i in ids)


@pytest.mark.parametrize("generic", [False, True])
async def test_oom_for_one_job_fails_only_that_job(store, make_worker, generic) -> None:
    fake = FakePipeline(oom_prompts=["a huge thing"], generic_oom=generic)
    a, boom, b = store.enqueue(rec()), store.enqueue(rec("a huge thing")), store.enqueue(rec())
    worker = make_worker(fake)
    assert await worker.run_once() == 3
    assert store.get(boom).status == "failed"
    assert store.get(boom).reason == OUT_OF_MEMORY
    assert store.get(a).status == store.get(b).status == "done"
    later = store.enqueue(rec(seed=9))
    assert await worker.run_once() == 1
    assert store.get(later).status == "done"


async def test_deadline_between_steps_fails_the_job(store, make_worker) -> None:
    job = store.enqueue(rec())
    worker = make_worker(FakePipeline(slow_s=5.0), job_timeout_s=0.01)
    assert await worker.run_once() == 1
    row = store.get(job)
    assert (row.status, row.reason) == ("failed", "generation timed out after 0.01 s")


async def test_stuck_gpu_thread_is_abandoned_with_a_timeout(store, make_worker) -> None:
    hang = threading.Event()
    job = store.enqueue(rec())
    worker = make_worker(FakePipeline(hang=hang), job_timeout_s=0.01, timeout_grace_s=0.05)
    try:
        assert await worker.run_once() == 1
    finally:
        hang.set()
    assert store.get(job).status == "failed"
    assert store.get(job).reason == "generation timed out after 0.01 s"


async def test_too_long_prompt_fails_for_good_with_the_tokenizer_message(
    tiny, store, make_worker
) -> None:
    bad = store.enqueue(rec("x" * 100))
    good = store.enqueue(rec())
    assert await make_worker(tiny).run_once() == 2
    assert store.get(bad).status == "failed"
    assert store.get(bad).reason == "prompt too long: 102 tokens, max 77"
    assert store.get(bad).history == ["running", "failed"]
    assert store.get(good).status == "done"


async def test_recipe_for_another_model_fails(store, make_worker) -> None:
    job = store.enqueue(rec(model="someone/else"))
    await make_worker(FakePipeline()).run_once()
    assert store.get(job).status == "failed"
    assert "this instance runs model 'fake:flat'" in store.get(job).reason


async def test_safety_block_is_never_published(store, make_worker, tmp_path) -> None:
    bad, ok = store.enqueue(rec("forbidden")), store.enqueue(rec())
    worker = make_worker(FakePipeline(block_prompts=["forbidden"]))
    await worker.run_once()
    row = store.get(bad)
    assert (row.status, row.result) == ("blocked", None)
    assert "safety checker" in row.reason
    assert store.get(ok).status == "done"
    assert len(list(worker.media_dir.glob("*.png"))) == 1


async def test_job_left_running_by_a_dead_worker_is_reclaimed(store, clock, make_worker) -> None:
    job = store.enqueue(rec())
    # a worker claims the job, then dies before finishing it
    (claimed,) = await store.claim_batch(8, lease_s=600)
    assert claimed.attempts == 1 and store.get(job).status == "running"
    worker = make_worker(FakePipeline(), stale_check_s=0)
    assert await worker.run_once() == 0  # lease still live: left alone
    assert store.get(job).status == "running"
    clock.t += 601
    assert await worker.run_once() == 1
    row = store.get(job)
    assert (row.status, row.attempts) == ("done", 2)
    assert row.history == ["running", "requeued", "running", "done"]


async def test_unexpected_errors_retry_up_to_max_attempts(store, make_worker) -> None:
    job = store.enqueue(rec())
    worker = make_worker(FakePipeline(error=ValueError("weird")), max_attempts=2)
    await worker.run_once()
    assert store.get(job).status == "queued"
    assert store.get(job).reason == "generation failed: ValueError: weird"
    await worker.run_once()
    assert (store.get(job).status, store.get(job).attempts) == ("failed", 2)
    assert await worker.run_once() == 0


async def test_model_load_failure_fails_jobs_with_the_setting_named(store, make_worker) -> None:
    def factory():
        raise ModelLoadError("[generator] model = 'x' is not a directory ...")

    job = store.enqueue(rec())
    worker = make_worker(factory, max_attempts=1)
    assert await worker.run_once() == 1
    assert store.get(job).status == "failed"
    assert store.get(job).reason.startswith("model failed to load: [generator] model = 'x'")
    assert worker.pipeline is None


async def test_remix_from_a_local_parent(tiny, store, make_worker) -> None:
    worker = make_worker(tiny)
    parent = store.enqueue(rec(seed=3))
    await worker.run_once()
    parent_file = store.get(parent).result.path.name
    remix = store.enqueue(rec(seed=4, parent=parent_file, strength=0.5))
    await worker.run_once()
    row = store.get(remix)
    assert row.status == "done", row.reason
    assert row.result.recipe.parent == parent_file and row.result.recipe.strength == 0.5


async def test_remix_parent_must_be_usable(store, make_worker, tmp_path) -> None:
    url = store.enqueue(rec(parent="https://x.example/p.png", strength=1.0))
    escape = store.enqueue(rec(parent="../../etc/passwd", strength=1.0))
    missing = store.enqueue(rec(parent="nope.png", strength=1.0))
    worker = make_worker(FakePipeline())
    (worker.media_dir).mkdir(parents=True, exist_ok=True)
    (worker.media_dir / "junk.png").write_bytes(b"not an image")
    junk = store.enqueue(rec(parent="junk.png", strength=1.0))
    from PIL import Image

    Image.new("RGB", (8, 8), "white").save(worker.media_dir / "good.png")
    good = store.enqueue(rec(parent="good.png", strength=1.0))
    assert await worker.run_once() == 5
    assert store.get(good).status == "done"  # a bad parent does not sink its batch-mates
    assert [len(b) for b in worker.pipeline.batches] == [1]
    assert "the instance must fetch remote parents" in store.get(url).reason
    assert "outside the media directory" in store.get(escape).reason
    assert "does not exist" in store.get(missing).reason
    assert "cannot be decoded" in store.get(junk).reason
    assert {store.get(i).status for i in (url, escape, missing, junk)} == {"failed"}


async def test_custom_parent_loader_and_signer(store, make_worker) -> None:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (40, 40), "blue").save(buf, format="PNG")
    fetched: list[str] = []
    signed: list[tuple[Recipe, bytes | None]] = []

    async def load_parent(ref: str) -> bytes:
        fetched.append(ref)
        return buf.getvalue()

    def sign(data: bytes, recipe: Recipe, parent: bytes | None) -> bytes:
        signed.append((recipe, parent))
        return data + b"signed"

    job = store.enqueue(rec(parent="https://x.example/p.png", strength=1.0))
    await make_worker(FakePipeline(), load_parent=load_parent, sign=sign).run_once()
    row = store.get(job)
    assert row.status == "done", row.reason
    assert fetched == ["https://x.example/p.png"]
    assert signed[0][1] == buf.getvalue()
    assert row.result.c2pa and row.result.read_bytes().endswith(b"signed")
    import hashlib

    assert row.result.sha256 == hashlib.sha256(row.result.read_bytes()).hexdigest()


async def test_low_disk_pauses_claiming(store, make_worker) -> None:
    job = store.enqueue(rec())
    free = {"bytes": 10}
    worker = make_worker(FakePipeline(), disk_free=lambda p: free["bytes"])
    assert await worker.run_once() == 0
    assert store.get(job).status == "queued"
    assert worker.paused is not None and "MiB free" in worker.paused
    free["bytes"] = 10**12
    assert await worker.run_once() == 1 and worker.paused is None


async def test_run_forever_wakes_on_new_work(store, make_worker) -> None:
    done = asyncio.Event()

    class Notifying(InMemoryJobStore):
        async def complete(self, job_id, result):
            await super().complete(job_id, result)
            done.set()

    notifying = Notifying(store.clock)
    worker = make_worker(FakePipeline(), store=notifying, poll_s=3600)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run_forever(stop))
    await asyncio.sleep(0)
    job = notifying.enqueue(rec())
    worker.wake()
    await asyncio.wait_for(done.wait(), timeout=30)
    assert notifying.get(job).status == "done"
    stop.set()
    await asyncio.wait_for(task, timeout=30)
