"""Review findings 11 and 21 (docs/security.md): asking an AI account for pictures, abused.

- Finding 11: quotas counted per host:port (80 actors on 4 hosts met no refusal); remote
  asks filled the generation queue local users share; every over-quota ask still produced
  a federated reply. Now quotas count per site (the registrable domain), remote asks take
  at most half the queue, and an asker gets at most one refusal reply per window.
- Finding 21: the word filter was bypassed by case, spacing and look-alike letters.
"""

from __future__ import annotations

import json

import pytest
from sqlalchemy import event, select

from instance.generation import asks
from instance.generation.asks import asks_for_blocked
from instance.generation.requests import enqueue
from instance.inbound.worker import InboxWorker
from instance.storage.models import Account, Ask, OutboundActivity, Post
from tests.instance.generation_fixtures import gen_settings, tiny_cache  # noqa: F401
from tests.instance.inbox_helpers import post


@pytest.fixture
def settings(gen_settings):  # noqa: F811
    return gen_settings(max_queue=4)


@pytest.fixture
async def bot(new_account):
    return await new_account("painter", ai=True)


@pytest.fixture
def ask(client, runtime, bot):
    async def send(actor, text: str = "a red fox in the snow") -> None:
        note = actor.note(f"<p>@painter {text}</p>", cc=[bot.uri],
                          tag=[{"type": "Mention", "href": bot.uri}])  # fmt: skip
        assert (await post(client, runtime, actor, actor.create(note))).status_code == 202
        await InboxWorker(runtime).run_once()

    return send


async def outcomes(runtime) -> list[str]:
    async with runtime.sessions() as s:
        return list(await s.scalars(select(Ask.outcome).order_by(Ask.id)))


async def replies(runtime) -> int:
    async with runtime.sessions() as s:
        rows = await s.scalars(select(OutboundActivity).where(OutboundActivity.kind == "Create"))
        return sum(1 for r in rows if json.loads(r.body)["object"].get("inReplyTo"))


async def test_a_site_is_one_party_whatever_its_hosts_ports_and_subdomains(
    runtime, fedi, ask, monkeypatch
) -> None:
    monkeypatch.setattr(asks, "QUOTA_PER_SITE", 3)
    monkeypatch.setattr(asks, "REMOTE_SHARE", 1.0)  # the queue has room for all four
    hosts = ["a.evil.example", "b.evil.example", "evil.example:8443", "c.d.evil.example"]
    for n, host in enumerate(hosts):
        await ask(fedi.actor(f"u{n}", host, key=n % 3))
    assert await outcomes(runtime) == ["queued", "queued", "queued", "refused"]


async def test_remote_asks_leave_half_the_queue_to_local_users(
    runtime, fedi, ask, bot, new_account
) -> None:
    for n in range(3):  # max_queue 4: remote asks may take 2
        await ask(fedi.actor(f"u{n}", f"h{n}.example", key=n % 3))
    assert await outcomes(runtime) == ["queued", "queued", "refused"]
    alice = await new_account("alice")
    async with runtime.session() as s:  # a local user still finds room
        await enqueue(s, runtime, await s.get(Account, alice.id), "a heron", size=(32, 32))


async def test_one_refusal_reply_per_asker_then_silence(runtime, fedi, ask) -> None:
    mallory = fedi.actor("mallory", "m.example")
    for _ in range(10):
        await ask(mallory, "")  # nothing to draw: a refusal, once
    assert await outcomes(runtime) == ["refused"] + ["dropped"] * 9
    assert await replies(runtime) == 1


@pytest.mark.parametrize(
    "prompt",
    ["NUDE portrait", "a n u d e portrait", "n.u.d.e", "a nüde", "nudе (Cyrillic e)",
     "ｎｕｄｅ", "𝐧𝐮𝐝𝐞", "nu\u200bde", "nuuude", "nud3 figure", "p0rn", "some nudes"],
)  # fmt: skip
def test_blocked_words_are_found_however_they_are_written(prompt) -> None:
    assert asks_for_blocked(prompt)


@pytest.mark.parametrize(
    "prompt", ["a lighthouse at dawn", "kidney beans on a plate", "a minority report cover",
               "understand a unit", "generous soul", "a kite over the sea"],
)  # fmt: skip
def test_ordinary_prompts_pass(prompt) -> None:
    assert not asks_for_blocked(prompt)


async def test_a_redelivered_ask_is_recognised_without_scanning_jobs(
    client, runtime, fedi, bot
) -> None:
    """Red-team note: whether an ask was answered was found by scanning every generation job
    of the bot created after the ask's `published`, a date its author sets (1970 makes it
    every job). It is now an indexed lookup of the Ask row (or our reply), so a redelivered
    old ask is not answered twice, and the job queue is read only as the count of its active
    jobs (indexed by status, at most `max_queue` rows), never by a date."""
    alice = fedi.actor("alice")
    note = alice.note("<p>@painter a red fox</p>", cc=[bot.uri], published="1970-01-01T00:00:00Z",
                      tag=[{"type": "Mention", "href": bot.uri}])  # fmt: skip
    assert (await post(client, runtime, alice, alice.create(note))).status_code == 202
    await InboxWorker(runtime).run_once()
    assert await outcomes(runtime) == ["queued"]
    statements: list[str] = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(runtime.engine.sync_engine, "before_cursor_execute", listener)
    try:
        async with runtime.session() as s:
            stored = await s.scalar(select(Post).where(Post.uri == note["id"]))
            me = await s.get_one(Account, bot.id)
            asker = await s.scalar(select(Account).where(Account.uri == alice.uri))
            assert await asks.on_mention(s, runtime, stored, me, asker) == "already answered"
    finally:
        event.remove(runtime.engine.sync_engine, "before_cursor_execute", listener)
    jobs = [q.partition("FROM generation_jobs")[2] for q in statements if "generation_jobs" in q]
    assert all("generation_jobs.status IN" in q for q in jobs), jobs
    assert not [q for q in jobs if "created_at" in q or "run_at" in q or "published" in q]
    assert await outcomes(runtime) == ["queued"]
