"""`dreamloom bench fanout`: one post to F followers on N inboxes (default 10,000 on 1,000;
the goal is 100,000 on 10,000), 10% of them bad.

A temporary instance (SQLite, or the empty database of `--database-url`) gets F remote
followers spread over N remote servers, each server a distinct loopback address (127.0.2.1,
127.0.2.2, ...) with one shared inbox, all served by one asyncio HTTP server in a child
process (`serve_inboxes`). A tenth of the servers are bad: half answer slowly (5-10 s), a
quarter answer 500, a quarter reset the connection. This process enqueues one Create with
`instance.outbound.fanout.enqueue` and runs the real `DeliveryWorker` over the runtime's
SSRF-guarded client; the child reports the moment every healthy inbox has the activity.
Printed: that time (goal: < 60 s at 100,000 on 10,000, on 2 cores), the time until every
inbox was tried once, POSTs sent, outcomes, and this process's CPU per delivery.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import random
import resource
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select, text

from instance.accounts import NewAccount, create_account
from instance.bench.timeline import _require_empty
from instance.outbound.delivery import DeliveryWorker
from instance.outbound.fanout import enqueue
from instance.runtime import Runtime, open_runtime
from instance.settings import settings_from_dict
from instance.setup import ensure_instance
from instance.storage.models import Account, Base, Delivery, Follow

Answer = Callable[[str, str, bytes], Awaitable[int | None]]
"""(host, path, body) -> the status to answer, or None to reset the connection."""

SLOW_SECONDS = (5.0, 10.0)


# -- a loopback HTTP server for many inboxes (shared with the crash test) ---------------------
def loopback_hosts(count: int, first: int = 2) -> list[str]:
    """`count` distinct loopback addresses, 127.0.<first>.1 onwards (250 per /24)."""
    return [f"127.0.{first + i // 250}.{1 + i % 250}" for i in range(count)]


async def serve_inboxes(hosts: list[str], port: int, answer: Answer) -> asyncio.Server:
    """A minimal HTTP/1.1 server (keep-alive, Content-Length bodies) listening on every one
    of `hosts` at `port`; each request is answered by `answer(host, path, body)`."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        host = writer.get_extra_info("sockname")[0]
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
                _method, path, _version = head[0].split(" ", 2)
                length = next(
                    (
                        int(h.split(":", 1)[1])
                        for h in head
                        if h.lower().startswith("content-length:")
                    ),
                    0,
                )
                body = await reader.readexactly(length)
                status = await answer(host, path, body)
                if status is None:
                    writer.transport.abort()
                    return
                writer.write(f"HTTP/1.1 {status} X\r\ncontent-length: 0\r\n\r\n".encode())
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, host=hosts, port=port, backlog=1024)


def free_port(host: str = "127.0.0.1") -> int:
    import socket

    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


# -- the remote servers, in a child process -------------------------------------------------
def bad_hosts(hosts: list[str], share: float, seed: int = 7) -> dict[str, str]:
    """A `share` of hosts made bad: half slow, a quarter 500, a quarter reset."""
    picked = random.Random(seed).sample(hosts, round(len(hosts) * share))
    kinds = ["slow", "slow", "error", "reset"]
    return {host: kinds[i % 4] for i, host in enumerate(picked)}


def farm_main(hosts: list[str], port: int, bad: dict[str, str], conn: Connection) -> None:
    """Child process: serve every inbox; report when each healthy host has had one POST."""
    raise_open_files()
    asyncio.run(_farm(hosts, port, bad, conn))


async def _farm(hosts: list[str], port: int, bad: dict[str, str], conn: Connection) -> None:
    healthy_left = set(hosts) - bad.keys()
    received: Counter[str] = Counter()
    rng = random.Random(11)

    async def answer(host: str, path: str, body: bytes) -> int | None:
        received[host] += 1
        kind = bad.get(host)
        if kind == "slow":
            await asyncio.sleep(rng.uniform(*SLOW_SECONDS))
        elif kind == "error":
            return 500
        elif kind == "reset":
            return None
        if host in healthy_left:
            healthy_left.discard(host)
            if not healthy_left:
                conn.send(("healthy", time.monotonic()))
        return 202

    server = await serve_inboxes(hosts, port, answer)
    conn.send(("ready", None))
    await asyncio.to_thread(conn.recv)  # "stop"
    server.close()
    conn.send(("report", dict(received)))


