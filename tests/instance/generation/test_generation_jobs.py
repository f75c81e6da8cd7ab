"""Generation jobs on the database: recipes, the bounded queue, the store, then-steps, restarts."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from generator.locating import model_defaults
from generator.png import TRAINED_ALGORITHMIC_MEDIA, read_recipe
from generator.provenance import read_manifest
from generator.recipe import Recipe
from generator.testing import FakePipeline
from instance.content.posting import Draft, delete, publish
from instance.errors import InvalidGenerationRequest, LowDiskError, QueueFullError
from instance.generation.recipes import build_recipe
from instance.generation.requests import enqueue
from instance.generation.store import DbJobStore
from instance.generation.worker import GenerationWorker
from instance.queues import GENERATION
from instance.roles import worker_factories
from instance.storage.models import Account, GenerationJob, MediaAttachment, Post
from tests.instance.generation_fixtures import Clock, gen_settings, tiny_cache  # noqa: F401
from tests.instance_fixtures import asgi_client


@pytest.fixture
def settings(gen_settings):  # noqa: F811
    return gen_settings()


@pytest.fixture
def clock(runtime) -> Clock:
    c = Clock()
    runtime.clock = c
    return c


@pytest.fixture
async def painter(new_account):
    return await new_account("painter", ai=True, persona={"style": "ink wash"})


async def queue(rt, account, prompt="a heron", **kw) -> GenerationJob:
    kw.setdefault("size", (32, 32))
    kw.setdefault("steps", 1)
    async with rt.session() as s:
        return await enqueue(s, rt, account, prompt, **kw)


async def job(rt, job_id) -> GenerationJob:
    async with rt.sessions() as s:
        return await s.get(GenerationJob, job_id)


async def count(rt, model) -> int:
    async with rt.sessions() as s:
        return await s.scalar(select(func.count()).select_from(model))


def fake_worker(rt, **faults) -> GenerationWorker:
    return GenerationWorker(rt, pipeline_factory=lambda: FakePipeline(**faults))


# -- recipes -------------------------------------------------------------------------------
async def test_recipe_from_persona_settings_and_model_defaults(runtime, painter) -> None:
    native = model_defaults(runtime.settings.generator.model, runtime.settings.cache_path)
    assert (native.width, native.height, native.steps, native.guidance) == (64, 64, 1, 0.0)
    r = build_recipe(runtime.settings, painter, "a heron", seed=3)
    assert r.prompt == "a heron, ink wash"  # the persona's style is appended
    assert (r.width, r.height, r.steps, r.seed) == (64, 64, 1, 3)
    assert r.model == "" and r.weights_hash == ""  # the worker says what actually ran

    runtime.settings.generator.steps, runtime.settings.generator.width = 4, 48
    painter.persona = {"style": "ink wash", "recipe": {"steps": 2, "negativePrompt": "blur"}}
    r = build_recipe(runtime.settings, painter, "a heron", size=(32, 40))
    assert (r.steps, r.width, r.height, r.negative_prompt) == (2, 32, 40, "blur")
    assert build_recipe(runtime.settings, painter, "x", steps=7).steps == 7
    seeds = {build_recipe(runtime.settings, painter, "x").seed for _ in range(5)}
    assert len(seeds) > 1  # a random seed when none is given


async def test_invalid_requests_say_why(runtime, painter) -> None:
    with pytest.raises(InvalidGenerationRequest, match="multiple of 8"):
        await queue(runtime, painter, size=(30, 30))
    with pytest.raises(InvalidGenerationRequest, match="prompt must not be empty"):
        await queue(runtime, painter, prompt="   ")
    with pytest.raises(InvalidGenerationRequest, match="unknown then step 'dance'"):
        await queue(runtime, painter, then={"dance": {}})
    with pytest.raises(InvalidGenerationRequest, match="unknown visibility 'loud'"):
        await queue(runtime, painter, then={"post": {"visibility": "loud"}})
    assert await count(runtime, GenerationJob) == 0


async def test_low_disk_refuses_with_the_setting_named(runtime, painter) -> None:
    runtime.settings.generator.min_free_disk_mb = 10**12  # more than any disk has
    with pytest.raises(LowDiskError, match=r"min_free_disk_mb") as info:
        await queue(runtime, painter)
    assert info.value.http_status == 503
    assert await count(runtime, GenerationJob) == 0


# -- the bounded queue ---------------------------------------------------------------------
async def test_full_queue_refuses_and_says_to_retry_later(runtime, painter) -> None:
    runtime.settings.generator.max_queue = 2
    await queue(runtime, painter)
    await queue(runtime, painter)
    with pytest.raises(QueueFullError, match=r"queue is full .*max_queue is 2.*try again") as e:
        await queue(runtime, painter)
    assert e.value.http_status == 503 and e.value.retry_after_s > 0
    assert await count(runtime, GenerationJob) == 2  # the refused row was not kept
    await fake_worker(runtime).run_once()  # both run (one batch): room again
    await queue(runtime, painter)


async def test_concurrent_enqueues_never_exceed_the_cap(runtime, painter) -> None:
    runtime.settings.generator.max_queue = 3

    async def one(i: int) -> bool:
        try:
            await queue(runtime, painter, prompt=f"heron {i}")
        except QueueFullError:
            return False
        return True

    results = await asyncio.gather(*(one(i) for i in range(10)))
    assert sum(results) == 3
    assert await count(runtime, GenerationJob) == 3


async def test_enqueue_wakes_the_generation_worker_after_commit(runtime, painter) -> None:
    woken: list[str | None] = []
    runtime.waker = woken.append
    async with runtime.session() as s:
        await enqueue(s, runtime, painter, "a heron", size=(32, 32))
        assert woken == []  # not before the row is visible
    assert woken == ["generation"]


def test_the_instance_runs_a_generation_worker() -> None:
    assert GenerationWorker in worker_factories()


# -- the worker on the database ------------------------------------------------------------
async def test_done_job_has_a_media_row_and_the_png(runtime, painter) -> None:
    j = await queue(runtime, painter, seed=11)
    worker = GenerationWorker(runtime)
    try:
        assert await worker.run_once() == 1
    finally:
        await worker.aclose()
    row = await job(runtime, j.id)
    assert row.status == "done" and row.attempts == 1 and row.post_id is None
    async with runtime.sessions() as s:
        media = await s.get(MediaAttachment, row.media_id)
    path = runtime.settings.media_path / media.file_name
    assert path.is_file() and media.file_name == row.result["file_name"]
    assert (media.width, media.height, media.size_bytes) == (32, 32, path.stat().st_size)
    assert media.description == "AI-generated image: a heron, ink wash"  # says so, then the prompt
    assert media.blurhash and len(media.sha256) == 64
    recipe = read_recipe(path)
    assert recipe.seed == 11 and recipe.model == "builtin:tiny" and recipe.weights_hash


async def test_batches_jobs_of_one_shape(runtime, painter) -> None:
    a = await queue(runtime, painter, prompt="one")
    b = await queue(runtime, painter, prompt="two", size=(48, 48))
    c = await queue(runtime, painter, prompt="three")
    pipeline = FakePipeline()
    worker = GenerationWorker(runtime, pipeline_factory=lambda: pipeline)
    assert await worker.run_once() == 2  # a and c share a shape; b waits
    assert [len(batch) for batch in pipeline.batches] == [2]
    assert [(await job(runtime, x.id)).status for x in (a, b, c)] == ["done", "queued", "done"]
    assert await worker.run_once() == 1


async def test_out_of_memory_fails_that_job_and_the_next_runs(runtime, painter) -> None:
    bad = await queue(runtime, painter, prompt="boom")
    good = await queue(runtime, painter, prompt="fine")
    worker = fake_worker(runtime, oom_prompts=["boom, ink wash"])
    await worker.run_once()  # OOM for the batch -> each alone -> only "boom" fails
    row = await job(runtime, bad.id)
    assert (row.status, row.last_error) == ("failed", "out of GPU memory")
    assert (await job(runtime, good.id)).status == "done"


async def test_safety_block_publishes_nothing(runtime, painter) -> None:
    j = await queue(runtime, painter, prompt="nope", then={"post": {}})
    await fake_worker(runtime, block_prompts=["nope, ink wash"]).run_once()
    row = await job(runtime, j.id)
    assert row.status == "blocked" and "safety checker" in row.last_error
    assert row.media_id is None and await count(runtime, Post) == 0


async def test_transient_failure_retries_later_with_a_growing_delay(
    runtime, painter, clock
) -> None:
    assert GENERATION.retry_delay(1) == timedelta(seconds=30)
    assert GENERATION.retry_delay(2) == timedelta(seconds=60)
    j = await queue(runtime, painter)
    await fake_worker(runtime, error=RuntimeError("flaky driver")).run_once()
    row = await job(runtime, j.id)
    assert row.status == "queued" and "flaky driver" in row.last_error
    assert row.run_at == clock.now + timedelta(seconds=30)
    worker = fake_worker(runtime)
    assert await worker.run_once() == 0  # not due yet
    clock.advance(seconds=31)
    assert await worker.run_once() == 1
    row = await job(runtime, j.id)
    assert row.status == "done" and row.attempts == 2 and row.last_error is None


async def test_bad_model_fails_for_good_after_the_attempts(runtime, painter, clock) -> None:
    runtime.settings.generator.model = "/nonexistent/model"
    j = await queue(runtime, painter)
    worker = GenerationWorker(runtime)
    for _ in range(3):
        await worker.run_once()
        clock.advance(hours=1)
    row = await job(runtime, j.id)
    assert row.status == "failed" and row.attempts == 3
    assert "[generator] model = '/nonexistent/model'" in row.last_error


# -- then: post ----------------------------------------------------------------------------
async def test_post_step_publishes_the_image_as_a_note(runtime, painter, client) -> None:
    j = await queue(runtime, painter, prompt="a heron at dusk", then={"post": {}})
    await fake_worker(runtime).run_once()
    row = await job(runtime, j.id)
    assert row.status == "done" and row.post_id
    async with runtime.sessions() as s:
        post = await s.get(Post, row.post_id)
    assert post.source == "a heron at dusk"  # the prompt as asked, without the style
    assert post.recipe["prompt"] == "a heron at dusk, ink wash"
    note = (await client.get(post.uri, headers={"Accept": "application/activity+json"})).json()
    (att,) = note["attachment"]
    assert att["type"] == "Image" and att["url"].endswith(row.result["file_name"])
    assert att["name"] == "AI-generated image: a heron at dusk, ink wash"
    assert note["recipe"]["seed"] == row.recipe["seed"]
    # by default the file carries a signed C2PA manifest: made by a trained algorithm
    manifest = read_manifest((runtime.settings.media_path / row.result["file_name"]).read_bytes())
    assert manifest is not None
    active = manifest["manifests"][manifest["active_manifest"]]
    assert TRAINED_ALGORITHMIC_MEDIA in json.dumps(active["assertions"])
    # a keyword filter and a reader see it is AI-made: the hashtag, in the text and as a tag
    assert "#<span>AIGenerated</span>" in note["content"]
    assert {"type": "Hashtag", "name": "#aigenerated",
            "href": f"{runtime.settings.base_url}/tags/aigenerated"} in note["tag"]  # fmt: skip


async def test_then_post_can_reply_and_mention(runtime, painter, new_account) -> None:
    asker = await new_account("asker")
    async with runtime.session() as s:
        author = await s.get(Account, asker.id)
        question = await publish(s, runtime, author, Draft(text="draw me a heron?"))
    then = {"post": {"in_reply_to_post_id": question.id, "visibility": "unlisted",
                     "text": "here you are"}}  # fmt: skip
    j = await queue(runtime, painter, then=then, requested_by=asker.uri)
    await fake_worker(runtime).run_once()
    row = await job(runtime, j.id)
    async with runtime.sessions() as s:
        reply = await s.get(Post, row.post_id)
    assert reply.in_reply_to_id == question.id and reply.visibility == "unlisted"
    assert reply.source == "here you are" and row.requested_by == asker.uri


async def test_a_failing_then_step_keeps_the_image(runtime, painter, new_account) -> None:
    asker = await new_account("asker")
    async with runtime.session() as s:
        author = await s.get(Account, asker.id)
        question = await publish(s, runtime, author, Draft(text="draw?"))
    j = await queue(runtime, painter, then={"post": {"in_reply_to_post_id": question.id}})
    async with runtime.session() as s:
        await delete(s, runtime, author, await s.get(Post, question.id))
    await fake_worker(runtime).run_once()
    row = await job(runtime, j.id)
    assert row.status == "failed" and row.last_error.startswith("image made, but post failed")
    assert row.media_id is not None and row.post_id is None


async def test_restart_mid_job_runs_it_again_and_posts_once(runtime, painter, clock) -> None:
    j = await queue(runtime, painter, then={"post": {}})
    dead = DbJobStore(runtime)  # a worker that claims the job and then dies (kill -9)
    (claimed,) = await dead.claim_batch(4, lease_s=600)
    assert (await job(runtime, j.id)).status == "running"

    fresh = GenerationWorker(runtime)
    try:
        assert await fresh.run_once() == 0  # a live lease is left alone
        clock.advance(seconds=601)
        assert await fresh.run_once() == 1  # after a restart: requeued, re-run, posted
    finally:
        await fresh.aclose()
    row = await job(runtime, j.id)
    assert row.status == "done" and row.attempts == 2 and row.post_id

    # the "dead" worker wakes up late and reports its result: nothing changes
    from generator.testing import FakePipeline as _Fake

    gen = _Fake().generate([claimed.recipe])[0]
    path = runtime.settings.media_path / "late.png"
    gen.image.save(path)
    from generator.recipe import GenerationResult

    await dead.complete(claimed.id, GenerationResult(
        path=path, sha256="0" * 64, width=32, height=32, blurhash="", size_bytes=1,
        recipe=gen.recipe,
    ))  # fmt: skip
    assert not path.exists()
    assert await count(runtime, Post) == 1 and await count(runtime, MediaAttachment) == 1
    assert (await job(runtime, j.id)).post_id == row.post_id


async def test_a_given_recipe_is_run_on_this_instance_model(runtime, painter) -> None:
    remote = Recipe(prompt="a heron", seed=9, steps=1, width=32, height=32,
                    model="stabilityai/sd-turbo", weights_hash="sha256:" + "a" * 64)  # fmt: skip
    j = await queue(runtime, painter, remote, size=None, steps=None, seed=10)
    assert j.recipe["model"] == "" and j.recipe["weightsHash"] == ""
    assert j.recipe["seed"] == 10 and j.recipe["prompt"] == "a heron"  # no style added


# -- pages -----------------------------------------------------------------------------------
async def test_home_and_profile_pages_show_the_images(runtime, painter) -> None:
    await queue(runtime, painter, prompt="a heron", then={"post": {}})
    await fake_worker(runtime).run_once()
    async with runtime.sessions() as s:
        media = await s.scalar(select(MediaAttachment))
    async with asgi_client(runtime) as client:
        for page in ("/", "/@painter"):
            html = (await client.get(page)).text
            assert f'src="{runtime.urls.media(media.file_name)}"' in html, page
            assert 'alt="AI-generated image: a heron, ink wash"' in html
