"""Review finding 8 (docs/security.md): one sender cannot fill our disk.

Inbox bodies were kept for ever and nothing limited one actor: one actor grew the database
by 442 MiB in 3.6 s. Now each actor and each server has an allowance (activities and bytes
per minute; past it 429 + Retry-After, nothing written), the inbox refuses with 503 when the
disk is nearly full, and handled activities are deleted after `inbox_keep_days` while a
compact record keeps recognising their redeliveries.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from instance.inbound.limits import InboxLimits
from instance.inbound.retention import SEEN_KEEP, RetentionWorker, prune
from instance.inbound.worker import InboxWorker
from instance.storage.models import InboxItem, InboxSeen
from tests.instance.generation_fixtures import Clock
from tests.instance.inbox_helpers import count, post
from tests.instance_fixtures import make_settings


@pytest.fixture
def settings(tmp_path):
    return make_settings(tmp_path / "instance", federation={
        "inbox_actor_per_minute": 10, "inbox_actor_mb_per_minute": 0.25,
        "inbox_domain_per_minute": 15,
    })  # fmt: skip


async def test_one_actor_past_its_allowance_gets_429_and_nothing_is_written(
    client, runtime, fedi
) -> None:
    alice, bob = fedi.actor("alice", "a.example"), fedi.actor("bob", "b.example", key=1)
    codes = [(await post(client, runtime, alice, alice.create())).status_code for _ in range(14)]
    assert codes == [202] * 10 + [429] * 4
    refused = await post(client, runtime, alice, alice.create())
    assert refused.status_code == 429 and 1 <= int(refused.headers["retry-after"]) <= 60
    assert await count(runtime, InboxItem) == 10
    assert (await post(client, runtime, bob, bob.create())).status_code == 202  # not Alice


async def test_big_activities_count_by_their_size(client, runtime, fedi) -> None:
    alice = fedi.actor("alice", "a.example")
    big = alice.note("<p>" + "x" * 60_000 + "</p>")
    codes = [(await post(client, runtime, alice, alice.create({**big, "id": alice.new_id()})))
             .status_code for _ in range(6)]  # fmt: skip
    assert codes[:4] == [202] * 4 and codes[4:] == [429, 429]  # 0.25 MiB a minute


async def test_one_server_has_an_allowance_for_all_its_actors(client, runtime, fedi) -> None:
    actors = [fedi.actor(f"u{n}", "many.example", key=n % 3) for n in range(4)]
    codes = [(await post(client, runtime, a, a.create())).status_code
             for _ in range(5) for a in actors]  # fmt: skip
    assert codes.count(202) == 15 and codes[15:] == [429] * 5


async def test_a_nearly_full_disk_answers_503_and_writes_nothing(client, runtime, fedi) -> None:
    runtime.service(InboxLimits).disk.free = lambda path: 10 * 1024 * 1024
    alice = fedi.actor("alice", "a.example")
    r = await post(client, runtime, alice, alice.create())
    assert r.status_code == 503 and r.headers["retry-after"]
    assert await count(runtime, InboxItem) == 0


async def test_handled_activities_are_pruned_and_their_redelivery_still_recognised(
    client, runtime, fedi
) -> None:
    clock = Clock()
    runtime.clock = clock
    alice = fedi.actor("alice", "a.example")
    activity = alice.create()
    assert (await post(client, runtime, alice, activity, now=clock.now)).status_code == 202
    await InboxWorker(runtime).run_once()
    waiting = alice.create()
    assert (await post(client, runtime, alice, waiting, now=clock.now)).status_code == 202
    async with runtime.session() as s:  # one that never got handled (its worker is behind)
        await s.execute(update(InboxItem).where(InboxItem.activity_uri == waiting["id"])
                        .values(status="queued"))  # fmt: skip
    clock.advance(days=8)
    worker = RetentionWorker(runtime)
    await worker.run_once()
    async with runtime.sessions() as s:
        left = list(await s.scalars(select(InboxItem.activity_uri)))
    assert left == [waiting["id"]]  # handled: gone; queued: kept
    r = await post(client, runtime, alice, activity, now=clock.now)  # Mastodon redelivers
    assert r.status_code == 202 and await count(runtime, InboxItem) == 1  # recognised
    clock.advance(days=SEEN_KEEP.days + 1)
    await prune(runtime)
    assert await count(runtime, InboxSeen) == 0


async def test_the_retention_worker_prunes_once_an_hour(runtime) -> None:
    clock = Clock()
    runtime.clock = clock
    worker = RetentionWorker(runtime)
    await worker.run_once()
    first = worker.last
    clock.advance(minutes=30)
    await worker.run_once()
    assert worker.last == first
    clock.advance(minutes=31)
    await worker.run_once()
    assert worker.last == first + timedelta(minutes=61)
