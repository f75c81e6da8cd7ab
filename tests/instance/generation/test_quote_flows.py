"""Quotes (remixes) both ways over the signed inbox, in the shapes Mastodon 4.5 sends:
approval and its revocation for our remixes, verified stamps for quotes of our posts, and an
Update that only adds the stamp not being an edit.

Mastodon's serializers (app/serializers/activitypub/): an Accept of our QuoteRequest embeds
the request and names the stamp in `result` (accept_quote_request_serializer.rb); taking an
approval back is a Delete whose object is the stamp (delete_quote_authorization_serializer.rb).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select

from instance.content.lineage import lineage_of
from instance.content.posting import Draft, publish
from instance.content.quotes import revoke
from instance.inbound.worker import InboxWorker
from instance.storage.models import (
    Account,
    Notification,
    OutboundActivity,
    Post,
    QuoteAuthorization,
)
from tests.instance.fediverse import PUBLIC, RemoteActor
from tests.instance.generation.test_remix import MASTODON_POLICY, do_remix
from tests.instance.generation_fixtures import gen_settings, tiny_cache  # noqa: F401
from tests.instance.inbox_helpers import post


@pytest.fixture
def settings(gen_settings):  # noqa: F811
    return gen_settings()


async def deliver(client, runtime, actor: RemoteActor, activity: dict[str, Any]) -> None:
    assert (await post(client, runtime, actor, activity)).status_code == 202
    assert await InboxWorker(runtime).run_once() == 1


async def sent(runtime, kind: str) -> list[dict[str, Any]]:
    async with runtime.sessions() as s:
        rows = await s.scalars(select(OutboundActivity).where(OutboundActivity.kind == kind))
        return [json.loads(r.body) for r in rows]


async def load(runtime, model, *where):
    async with runtime.sessions() as s:
        return await s.scalar(select(model).where(*where))


@pytest.fixture
async def approved_remix(client, runtime, fedi, new_account):
    """bob remixes mo's Mastodon post; mo approves: (mo, the remix, mo's stamp URL)."""
    mo = fedi.actor("mo", "m.example")
    note = mo.note("<p>a fox</p>", interactionPolicy=MASTODON_POLICY)
    await deliver(client, runtime, mo, mo.create(note))
    parent = await load(runtime, Post, Post.uri == note["id"])
    bob = await new_account("bob")
    remix = await do_remix(runtime, bob, parent, prompt="a fox, linocut")
    (request,) = await sent(runtime, "QuoteRequest")
    stamp = f"{mo.uri}/quote_authorizations/1"
    accept = mo.activity("Accept", {k: v for k, v in request.items() if k != "@context"},
                         result=stamp)  # fmt: skip
    await deliver(client, runtime, mo, accept)
    remix = await load(runtime, Post, Post.id == remix.id)
    assert (remix.quote_state, remix.quote_authorization_uri) == ("accepted", stamp)
    return mo, remix, stamp


@pytest.mark.parametrize("shape", ["uri", "embedded"])
async def test_a_revoked_approval_makes_our_remix_a_link(
    client, runtime, fedi, approved_remix, shape
) -> None:
    mo, remix, stamp = approved_remix
    mallory = fedi.actor("mallory", "m.example")  # same server, not the quoted author
    await deliver(client, runtime, mallory, mallory.create())  # known: her Delete is read
    await deliver(client, runtime, mallory, mallory.activity("Delete", stamp))
    assert (await load(runtime, Post, Post.id == remix.id)).quote_state == "accepted"

    target: Any = stamp if shape == "uri" else {"id": stamp, "type": "QuoteAuthorization"}
    await deliver(client, runtime, mo, mo.activity("Delete", target, id=f"{stamp}#delete"))
    remix = await load(runtime, Post, Post.id == remix.id)
    assert (remix.quote_state, remix.quote_authorization_uri) == ("link", None)
    (update,) = await sent(runtime, "Update")
    note = update["object"]
    assert note["id"] == remix.uri
    assert "quoteAuthorization" not in note and "quote" not in note
    assert note["remixOf"] == remix.quote_uri  # still our remix, now as a plain link


async def test_a_quote_of_our_post_counts_only_with_our_stamp(
    client, runtime, fedi, new_account
) -> None:
    painter = await new_account("painter", ai=True)
    async with runtime.session() as s:
        ours = await publish(s, runtime, await s.get_one(Account, painter.id), Draft(text="sea"))
    alice, mallory = fedi.actor("alice"), fedi.actor("mallory", "evil.example")

    # mallory quotes without asking: stored, but no remix
    unasked = mallory.note("<p>mine now</p>", quote=ours.uri)
    await deliver(client, runtime, mallory, mallory.create(unasked))

    # alice asks, we approve, she publishes with the stamp
    note = alice.note("<p>my remix</p>", quote=ours.uri)
    request = alice.activity("QuoteRequest", ours.uri, instrument=note)
    await deliver(client, runtime, alice, request)
    (accept,) = await sent(runtime, "Accept")
    await deliver(client, runtime, alice, alice.create({**note,
                                                        "quoteAuthorization": accept["result"]}))

    # mallory copies alice's stamp onto another note: not hers, not counted
    stolen = mallory.note("<p>stolen</p>", quote=ours.uri, quoteAuthorization=accept["result"])
    await deliver(client, runtime, mallory, mallory.create(stolen))

    async with runtime.sessions() as s:
        lineage = await lineage_of(s, await s.get_one(Post, ours.id), runtime.urls, None)
        kinds = [n.kind for n in await s.scalars(select(Notification))]
    assert [r["uri"] for r in lineage["remixes"]] == [note["id"]]
    assert kinds.count("remix") == 1

    async with runtime.session() as s:  # we take the approval back: no longer a remix here
        await revoke(s, runtime, await s.scalar(select(QuoteAuthorization)))
    async with runtime.sessions() as s:
        lineage = await lineage_of(s, await s.get_one(Post, ours.id), runtime.urls, None)
    assert lineage["remixes"] == []


async def test_an_update_that_only_adds_the_stamp_is_not_an_edit(client, runtime, fedi) -> None:
    """Mastodon sends an Update of the quoting post once the quote is approved; only the
    quoteAuthorization changes, so the post is not shown as edited."""
    alice = fedi.actor("alice")
    note = alice.note("<p>hello</p>", quote="https://m.example/notes/9")
    await deliver(client, runtime, alice, alice.create(note))
    stamped = {**note, "quoteAuthorization": "https://m.example/users/mo/quote_authorizations/1"}
    await deliver(client, runtime, alice, alice.activity("Update", stamped))
    stored = await load(runtime, Post, Post.uri == note["id"])
    assert stored.edited_at is None
    edited = {**stamped, "content": "<p>hello again</p>", "updated": "2026-07-07T11:00:00Z"}
    await deliver(client, runtime, alice, alice.activity("Update", edited))
    stored = await load(runtime, Post, Post.uri == note["id"])
    assert stored.edited_at is not None and "hello again" in stored.content


async def test_a_note_with_only_content_map_keeps_its_text(client, runtime, fedi) -> None:
    """Some servers send `contentMap` without `content`; the text is taken from it."""
    alice = fedi.actor("alice")
    note = alice.note("<p>x</p>", to=[PUBLIC])
    del note["content"]
    note["contentMap"] = {"de": "<p>Hallo Welt</p>"}
    await deliver(client, runtime, alice, alice.create(note))
    stored = await load(runtime, Post, Post.uri == note["id"])
    assert "Hallo Welt" in stored.content and stored.language == "de"
