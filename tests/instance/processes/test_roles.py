"""Processes by role, as an admin runs them: `dreamloom serve` (a supervisor with one process
per role), `serve --role ...` for a subset, and `dreamloom worker --role generation` on its
own, as a GPU host runs it against the shared PostgreSQL. The processes share nothing but the
database, so these tests only look at the database and at HTTP."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import tomli_w
from sqlalchemy import func, select

from instance.accounts import NewAccount, create_account
from instance.generation.requests import enqueue
from instance.runtime import Runtime, open_runtime
from instance.settings import load_settings
from instance.setup import ensure_instance, write_config
from instance.storage.models import Account, GenerationJob, Post, RoleHeartbeat
from instance.wakeups import wakeups_for
from tests.instance_fixtures import free_port

pytestmark = pytest.mark.slow


def make_instance(directory: Path, port: int, database_url: str = "", **sections: Any) -> Path:
    write_config(directory, f"127.0.0.1:{port}", "http", allow_private_addresses=True,
                 model="builtin:tiny")  # fmt: skip
    config = tomllib.loads((directory / "config.toml").read_text())
    config.setdefault("server", {})["port"] = port
    if database_url:
        config["database"] = {"url": database_url}
    for name, values in sections.items():
        config.setdefault(name, {}).update(values)
    (directory / "config.toml").write_text(tomli_w.dumps(config))
    return directory


@contextmanager
def dreamloom(directory: Path, *args: str, log: str) -> Iterator[subprocess.Popen[bytes]]:
    """`dreamloom ARGS --dir DIRECTORY` in the background, stopped with SIGTERM after."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DREAMLOOM_")}
    with (directory / log).open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "instance.cli", *args, "--dir", str(directory)],
            env=env, stdout=subprocess.DEVNULL, stderr=out,
        )  # fmt: skip
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@asynccontextmanager
async def runtime_of(directory: Path) -> AsyncIterator[Runtime]:
    rt = await open_runtime(load_settings(directory / "config.toml", env={}))
    try:
        await ensure_instance(rt)
        yield rt
    finally:
        await rt.aclose()


async def until(check: Any, what: str, seconds: float = 90.0) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        found = await check()
        if found:
            return found
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.2)


async def healthz(port: int) -> dict[str, Any] | None:
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            r = await client.get(f"http://127.0.0.1:{port}/healthz")
        return dict(r.json())
    except httpx.TransportError:
        return None


async def queue_posts(rt: Runtime, username: str, prompts: list[str], **kw: Any) -> list[int]:
    async with rt.session() as session:
        account = await session.scalar(select(Account).where(Account.username == username))
        assert account is not None
        jobs = [await enqueue(session, rt, account, p, then={"post": {}}, **kw) for p in prompts]
        await session.flush()
        return [job.id for job in jobs]


async def jobs_by_status(rt: Runtime) -> dict[str, int]:
    async with rt.sessions() as session:
        rows = await session.execute(
            select(GenerationJob.status, func.count()).group_by(GenerationJob.status)
        )
        return {status: n for status, n in rows.all()}


