"""The schedule's slot claim on a real PostgreSQL: concurrent workers post a slot once."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from instance.generation.schedule import ScheduleWorker, set_schedule
from instance.storage.models import Account, GenerationJob
from tests.instance.generation_fixtures import Clock
from tests.instance_fixtures import make_settings

pytestmark = pytest.mark.postgres


@pytest.fixture
def settings(tmp_path, pg_database):
    gen = {"model": "builtin:tiny", "device": "cpu", "min_free_disk_mb": 1, "max_queue": 50}
    return make_settings(tmp_path / "instance", database={"url": pg_database}, generator=gen)


async def test_concurrent_workers_post_each_slot_once(runtime, new_account) -> None:
    clock = runtime.clock = Clock()
    ids = []
    for name in ("a", "b", "c"):
        account = await new_account(f"painter_{name}", ai=True)
        async with runtime.session() as s:
            set_schedule(await s.get(Account, account.id), 30, clock.now)
        ids.append(account.id)
    for _ in range(2):
        clock.advance(minutes=30)
        done = await asyncio.gather(*(ScheduleWorker(runtime).post_due() for _ in range(8)))
        assert sum(done) == 3
    async with runtime.sessions() as s:
        owners = list(await s.scalars(select(GenerationJob.account_id)))
    assert sorted(owners) == sorted(ids * 2)
