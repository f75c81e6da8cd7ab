"""The inbox claim is fair per remote server (instance/inbound/claim.py), on SQLite and on
PostgreSQL: a flood from one server never makes another server's activity wait behind it,
and one actor's activities still come in the order they arrived."""

from __future__ import annotations

import asyncio
import json

import pytest
from sqlalchemy import select

from instance.inbound.claim import claim_fair
from instance.inbound.intake import Intake
from instance.inbound.worker import InboxWorker
from instance.storage.models import InboxItem, Post
from tests.instance.inbox_helpers import post
from tests.instance_fixtures import make_settings

FLOOD = 1000


@pytest.fixture(params=["sqlite", "postgresql"])
def settings(request, tmp_path):
    if request.param == "postgresql":
        url = request.getfixturevalue("pg_database")
        return make_settings(tmp_path / "instance", database={"url": url})
    return make_settings(tmp_path / "instance")


async def queue_flood(runtime, actor, n: int) -> list[str]:
    """`n` Create{Note} from `actor` stored by the intake's writer, as the inbox route stores
    them (it fills `sender_host`); their activity ids, in arrival order."""
    activities = [actor.create(actor.note(f"<p>flood {i}</p>")) for i in range(n)]
    writer, now = runtime.service(Intake).writer, runtime.now()
    rows = [{
        "activity_uri": activity["id"], "actor_uri": actor.uri, "body": json.dumps(activity),
        "signer_key_id": actor.key_id, "status": "queued", "attempts": 0, "run_at": now,
        "created_at": now,
    } for activity in activities]  # fmt: skip
    await asyncio.gather(*(writer.write(row) for row in rows))  # queued in this order
    return [a["id"] for a in activities]


async def test_a_second_servers_activity_is_handled_in_the_first_step(runtime, client, fedi):
    """1,000 activities queued from server A, then one from server B: the first worker step
    handles B's, while an arrival-ordered claim would have taken 32 of A's first."""
    flooder = fedi.actor("flooder", "a.example")
    await queue_flood(runtime, flooder, FLOOD)
    bob = fedi.actor("bob", "b.example", key=1)
    note = bob.note("<p>just one</p>")
    assert (await post(client, runtime, bob, bob.create(note))).status_code == 202
    async with runtime.sessions() as s:
        hosts = dict((await s.execute(
            select(InboxItem.sender_host, InboxItem.actor_uri).distinct()
        )).all())  # fmt: skip
    assert hosts == {"a.example": flooder.uri, "b.example": bob.uri}  # filled at intake

    handled = await InboxWorker(runtime).run_once()

    assert 1 < handled < FLOOD
    async with runtime.sessions() as s:
        item = await s.scalar(select(InboxItem).where(InboxItem.actor_uri == bob.uri))
        assert item is not None and item.status == "done"
        assert await s.scalar(select(Post.id).where(Post.uri == note["id"])) is not None


async def test_the_claim_takes_servers_round_robin_and_each_actor_in_order(runtime, fedi):
    """Within a claim, every server's oldest item comes before any server's second; per
    actor, the items taken are its oldest, in arrival order."""
    a1, a2 = fedi.actor("one", "a.example"), fedi.actor("two", "a.example", key=1)
    b = fedi.actor("three", "b.example", key=2)
    ids = {actor.uri: await queue_flood(runtime, actor, 10) for actor in (a1, a2, b)}
    async with runtime.session() as session:
        claimed = await claim_fair(session, now=runtime.now(), limit=6)
    by_host: dict[str, int] = {}
    for item in claimed:
        by_host[item.sender_host] = by_host.get(item.sender_host, 0) + 1
    assert by_host == {"a.example": 3, "b.example": 3}
    for actor, sent in ids.items():
        taken = sorted((i for i in claimed if i.actor_uri == actor), key=lambda i: i.id)
        assert [i.activity_uri for i in taken] == sent[: len(taken)]  # its oldest, in order


async def test_an_actor_running_elsewhere_is_not_claimed_twice(runtime, fedi):
    """A second worker (another inbox process) leaves an actor whose items are running
    elsewhere for later, so one actor's activities are never handled at once by two."""
    alice, bob = fedi.actor("alice", "a.example"), fedi.actor("bob", "b.example", key=1)
    await queue_flood(runtime, alice, 5)
    await queue_flood(runtime, bob, 5)
    async with runtime.session() as session:
        first = await claim_fair(session, now=runtime.now(), limit=1)
    async with runtime.session() as session:
        second = await claim_fair(session, now=runtime.now(), limit=10)
    assert len(first) == 1
    assert {i.actor_uri for i in second} == {alice.uri, bob.uri} - {first[0].actor_uri}