# -- the benchmark --------------------------------------------------------------------------
async def seed_followers(
    rt: Runtime, followee_id: int, hosts: list[str], port: int, n: int
) -> None:
    """`n` remote accounts following `followee_id`, spread evenly over `hosts`, each host
    with one shared inbox; written in bulk."""
    accounts = []
    for i in range(n):
        host = hosts[i % len(hosts)]
        base = f"http://{host}:{port}"
        accounts.append(
            {
                "username": f"u{i}", "username_key": f"u{i}", "domain": host, "local": False,
                "uri": f"{base}/users/u{i}", "inbox_uri": f"{base}/users/u{i}/inbox",
                "shared_inbox_uri": f"{base}/inbox", "kind": "Person",
            }
        )  # fmt: skip
    async with rt.session() as session:
        await session.execute(insert(Account), accounts)
        ids = (await session.scalars(select(Account.id).where(Account.local.is_(False)))).all()
        await session.execute(
            insert(Follow),
            [
                {"follower_id": i, "followee_id": followee_id, "uri": f"f{i}", "accepted": True}
                for i in ids
            ],
        )


def raise_open_files() -> None:
    """Soft RLIMIT_NOFILE up to the hard limit: 10,000 inboxes are 10,000 listening sockets
    in the child, and the sender keeps hundreds of connections open."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def run_bench(
    followers: int, inboxes: int, bad_share: float, concurrency: int | None, directory: Path,
    database_url: str | None = None,
) -> dict[str, Any]:
    raise_open_files()
    if database_url:
        await _require_empty(database_url)
    hosts = loopback_hosts(inboxes)
    port = free_port(hosts[0])
    bad = bad_hosts(hosts, bad_share)
    parent, child = multiprocessing.get_context("spawn").Pipe()
    farm = multiprocessing.get_context("spawn").Process(
        target=farm_main, args=(hosts, port, bad, child), daemon=True
    )
    farm.start()
    federation: dict[str, Any] = {"allow_private_addresses": True}
    if concurrency:
        federation["delivery_concurrency"] = concurrency
    settings = settings_from_dict(
        {"instance": {"domain": f"127.0.0.1:{free_port()}", "scheme": "http"},
         "federation": federation, "server": {"run_workers": False},
         **({"database": {"url": database_url}} if database_url else {})},
        directory / "config.toml", env={},
    )  # fmt: skip
    rt = await open_runtime(settings)
    try:
        await ensure_instance(rt)
        async with rt.session() as session:
            author = await create_account(session, rt.urls, NewAccount("painter", ai=True))
        await seed_followers(rt, author.id, hosts, port, followers)
        assert (await asyncio.to_thread(parent.recv))[0] == "ready"

        started = time.monotonic()
        async with rt.session() as session:
            account = await session.get(Account, author.id)
            assert account is not None
            uri = rt.urls.activity("painter", "bench")
            activity = {
                "@context": "https://www.w3.org/ns/activitystreams", "id": uri, "type": "Create",
                "actor": account.uri, "to": ["https://www.w3.org/ns/activitystreams#Public"],
                "cc": [rt.urls.followers("painter")],
                "object": {"id": f"{uri}/note", "type": "Note", "content": "<p>bench</p>"},
            }  # fmt: skip
            await enqueue(session, rt, account, activity, to_followers=True)
        enqueued = time.monotonic()
        cpu_before = resource.getrusage(resource.RUSAGE_SELF)

        worker = DeliveryWorker(rt)
        worker_run = asyncio.create_task(worker.run_once())
        kind, healthy_at = await asyncio.wait_for(asyncio.to_thread(parent.recv), timeout=300)
        assert kind == "healthy"
        await worker_run
        idle = time.monotonic()
        cpu_after = resource.getrusage(resource.RUSAGE_SELF)
        parent.send("stop")
        _, received = await asyncio.to_thread(parent.recv)

        async with rt.session() as session:
            rows = dict(
                (
                    await session.execute(
                        select(Delivery.status, func.count()).group_by(Delivery.status)
                    )
                ).tuples().all()
            )
        cpu = (cpu_after.ru_utime + cpu_after.ru_stime) - (
            cpu_before.ru_utime + cpu_before.ru_stime
        )
        sends = sum(received.values())
        return {
            "backend": rt.engine.dialect.name,
            "followers": followers,
            "inboxes": inboxes,
            "bad_inboxes": Counter(bad.values()),
            "concurrency": settings.federation.delivery_concurrency,
            "per_host": settings.federation.delivery_per_host,
            "enqueue_s": round(enqueued - started, 3),
            "healthy_delivered_s": round(healthy_at - started, 3),
            "idle_s": round(idle - started, 3),
            "posts_sent": sends,
            "rows": rows,
            "cpu_s": round(cpu, 3),
            "cpu_ms_per_post": round(1000 * cpu / max(1, sends), 3),
        }
    finally:
        if database_url:
            async with rt.engine.begin() as conn:
                await conn.run_sync(Base.metadata.drop_all)
                await conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
        await rt.aclose()
        if farm.is_alive():
            farm.kill()
        farm.join(5)


def bench(
    followers: int, inboxes: int, bad_share: float, concurrency: int | None,
    database_url: str | None = None,
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="dreamloom-bench-") as tmp:
        return asyncio.run(
            run_bench(followers, inboxes, bad_share, concurrency, Path(tmp), database_url)
        )
