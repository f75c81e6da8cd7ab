"""The suspension rule (instance/moderation/suspension.py) at the inbox and at delivery, with
a remote actor that signs like Mastodon (tests/instance/fediverse.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from instance.content import suspensions
from instance.content.posting import Draft, delete, edit, publish
from instance.generation import asks
from instance.generation.schedule import ScheduleWorker, set_schedule
from instance.inbound import resolve
from instance.moderation.suspension import held_activities
from instance.storage.models import Account, GenerationJob, InboxItem, OutboundActivity, Post
from tests.instance.inbox_helpers import count, post
from tests.instance_fixtures import make_settings


@pytest.fixture
def settings(tmp_path):
    gen = {"model": "builtin:tiny", "device": "cpu", "min_free_disk_mb": 1, "max_queue": 8}
    return make_settings(tmp_path / "instance", generator=gen)


async def test_a_suspended_remote_actor_gets_403_and_nothing_is_stored(
    client, runtime, fedi
) -> None:
    """Every activity of a suspended remote account, signed or forwarded to the shared or a
    personal inbox, gets 403 and no inbox row; another account of the same server is still
    taken; unsuspended, the same actor is taken again."""
    alice, bob = fedi.actor("alice"), fedi.actor("bob")
    known = await resolve.account(runtime, alice.uri)
    assert await suspensions.suspend(runtime, known) is True
    assert await suspensions.suspend(runtime, known) is False  # nothing changed

    for path in ("/inbox", "/actor/inbox"):
        r = await post(client, runtime, alice, alice.create(), path)
        assert r.status_code == 403, r.text
    assert await count(runtime, InboxItem) == 0
    assert (await post(client, runtime, bob, bob.create())).status_code == 202

    assert await suspensions.unsuspend(runtime, known) is True
    assert (await post(client, runtime, alice, alice.create())).status_code == 202
    assert await count(runtime, InboxItem) == 2


async def test_only_what_takes_things_back_leaves_a_suspended_account(runtime, new_account) -> None:
    """While suspended, an account's queued Create and post Update are held; its Delete,
    its Undo and the actor Update announcing the suspension are not. Unsuspended, nothing
    of it is held."""
    painter = await new_account("painter")
    async with runtime.session() as s:
        me = await s.get_one(Account, painter.id)
        first = await publish(s, runtime, me, Draft("one"))
        second = await publish(s, runtime, me, Draft("two"))
        await edit(s, runtime, me, second, text="two, edited")
        await delete(s, runtime, me, first)
    async with runtime.session() as s:  # an Undo, as unlike/unboost/unfollow queue them
        s.add(OutboundActivity(uri=f"{painter.uri}#undo-1", account_id=painter.id, kind="Undo",
                               body="{}"))  # fmt: skip
    assert await suspensions.suspend(runtime, painter)

    async def held() -> list[str]:
        async with runtime.sessions() as s:
            rows = await s.execute(
                select(OutboundActivity.kind, OutboundActivity.object_uri)
                .where(OutboundActivity.id.in_(held_activities()))
                .order_by(OutboundActivity.id)
            )
            return [f"{kind} {'actor' if obj == painter.uri else 'post'}" for kind, obj in rows]

    assert await held() == ["Create post", "Create post", "Update post"]
    assert await suspensions.unsuspend(runtime, painter)
    assert await held() == []


async def test_a_suspended_ai_account_posts_nothing_on_its_schedule(runtime, new_account) -> None:
    """A suspended AI account's due slot queues no picture; unsuspended, it posts again."""
    bot = await new_account("bot", ai=True, persona={"style": "ink wash"})
    async with runtime.session() as s:
        row = await s.get_one(Account, bot.id)
        set_schedule(row, 60, runtime.now() - timedelta(hours=2))  # its slot is due
    assert await suspensions.suspend(runtime, bot)
    worker = ScheduleWorker(runtime)
    assert await worker.run_once() == 0
    assert await count(runtime, GenerationJob) == 0
    assert await suspensions.unsuspend(runtime, bot)
    assert await worker.run_once() == 1
    assert await count(runtime, GenerationJob) == 1


async def test_a_suspended_ai_account_answers_no_mention(runtime, new_account) -> None:
    """Someone asks a suspended AI account for a picture: nothing is queued and no reply
    is sent; unsuspended, the same kind of ask is queued."""
    bot = await new_account("bot", ai=True, persona={"style": "ink wash"})
    async with runtime.session() as s:
        asker = Account(
            username="alice",
            username_key="alice",
            domain="far.example",
            local=False,
            uri="https://far.example/users/alice",
            kind="Person",
        )
        s.add(asker)
        await s.flush()
        asks_for = [
            Post(
                uri=f"https://far.example/statuses/{n}",
                account_id=asker.id,
                local=False,
                content="<p>@bot a heron</p>",
                source="@bot a heron",
            )
            for n in (1, 2)
        ]
        s.add_all(asks_for)
    assert await suspensions.suspend(runtime, bot)
    async with runtime.session() as s:
        me = await s.get_one(Account, bot.id)
        them = await s.get_one(Account, asker.id)
        assert await asks.on_mention(s, runtime, asks_for[0], me, them) == "ignored"
    assert await count(runtime, GenerationJob) == 0
    assert await count(runtime, OutboundActivity, OutboundActivity.kind == "Create") == 0
    assert await suspensions.unsuspend(runtime, bot)
    async with runtime.session() as s:
        me = await s.get_one(Account, bot.id)
        them = await s.get_one(Account, asker.id)
        assert await asks.on_mention(s, runtime, asks_for[1], me, them) == "queued"
    assert await count(runtime, GenerationJob) == 1
