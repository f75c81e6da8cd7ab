"""The same instance on a real PostgreSQL (asyncpg): migrations, discovery, the idempotent
inbox under concurrency, SKIP LOCKED claiming, the exact generation queue bound, delivery.

The test command (scripts/test.sh) starts a throwaway PostgreSQL on loopback and sets
DREAMLOOM_TEST_POSTGRES_URL; each test gets a fresh database on it. In CI a missing server
is a failure, not a skip.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from instance import jobs
from instance.errors import QueueFullError
from instance.generation.requests import enqueue
from instance.inbound.worker import InboxWorker
from instance.outbound.fanout import enqueue as enqueue_activity
from instance.queues import DELIVERY
from instance.storage.migrate import current_revision, head_revision
from instance.storage.models import (
    Account,
    Delivery,
    Follow,
    GenerationJob,
    InboxItem,
    Notification,
)
from tests.instance.inbox_helpers import post
from tests.instance_fixtures import AP_ACCEPT, make_settings

pytestmark = pytest.mark.postgres


@pytest.fixture
def settings(tmp_path, pg_database):
    return make_settings(tmp_path / "instance", database={"url": pg_database})


async def test_schema_migrated_to_head(runtime) -> None:
    assert runtime.engine.dialect.name == "postgresql"
    assert await current_revision(runtime.engine) == head_revision()


async def test_discovery_on_postgres(client, runtime, new_account) -> None:
    bot = await new_account("painter", ai=True)
    r = await client.get(
        "/.well-known/webfinger", params={"resource": f"acct:painter@{runtime.settings.host}"}
    )
    assert r.status_code == 200
    actor = (await client.get(bot.uri, headers=AP_ACCEPT)).json()
    assert actor["type"] == "Service" and actor["publicKey"]["owner"] == bot.uri


async def test_inbox_concurrent_duplicates_make_one_row(client, runtime, fedi, new_account) -> None:
    """A redelivered activity on PostgreSQL: 50 concurrent copies -> one row, one
    notification."""
    bob = await new_account("bob")
    alice = fedi.actor("alice")
    activity = alice.create(alice.note(tag=[{"type": "Mention", "href": bob.uri}]))
    answers = await asyncio.gather(*(post(client, runtime, alice, activity) for _ in range(50)))
    assert {r.status_code for r in answers} == {202}
    await InboxWorker(runtime).run_once()
    async with runtime.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(InboxItem)) == 1
        assert await s.scalar(select(func.count()).select_from(Notification)) == 1


async def test_claims_never_overlap(runtime, new_account) -> None:
    """Two workers claiming at once (FOR UPDATE SKIP LOCKED) never get the same row."""
    bot = await new_account("painter", ai=True)
    async with runtime.session() as s:
        bot = await s.get(Account, bot.id)
        for n in range(40):
            remote = Account(
                username=f"r{n}",
                username_key=f"r{n}",
                domain=f"h{n}.example",
                uri=f"https://h{n}.example/u",
                inbox_uri=f"https://h{n}.example/inbox",
            )
            s.add(remote)
            await s.flush()
            s.add(Follow(follower_id=remote.id, followee_id=bot.id, uri=f"urn:f{n}", accepted=True))
        await s.flush()
        await enqueue_activity(
            s,
            runtime,
            bot,
            {"id": "urn:act", "type": "Create", "actor": bot.uri},
            to_followers=True,
        )

    async def claim() -> list[int]:
        async with runtime.session() as s:
            rows = await jobs.claim(
                s, Delivery, DELIVERY, now=runtime.now(), limit=25, lease=timedelta(minutes=1)
            )
            await asyncio.sleep(0.05)  # hold the row locks while the other claims
            return [r.id for r in rows]

    first, second = await asyncio.gather(claim(), claim())
    assert len(first) + len(second) == 40
    assert not set(first) & set(second)


async def test_generation_queue_bound_is_exact(runtime, new_account) -> None:
    bot = await new_account("painter", ai=True)
    runtime.settings.generator.max_queue = 3

    async def one() -> str:
        try:
            async with runtime.session() as s:
                await enqueue(
                    s, runtime, await s.get(Account, bot.id), "a heron", size=(32, 32), steps=1
                )
            return "queued"
        except QueueFullError:
            return "full"

    results = await asyncio.gather(*(one() for _ in range(10)))
    assert results.count("queued") == 3
    async with runtime.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(GenerationJob)) == 3
