"""`dreamloom queue cancel` and `dreamloom generator pause|resume|status`, through the CLI on
SQLite and PostgreSQL, with the real generation worker on builtin:tiny."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from instance.accounts import get_local
from instance.generation import asks
from instance.generation.requests import enqueue
from instance.generation.worker import GenerationWorker, load_configured_pipeline, staged_factory
from instance.runtime import Runtime
from instance.storage.models import Account, GenerationJob, MediaAttachment, Post
from tests.instance.cli.conftest import CliInstance
from tests.instance.cli.helpers import one_error
from tests.instance.generation_fixtures import share_cache, tiny_cache  # noqa: F401


@pytest.fixture
def inst(cli_instance: CliInstance, tiny_cache: Path) -> CliInstance:  # noqa: F811
    share_cache(cli_instance.settings(), tiny_cache)
    cli_instance.ok("account", "create", "painter", "--ai", "--no-pictures")
    return cli_instance


def tiny(rt: Runtime) -> None:
    gen = rt.settings.generator
    gen.model, gen.device, gen.min_free_disk_mb = "builtin:tiny", "cpu", 1


def queue_jobs(inst: CliInstance, *prompts: str) -> list[str]:
    """Jobs that post their image when done; their public ids."""

    async def go(rt: Runtime) -> list[str]:
        tiny(rt)
        ids = []
        async with rt.session() as s:
            me = await get_local(s, "painter")
            for p in prompts:
                job = await enqueue(s, rt, me, p, size=(32, 32), steps=1, then={"post": {}})
                ids.append(job.public_id)
        return ids

    return inst.db(go)


def run_worker(inst: CliInstance, on_stage: Callable[[str], None] | None = None) -> int:
    """The real generation worker until it finds nothing to claim; jobs it held."""

    async def go(rt: Runtime) -> int:
        tiny(rt)
        factory = lambda: load_configured_pipeline(rt.settings)  # noqa: E731
        worker = GenerationWorker(
            rt, pipeline_factory=staged_factory(factory, on_stage or (lambda _: None))
        )
        held = 0
        try:
            while n := await worker.run_once():
                held += n
        finally:
            await worker.aclose()
        return held

    return inst.db(go)


def jobs_by_id(inst: CliInstance) -> dict[str, Any]:
    return {j["job"]: j for j in inst.json("queue", "--all")}


def counts(inst: CliInstance) -> tuple[int, int]:
    async def go(rt: Runtime) -> tuple[int, int]:
        async with rt.sessions() as s:
            posts = await s.scalar(select(func.count()).select_from(Post))
            media = await s.scalar(select(func.count()).select_from(MediaAttachment))
        return int(posts or 0), int(media or 0)

    return inst.db(go)


def test_a_cancelled_queued_job_is_never_claimed(inst: CliInstance) -> None:
    """A queued job that is cancelled stays cancelled through a worker run: no image, no
    post; the job queued next to it is made and posted as usual."""
    keep, drop = queue_jobs(inst, "a heron", "a crane")
    # without --yes and no answer, nothing changes
    assert "aborted" in one_error(inst.dl("queue", "cancel", drop, input=""))
    assert jobs_by_id(inst)[drop]["status"] == "queued"

    r = inst.ok("queue", "cancel", drop, "--yes")
    assert f"job {drop}: cancelled, was queued" in r.stdout
    assert drop not in {j["job"] for j in inst.json("queue")}  # off the default list
    assert run_worker(inst) == 1  # only the other job was claimed
    jobs = jobs_by_id(inst)
    assert jobs[drop]["status"] == "cancelled" and jobs[drop]["reason"] == "cancelled by the admin"
    assert jobs[keep]["status"] == "done"
    assert counts(inst) == (1, 1)  # one post, one image: the kept job's

    # an ended job cannot be cancelled, an unknown one is named
    assert "already cancelled" in one_error(inst.dl("queue", "cancel", drop, "--yes"))
    assert "already done" in one_error(inst.dl("queue", "cancel", keep, "--yes"))
    assert "no generation job 'nope'" in one_error(inst.dl("queue", "cancel", "nope", "--yes"))


async def ask(rt: Runtime) -> str:
    """Someone on another server mentions the bot with a prompt; the job that answers."""
    tiny(rt)
    async with rt.session() as s:
        bot = await get_local(s, "painter")
        asker = Account(
            username="alice", username_key="alice", domain="far.example", local=False,
            uri="https://far.example/users/alice", kind="Person",
        )  # fmt: skip
        s.add(asker)
        await s.flush()
        post = Post(uri="https://far.example/statuses/1", account_id=asker.id, local=False,
                    content="<p>@painter a heron</p>", source="@painter a heron")  # fmt: skip
        s.add(post)
        await s.flush()
        assert await asks.on_mention(s, rt, post, bot, asker) == "queued"
        job = await s.scalar(select(GenerationJob).where(GenerationJob.account_id == bot.id))
        assert job is not None and "answer" in job.then
        return job.public_id


def test_a_running_job_cancelled_mid_generation_leaves_nothing(inst: CliInstance) -> None:
    """The admin cancels an ask's job while the GPU is making its image: the worker finishes
    the batch, then discards the image file, writes no media row and runs no `then` step:
    the asker gets no reply (neither the picture nor a failure notice)."""
    job = inst.db(ask)
    answers: list[Any] = []

    def cancel_while_generating(stage: str) -> None:
        if stage == "generating":  # the job is claimed and running now
            answers.append(inst.dl("queue", "cancel", job, "--yes", "--json"))

    assert run_worker(inst, cancel_while_generating) == 1
    (r,) = answers
    assert r.exit_code == 0, r.output
    assert '"was": "running"' in r.stdout
    assert jobs_by_id(inst)[job]["status"] == "cancelled"
    assert counts(inst) == (1, 0)  # only the asker's post: no reply, no image
    media = inst.settings().media_path
    assert not list(media.glob("*.png")), "the cancelled job's image was left on disk"


def test_pause_holds_new_jobs_and_resume_releases_them(inst: CliInstance) -> None:
    """While paused the worker claims nothing, requests still queue and status says how many
    wait and for how long; resume lets the worker make them."""
    assert inst.json("generator", "status")["state"] == "running"
    r = inst.ok("generator", "pause")
    assert "generator: paused" in r.stdout
    assert "already paused" in inst.ok("generator", "pause").stdout
    (job,) = queue_jobs(inst, "a heron")  # a request still queues

    async def age_it(rt: Runtime) -> None:
        async with rt.session() as s:
            row = await s.scalar(select(GenerationJob).where(GenerationJob.public_id == job))
            assert row is not None
            row.created_at = rt.now() - timedelta(minutes=5)

    inst.db(age_it)
    assert run_worker(inst) == 0  # nothing claimed while paused
    state = inst.json("generator", "status")
    assert state["paused"] is True and state["state"] == "paused"
    assert state["queued"] == 1 and state["running"] == 0
    assert 300 <= state["oldest_queued_age_s"] < 400
    text = inst.ok("generator", "status").stdout
    assert "generator: paused; 1 queued, 0 running" in text and "oldest waiting 5 min" in text

    assert "running again; 1 queued" in inst.ok("generator", "resume").stdout
    assert run_worker(inst) == 1
    assert jobs_by_id(inst)[job]["status"] == "done"
    state = inst.json("generator", "status")
    assert state == {**state, "paused": False, "queued": 0, "oldest_queued_age_s": None}
    assert counts(inst) == (1, 1)
