"""One actor's ready inbox items share a transaction (instance/inbound/worker.py), and still
behave as if each had its own: an item whose handler refuses or breaks is settled alone, with
its reason, and none of its writes are kept, while the items before and after it are stored."""

from __future__ import annotations

import pytest
from sqlalchemy import event, select

from instance.inbound import worker as inbox_worker
from instance.inbound.handlers import notes
from instance.inbound.worker import InboxWorker
from instance.storage.models import InboxItem, Post
from tests.instance.inbox_helpers import post


@pytest.fixture
def one_group(monkeypatch):
    """However slow the machine, a step's items fit one group."""
    monkeypatch.setattr(inbox_worker, "GROUP_HOLD_S", 60.0)


async def send_all(client, runtime, actor, activities) -> None:
    for activity in activities:
        assert (await post(client, runtime, actor, activity)).status_code == 202


async def items(runtime) -> list[tuple[str, str | None]]:
    async with runtime.sessions() as s:
        rows = await s.execute(
            select(InboxItem.status, InboxItem.last_error).order_by(InboxItem.id)
        )
        return [(status, error) for status, error in rows]


async def stored(runtime) -> list[str]:
    async with runtime.sessions() as s:
        return list(await s.scalars(select(Post.content).order_by(Post.id)))


async def test_ten_notes_of_one_actor_take_one_transaction(runtime, client, fedi, one_group):
    alice = fedi.actor("alice")
    await send_all(client, runtime, alice, [alice.create()])
    await InboxWorker(runtime).run_once()  # alice is known from now on
    await send_all(client, runtime, alice,
                   [alice.create(alice.note(f"<p>n{n}</p>")) for n in range(10)])  # fmt: skip
    commits = []
    event.listen(runtime.engine.sync_engine, "commit", lambda _conn: commits.append(1))
    assert await InboxWorker(runtime).run_once() == 10
    assert len(commits) == 2  # the claim, then the ten items together
    assert [status for status, _ in await items(runtime)] == ["done"] * 11
    assert len(await stored(runtime)) == 11


async def test_a_refused_item_inside_a_group_is_skipped_alone(runtime, client, fedi, one_group):
    """A Create of a Note attributed to someone else is refused by its handler, in the middle
    of a group: it is skipped with why, and the Notes before and after it are stored."""
    alice, carol = fedi.actor("alice"), fedi.actor("carol")
    forged = alice.create(carol.note("<p>not alice's</p>"))
    await send_all(client, runtime, alice, [
        alice.create(alice.note("<p>before</p>")), forged, alice.create(alice.note("<p>after</p>")),
    ])  # fmt: skip
    assert await InboxWorker(runtime).run_once() == 3
    (s1, e1), (s2, e2), (s3, e3) = await items(runtime)
    assert (s1, e1, s3, e3) == ("done", None, "done", None)
    assert s2 == "done" and e2 is not None and e2.startswith("skipped: the object is attributed")
    assert await stored(runtime) == ["<p>before</p>", "<p>after</p>"]


async def test_a_handler_that_breaks_fails_its_item_and_keeps_none_of_its_writes(
    runtime, client, fedi, one_group, monkeypatch
):
    """A handler raising after it wrote (a bug, a constraint) fails its own item with the
    error; its post is not kept, and the other items of its group are stored once each."""
    real = notes.on_create

    async def breaks_on_boom(ctx):
        await real(ctx)  # the post is written, then the handler breaks
        if "boom" in (ctx.obj.content or ""):
            raise RuntimeError("boom")

    monkeypatch.setattr(notes, "on_create", breaks_on_boom)
    alice = fedi.actor("alice")
    await send_all(client, runtime, alice, [
        alice.create(alice.note(f"<p>{text}</p>")) for text in ("one", "two", "boom", "four")
    ])  # fmt: skip
    assert await InboxWorker(runtime).run_once() == 4
    assert await items(runtime) == [
        ("done", None), ("done", None), ("failed", "RuntimeError: boom"), ("done", None),
    ]  # fmt: skip
    assert await stored(runtime) == ["<p>one</p>", "<p>two</p>", "<p>four</p>"]


async def test_a_flood_of_mentions_reads_the_mentioned_account_once_per_step(
    runtime, client, fedi, one_group
):
    """Ten Notes mentioning one of our accounts: the account is read by the first and taken
    from the step's own record by the nine others; each Note still records its mention."""
    from instance.accounts import NewAccount, create_account
    from instance.storage.models import Mention

    async with runtime.session() as s:
        await create_account(s, runtime.urls, NewAccount("muse"))
    muse = runtime.urls.actor("muse")
    alice = fedi.actor("alice")
    await send_all(client, runtime, alice, [alice.create()])
    await InboxWorker(runtime).run_once()
    tag = [{"type": "Mention", "href": muse}]
    await send_all(client, runtime, alice, [
        alice.create(alice.note(f"<p>@muse {n}</p>", cc=[muse], tag=tag)) for n in range(10)
    ])  # fmt: skip
    sql_run: list[str] = []
    event.listen(runtime.engine.sync_engine, "before_cursor_execute",
                 lambda _conn, _cursor, sql, *_: sql_run.append(sql))  # fmt: skip
    assert await InboxWorker(runtime).run_once() == 10
    assert len([sql for sql in sql_run if "accounts.uri IN" in sql]) == 1
    async with runtime.sessions() as s:
        assert len(list(await s.scalars(select(Mention.post_id)))) == 10