def test_serve_runs_only_the_roles_asked_for(tmp_path: Path) -> None:
    """`serve --role web,inbox --processes inbox=2` runs a web process and two inbox
    processes, nothing else; each reports its heartbeat, which /healthz lists."""
    port = free_port()
    directory = make_instance(tmp_path / "inst", port)

    async def go() -> dict[str, Any]:
        async def both_beat() -> dict[str, Any] | None:
            health = await healthz(port)
            roles = sorted(r["role"] for r in (health or {}).get("roles", []))
            return health if roles == ["inbox", "inbox", "web"] else None

        return dict(await until(both_beat, "the web and inbox heartbeats"))

    with dreamloom(directory, "serve", "--role", "web,inbox", "--processes", "inbox=2",
                   log="serve.log") as proc:  # fmt: skip
        health = asyncio.run(go())
        assert proc.poll() is None
        wake = sorted(p.name.split(".")[0] for p in (directory / "data/run/wake").iterdir())
    assert health["status"] == "ok", health
    assert wake == ["inbox", "inbox", "retention", "retention"]  # no delivery, no generation
    assert proc.returncode == 0
    log = (directory / "serve.log").read_text()
    assert "(web x1, inbox x2)" in log, log
    assert "Dreamloom stopped (SIGTERM" in log.rstrip().splitlines()[-1], log


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["serve", "--role", "web,painting"], "unknown role 'painting'"),
        (["worker", "--role", "web"], "unknown role 'web'"),
        (["worker", "--role", "inbox", "--concurrency", "0"], "--concurrency must be at least 1"),
        (["serve", "--web-processes", "0"], "--web-processes must be at least 1"),
        (["serve", "--processes", "inbox=0"], "--processes takes ROLE=N with N >= 1"),
    ],
)
def test_a_wrong_role_or_count_is_one_error_line(
    tmp_path: Path, args: list[str], message: str
) -> None:
    """A mistake on the command line is one `error:` line naming what is wrong, exit 1,
    and nothing starts."""
    directory = make_instance(tmp_path / "inst", free_port())
    env = {k: v for k, v in os.environ.items() if not k.startswith("DREAMLOOM_")}
    r = subprocess.run([sys.executable, "-m", "instance.cli", *args, "--dir", str(directory)],
                       env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert r.returncode == 1, r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.postgres
def test_a_gpu_host_runs_only_generation_against_the_shared_database(
    tmp_path: Path, pg_database: str
) -> None:
    """The scaled-out layout: one host serves web, inbox and delivery; the GPU host runs only
    `dreamloom worker --role generation` with its own copy of the config, against the same
    PostgreSQL. A job queued on the web host is generated on the GPU host and posted: the post
    is on the web host's pages."""
    port = free_port()
    web_host = make_instance(tmp_path / "web-host", port, pg_database)
    gpu_host = make_instance(tmp_path / "gpu-host", port, pg_database)  # same instance, other disk

    async def go() -> str:
        async with runtime_of(web_host) as rt:
            async with rt.session() as session:
                await create_account(session, rt.urls, NewAccount("painter", ai=True))
            await until(lambda: healthz(port), "the web host to answer")
            [job_id] = await queue_posts(rt, "painter", ["a lighthouse in fog"])

            async def posted() -> str | None:
                async with rt.sessions() as session:
                    job = await session.get(GenerationJob, job_id)
                    if job is None or job.post_id is None:
                        return None
                    post = await session.get(Post, job.post_id)
                    return post.uri if post is not None else None

            uri = str(await until(posted, "the GPU host's post"))
            async with httpx.AsyncClient(timeout=10, follow_redirects=True) as client:
                page = await client.get(uri, headers={"Accept": "text/html"})  # -> its page
            assert page.status_code == 200 and "lighthouse" in page.text
            health = await healthz(port)
            assert {r["role"] for r in (health or {})["roles"]} >= {"web", "generation"}
            return uri

    with (
        dreamloom(web_host, "serve", "--role", "web,inbox,delivery", log="serve.log"),
        dreamloom(gpu_host, "worker", "--role", "generation", log="worker.log") as gpu,
    ):
        asyncio.run(go())
        assert gpu.poll() is None
    log = (gpu_host / "worker.log").read_text()
    assert "Dreamloom worker running generation" in log, log
    assert not (web_host / "worker.log").exists()


@pytest.mark.postgres
def test_several_generation_workers_drain_one_queue_without_duplicates_or_loss(
    tmp_path: Path, pg_database: str
) -> None:
    """Generation workers on several processes (CPU, builtin:tiny) share one PostgreSQL
    queue: every job is generated and posted exactly once. A worker SIGKILLed in the middle
    of a job loses nothing: once its lease runs out another worker runs the job again."""
    port = free_port()
    directory = make_instance(
        tmp_path / "inst", port, pg_database,
        generator={"job_timeout_s": 20.0, "max_batch": 1, "max_queue": 100},
    )

    async def go() -> None:
        async with runtime_of(directory) as rt:
            async with rt.session() as session:
                await create_account(session, rt.urls, NewAccount("painter", ai=True))
            # one slow job first, for the worker that will be killed while it runs
            [slow] = await queue_posts(rt, "painter", ["a slow heron"], steps=8, size=(256, 256))
            with dreamloom(directory, "worker", "--role", "generation", log="doomed.log") as doomed:

                async def running() -> bool:
                    async with rt.sessions() as session:
                        job = await session.get(GenerationJob, slow)
                        return job is not None and job.status == "running"

                await until(running, "the first worker to take the slow job", seconds=120)
                doomed.send_signal(signal.SIGKILL)
                doomed.wait()
            names = ("a.log", "b.log", "c.log")
            with (
                dreamloom(directory, "worker", "--role", "generation", log=names[0]) as a,
                dreamloom(directory, "worker", "--role", "generation", log=names[1]) as b,
                dreamloom(directory, "worker", "--role", "generation", log=names[2]) as c,
            ):

                async def all_listening() -> bool:  # each has loaded its model and beats
                    async with rt.sessions() as session:
                        pids = set(await session.scalars(
                            select(RoleHeartbeat.pid).where(RoleHeartbeat.role == "generation")
                        ))  # fmt: skip
                    return {a.pid, b.pid, c.pid} <= pids

                await until(all_listening, "three generation workers", seconds=300)
                # jobs of a second or so each: whichever worker wakes first cannot take them
                # all before the others' next claim (a wake-up, else their 1 s poll)
                ids = await queue_posts(rt, "painter", [f"heron number {n}" for n in range(16)],
                                        steps=8, size=(256, 256))  # fmt: skip
                wakeups = wakeups_for(rt.settings)  # as the web process does after queueing
                wakeups.notify("generation")
                await asyncio.sleep(0.1)
                await wakeups.aclose()

                async def all_done() -> bool:
                    return (await jobs_by_status(rt)) == {"done": len(ids) + 1}

                await until(all_done, "every job done", seconds=240)

            async with rt.sessions() as session:
                jobs = list(await session.scalars(select(GenerationJob)))
                posts = list(await session.scalars(select(Post).where(Post.local.is_(True))))
            assert len(posts) == len(ids) + 1  # one post per job, none twice
            assert {j.post_id for j in jobs} == {p.id for p in posts}
            retried = next(j for j in jobs if j.id == slow)
            assert retried.attempts == 2  # killed once, run again by a survivor
            served = [(directory / n).read_text().count(" done in ") for n in names]
            assert sum(1 for n in served if n) >= 2, served  # the queue was shared

    asyncio.run(go())
