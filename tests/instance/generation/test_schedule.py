"""The schedule worker: AI accounts post on time with varied prompts; quote approvals time out."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from generator.testing import FakePipeline
from instance.content.posting import Draft, publish
from instance.content.quotes import QUOTE_TIMEOUT
from instance.generation.requests import enqueue
from instance.generation.schedule import (
    POSTPONE,
    SUBJECTS,
    ScheduleError,
    ScheduleWorker,
    parse_schedule,
    set_schedule,
)
from instance.generation.worker import GenerationWorker
from instance.roles import worker_factories
from instance.storage.models import Account, GenerationJob, OutboundActivity, Post
from tests.instance.generation_fixtures import Clock
from tests.instance_fixtures import make_settings


@pytest.fixture
def settings(tmp_path):
    gen = {"model": "builtin:tiny", "device": "cpu", "min_free_disk_mb": 1, "max_queue": 8}
    return make_settings(tmp_path / "instance", generator=gen)


@pytest.fixture
def clock(runtime) -> Clock:
    c = Clock()
    runtime.clock = c
    return c


async def scheduled(runtime, new_account, name="painter", minutes=60, **persona):
    """An AI account posting every `minutes`, its first slot one interval from now."""
    account = await new_account(name, ai=True, persona={"style": "ink wash", **persona})
    async with runtime.session() as s:
        row = await s.get(Account, account.id)
        set_schedule(row, minutes, runtime.now())
    return account


async def jobs(rt) -> list[GenerationJob]:
    async with rt.sessions() as s:
        return list(await s.scalars(select(GenerationJob).order_by(GenerationJob.id)))


async def next_post_at(rt, account):
    async with rt.sessions() as s:
        return (await s.get(Account, account.id)).next_post_at


# -- parsing -------------------------------------------------------------------------------
def test_parse_schedule() -> None:
    assert parse_schedule("90m") == 90 and parse_schedule("2h") == 120
    assert parse_schedule("1h30m") == 90 and parse_schedule(" 45min ") == 45
    assert parse_schedule("off") is None
    for bad in ("5x", "", "h", "90", "1m", "8d", "99999h"):
        with pytest.raises(ScheduleError, match="like 90m, 2h"):
            parse_schedule(bad)


def test_the_instance_runs_a_schedule_worker() -> None:
    assert ScheduleWorker in worker_factories()


# -- scheduled posts -----------------------------------------------------------------------
async def test_posts_on_time_then_waits_for_the_next_slot(runtime, clock, new_account) -> None:
    painter = await scheduled(runtime, new_account)
    worker = ScheduleWorker(runtime)
    assert await worker.run_once() == 0  # not due yet
    clock.advance(minutes=59)
    assert await worker.run_once() == 0
    clock.advance(minutes=1)
    assert await worker.run_once() == 1
    assert await worker.run_once() == 0  # the slot is taken
    (job,) = await jobs(runtime)
    assert job.account_id == painter.id and job.status == "queued"
    assert job.then["post"]["visibility"] == "public"
    assert job.recipe["prompt"].endswith(", ink wash")  # the persona's style
    assert job.then["post"]["text"] in SUBJECTS  # the post's text is the subject, no style
    assert await next_post_at(runtime, painter) == clock.now + timedelta(minutes=60)


async def test_each_slot_gets_another_prompt(runtime, clock, new_account) -> None:
    own = ["a heron", "a lighthouse", "a fox", "a teapot"]
    mine = await scheduled(runtime, new_account, "mine", minutes=30, prompts=own)
    builtin = await scheduled(runtime, new_account, "builtin", minutes=30)
    worker = ScheduleWorker(runtime)
    for _ in range(4):
        clock.advance(minutes=30)
        assert await worker.run_once() == 2
    texts = {mine.id: [], builtin.id: []}
    for job in await jobs(runtime):
        texts[job.account_id].append(job.then["post"]["text"])
    assert sorted(texts[mine.id]) == sorted(own)  # 4 slots, 4 different prompts
    assert len(set(texts[builtin.id])) == 4 and set(texts[builtin.id]) <= set(SUBJECTS)


async def test_skips_accounts_without_a_schedule(runtime, clock, new_account) -> None:
    await new_account("quiet", ai=True)  # no schedule
    person = await new_account("alice")
    gone = await scheduled(runtime, new_account, "gone")
    async with runtime.session() as s:
        (await s.get(Account, gone.id)).deleted_at = clock.now
        set_schedule(await s.get(Account, person.id), 60, clock.now)  # not an AI account
    clock.advance(hours=3)
    assert await ScheduleWorker(runtime).run_once() == 0
    assert await jobs(runtime) == []


async def test_concurrent_workers_post_a_slot_once(runtime, clock, new_account) -> None:
    await scheduled(runtime, new_account)
    clock.advance(minutes=60)
    done = await asyncio.gather(*(ScheduleWorker(runtime).post_due() for _ in range(3)))
    assert sum(done) == 1 and len(await jobs(runtime)) == 1


async def test_missed_slots_are_skipped_not_burst(runtime, clock, new_account) -> None:
    painter = await scheduled(runtime, new_account)
    clock.advance(hours=5, minutes=10)  # the instance was down
    worker = ScheduleWorker(runtime)
    assert await worker.run_once() == 1
    assert await worker.run_once() == 0
    assert await next_post_at(runtime, painter) == clock.now + timedelta(minutes=60)


async def test_full_queue_postpones_the_slot(runtime, clock, new_account) -> None:
    runtime.settings.generator.max_queue = 1
    painter = await scheduled(runtime, new_account)
    filler = await new_account("filler", ai=True)
    async with runtime.session() as s:
        queued = await enqueue(s, runtime, await s.get(Account, filler.id), "a filler")
    worker = ScheduleWorker(runtime)
    clock.advance(minutes=60)
    assert await worker.run_once() == 0  # due, but the queue is full: no error, no job
    assert await next_post_at(runtime, painter) == clock.now + POSTPONE
    assert [j.id for j in await jobs(runtime)] == [queued.id]

    async with runtime.session() as s:
        (await s.get(GenerationJob, queued.id)).status = "done"
    clock.advance(seconds=POSTPONE.total_seconds())
    assert await worker.run_once() == 1
    assert [j.account_id for j in await jobs(runtime)] == [filler.id, painter.id]
    assert await next_post_at(runtime, painter) == clock.now + timedelta(minutes=60)


async def test_scheduled_image_is_published_publicly(runtime, clock, new_account) -> None:
    painter = await scheduled(runtime, new_account, prompts=["a heron"])
    async with runtime.session() as s:
        (await s.get(Account, painter.id)).persona["recipe"] = {}
    clock.advance(minutes=60)
    assert await ScheduleWorker(runtime).run_once() == 1
    gpu = GenerationWorker(runtime, pipeline_factory=lambda: FakePipeline())
    try:
        assert await gpu.run_once() == 1
    finally:
        await gpu.aclose()
    (job,) = await jobs(runtime)
    assert job.status == "done", job.last_error
    async with runtime.sessions() as s:
        post = await s.get(Post, job.post_id)
    assert post.account_id == painter.id and post.visibility == "public"
    assert post.source == "a heron" and post.recipe["prompt"] == "a heron, ink wash"


# -- quote approval timeouts: no answer, published as a link -------------------------------
async def test_pending_remix_is_published_as_a_link_after_the_timeout(
    runtime, clock, new_account
) -> None:
    bob = await new_account("bob")
    async with runtime.session() as s:
        mo = Account(username="mo", username_key="mo", domain="m.example", local=False,
                     uri="https://m.example/users/mo", inbox_uri="https://m.example/inbox")

        s.add(mo)
        await s.flush()
        parent = Post(uri="https://m.example/notes/1", account_id=mo.id, content="<p>a fox</p>",
                      visibility="public")  # fmt: skip
        s.add(parent)
        await s.flush()
        draft = Draft(text="a fox, linocut", quote=parent, quote_state="pending")
        remix = await publish(s, runtime, await s.get(Account, bob.id), draft, federate=False)
        remix.published = clock.now
    worker = ScheduleWorker(runtime)

    async def creates() -> list[dict]:
        async with runtime.sessions() as s:
            is_create = OutboundActivity.kind == "Create"
            rows = await s.scalars(select(OutboundActivity).where(is_create))
            return [json.loads(r.body) for r in rows]

    clock.advance(seconds=QUOTE_TIMEOUT.total_seconds() - 1)
    assert await worker.run_once() == 0 and await creates() == []  # still waiting
    clock.advance(seconds=2)
    assert await worker.run_once() == 1
    (create,) = await creates()
    note = create["object"]
    assert note["id"] == remix.uri
    for field in ("quote", "_misskey_quote", "quoteUrl", "quoteUri", "quoteAuthorization"):
        assert field not in note  # a link and a mention only, respecting consent
    assert note["remixOf"] == parent.uri
    assert {"type": "Mention", "href": mo.uri, "name": "@mo@m.example"} in note["tag"]
    async with runtime.sessions() as s:
        assert (await s.get(Post, remix.id)).quote_state == "link"
    assert await worker.run_once() == 0  # published once
