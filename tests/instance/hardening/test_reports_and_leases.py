"""Review findings 22 and 23 (docs/security.md).

- Finding 22: Flag reports were unlimited per actor. An actor may have at most
  MAX_OPEN_PER_REPORTER open reports (a server MAX_OPEN_PER_SERVER); past that its Flags are
  dropped, with the reason on the inbox row.
- Finding 23: after a crash, claimed inbox items waited for the whole 5-minute lease. The
  lease is 30 s and renewed while an item is handled: a dead worker's items are taken again
  half a minute later, and a live worker's slow item is not taken from it.
"""

from __future__ import annotations

import asyncio

import httpx
from sqlalchemy import select

from instance import jobs
from instance.inbound import worker as worker_mod
from instance.inbound.handlers.moderation import MAX_OPEN_PER_REPORTER
from instance.inbound.worker import InboxWorker
from instance.queues import INBOX
from instance.storage.models import InboxItem, Report
from tests.instance.generation_fixtures import Clock
from tests.instance.inbox_helpers import count, post


async def test_one_actor_cannot_bury_the_admin_in_reports(client, runtime, fedi, new_account):
    bot = await new_account("painter", ai=True)
    mallory = fedi.actor("mallory", "m.example")
    for _ in range(MAX_OPEN_PER_REPORTER + 3):
        flag = mallory.activity("Flag", [bot.uri], content="spam")
        assert (await post(client, runtime, mallory, flag)).status_code == 202
        await InboxWorker(runtime).run_once()
    assert await count(runtime, Report) == MAX_OPEN_PER_REPORTER
    async with runtime.sessions() as s:
        dropped = list(await s.scalars(select(InboxItem.last_error).where(
            InboxItem.last_error.is_not(None))))  # fmt: skip
    assert len(dropped) == 3 and all("open reports" in d for d in dropped)


async def test_a_dead_workers_items_are_taken_again_within_the_short_lease(
    client, runtime, fedi
) -> None:
    clock = Clock()
    runtime.clock = clock
    alice = fedi.actor("alice")
    assert (await post(client, runtime, alice, alice.create(), now=clock.now)).status_code == 202
    async with runtime.session() as s:  # a worker claims it, then dies (SIGKILL)
        assert len(await jobs.claim(s, InboxItem, INBOX, now=clock.now, limit=10)) == 1
    clock.advance(seconds=31)
    assert await InboxWorker(runtime).run_once() == 1


async def test_a_slow_item_keeps_its_lease_while_it_is_handled(
    client, runtime, fedi, monkeypatch
) -> None:
    monkeypatch.setattr(worker_mod, "RENEW_EVERY_S", 0.05)
    clock = Clock()
    runtime.clock = clock
    carol = fedi.actor("carol", "slow.example")
    note = carol.note("<p>slow</p>")
    fedi.serve(note["id"], note)
    released = asyncio.Event()

    async def transport(request):
        if str(request.url) == note["id"]:
            await released.wait()
        return fedi(request)

    await runtime.use_http(httpx.AsyncClient(transport=httpx.MockTransport(transport)))
    announce = carol.activity("Announce", note["id"])
    assert (await post(client, runtime, carol, announce, now=clock.now)).status_code == 202
    first = asyncio.create_task(InboxWorker(runtime).run_once())
    await asyncio.sleep(0.1)
    clock.advance(minutes=10)  # far past the lease: only the renewal keeps it ours
    await asyncio.sleep(0.2)
    assert await InboxWorker(runtime).run_once() == 0
    released.set()
    assert await first == 1
