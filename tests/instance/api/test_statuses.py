"""The statuses endpoints of the client API (instance/api/statuses.py), over HTTP with real
tokens, on rows the content wing makes; remote authors arrive through our signed inbox."""

from __future__ import annotations

import asyncio
import io
import json
from typing import Any

import pytest
from mastodon import Mastodon
from PIL import Image
from sqlalchemy import func, select

from instance.content import actions
from instance.content.posting import Draft, publish
from instance.storage.models import (
    Account,
    ApiIdempotency,
    Delivery,
    OutboundActivity,
    Post,
)
from tests.instance.api.api_helpers import api_token, bearer
from tests.instance.api.test_entities import remote_note, write


@pytest.fixture
async def alice(runtime, new_account) -> Account:
    return await new_account("alice")


@pytest.fixture
async def bob(runtime, new_account) -> Account:
    return await new_account("bob")


@pytest.fixture
async def auth(runtime, alice) -> dict[str, str]:
    return bearer(await api_token(runtime, alice))


async def made(runtime, author: Account, text: str = "sea", **draft: Any) -> Post:
    async with runtime.session() as s:
        return await publish(s, runtime, await s.get_one(Account, author.id), Draft(text, **draft))


async def sent(runtime, kind: str) -> list[tuple[dict[str, Any], list[str]]]:
    """Activities of `kind` we queued, each with the inboxes it goes to."""
    async with runtime.sessions() as s:
        out = []
        rows = await s.scalars(select(OutboundActivity).where(OutboundActivity.kind == kind))
        for r in rows:
            inboxes = await s.scalars(
                select(Delivery.inbox_uri).where(Delivery.activity_id == r.id)
            )
            out.append((json.loads(r.body), list(inboxes)))
        return out


async def count(runtime, model, *where) -> int:
    async with runtime.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def png(width: int = 800, height: int = 600) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (30, 90, 160)).save(out, "PNG")
    return out.getvalue()


async def test_create_from_a_form_and_from_json(client, runtime, alice, auth) -> None:
    """A status is posted from form data (Mastodon.py) and from JSON (masto.js) with its
    text, Mastodon's visibility names (`private` is followers-only), content warning,
    sensitive flag and language; the answer is the new Status."""
    r = await client.post("/api/v1/statuses", headers=auth, data={
        "status": "hello #harbour", "visibility": "private", "spoiler_text": "bright",
        "language": "fr",
    })  # fmt: skip
    assert r.status_code == 200, r.text
    formed = r.json()
    assert (formed["visibility"], formed["spoiler_text"], formed["sensitive"]) == (
        "private", "bright", True)  # fmt: skip
    assert formed["language"] == "fr" and "#<span>harbour</span>" in formed["content"]
    assert formed["account"]["id"] == str(alice.id) and formed["text"] == "hello #harbour"
    r = await client.post(
        "/api/v1/statuses",
        headers=auth,
        json={"status": "json", "visibility": "unlisted", "sensitive": True},
    )
    assert r.status_code == 200, r.text
    assert (r.json()["visibility"], r.json()["sensitive"]) == ("unlisted", True)
    async with runtime.sessions() as s:
        row = await s.scalar(select(Post).where(Post.public_id == formed["id"]))
    assert row.visibility == "followers" and row.summary == "bright" and row.local
    assert [kind for (kind,) in [(a["type"],) for a, _ in await sent(runtime, "Create")]] == [
        "Create", "Create"]  # fmt: skip


async def test_create_refuses_what_mastodon_refuses(client, runtime, alice, auth) -> None:
    """An empty status without media, an unknown visibility and a bad language answer 422 in
    Mastodon's error shape; a token without write:statuses gets 403, none at all 401."""
    for body in ({"status": "  "}, {"status": "x", "visibility": "everyone"},
                 {"status": "x", "language": "not a language"}):  # fmt: skip
        r = await client.post("/api/v1/statuses", headers=auth, data=body)
        assert r.status_code == 422 and set(r.json()) == {"error"}, r.text
    read_only = bearer(await api_token(runtime, alice, "read"))
    assert (await client.post("/api/v1/statuses", headers=read_only,
                              data={"status": "x"})).status_code == 403  # fmt: skip
    assert (await client.post("/api/v1/statuses", data={"status": "x"})).status_code == 401
    assert await count(runtime, Post) == 0


async def test_media_ids_attach_uploads_and_wait_for_generations(
    client, runtime, alice, bob, auth
) -> None:
    """`media_ids[]` attaches the caller's uploaded attachments in order; someone else's
    attachment is refused, one already in a status too; an attachment whose image is still
    being generated answers 422 (still processing) and nothing is posted."""
    ids = []
    for _ in range(2):
        r = await client.post("/api/v2/media", headers=auth,
                              files={"file": ("a.png", png(), "image/png")})  # fmt: skip
        assert r.status_code == 200, r.text
        ids.append(r.json()["id"])
    r = await client.post(
        "/api/v1/statuses", headers=auth, data={"status": "two", "media_ids[]": list(reversed(ids))}
    )
    assert r.status_code == 200, r.text
    assert [m["id"] for m in r.json()["media_attachments"]] == list(reversed(ids))
    assert r.json()["media_attachments"][0]["meta"]["original"]["width"] == 800
    again = await client.post("/api/v1/statuses", headers=auth,
                              json={"status": "", "media_ids": [ids[0]]})  # fmt: skip
    assert again.status_code == 422

    bobs = bearer(await api_token(runtime, bob))
    theirs = await client.post("/api/v2/media", headers=bobs,
                               files={"file": ("b.png", png(), "image/png")})  # fmt: skip
    r = await client.post(
        "/api/v1/statuses", headers=auth, json={"status": "x", "media_ids": [theirs.json()["id"]]}
    )
    assert r.status_code == 422

    queued = await client.post("/api/v2/media", headers=auth, data={"prompt": "a lighthouse"})
    assert queued.status_code == 202, queued.text
    r = await client.post(
        "/api/v1/statuses",
        headers=auth,
        json={"status": "soon", "media_ids": [queued.json()["id"]]},
    )
    assert r.status_code == 422 and "processing" in r.json()["error"]
    assert await count(runtime, Post) == 1


async def test_idempotency_key_posts_once(client, runtime, alice, bob, auth) -> None:
    """The same Idempotency-Key from the same account answers the status it made the first
    time, and nothing is posted twice; the same key from another account is its own; a key
    older than a day is forgotten."""
    key = {"Idempotency-Key": "abc-123"}
    first = await client.post("/api/v1/statuses", headers=auth | key, data={"status": "once"})
    second = await client.post("/api/v1/statuses", headers=auth | key, data={"status": "once"})
    assert first.status_code == second.status_code == 200
    assert first.json()["id"] == second.json()["id"]
    assert await count(runtime, Post) == 1
    bobs = bearer(await api_token(runtime, bob))
    other = await client.post("/api/v1/statuses", headers=bobs | key, data={"status": "once"})
    assert other.json()["id"] != first.json()["id"]
    async with runtime.session() as s:
        for row in await s.scalars(select(ApiIdempotency)):
            row.created_at = runtime.now().replace(year=runtime.now().year - 1)
    later = await client.post("/api/v1/statuses", headers=auth | key, data={"status": "once"})
    assert later.json()["id"] not in (first.json()["id"], other.json()["id"])
    assert await count(runtime, Post) == 3


async def test_replies_and_mentions(client, runtime, alice, bob, auth) -> None:
    """A reply names its parent; a post the caller may not see cannot be replied to (404);
    an @user@host mention of an account here is linked, listed and notified."""
    parent = await made(runtime, bob, "sea")
    hidden = await made(runtime, bob, "mine", visibility="followers")
    host = runtime.urls.host
    r = await client.post(
        "/api/v1/statuses",
        headers=auth,
        data={"status": f"@bob@{host} lovely", "in_reply_to_id": parent.public_id},
    )
    assert r.status_code == 200, r.text
    reply = r.json()
    assert reply["in_reply_to_id"] == parent.public_id
    assert reply["in_reply_to_account_id"] == str(bob.id)
    assert [m["acct"] for m in reply["mentions"]] == ["bob"]
    r = await client.post(
        "/api/v1/statuses", headers=auth, data={"status": "hi", "in_reply_to_id": hidden.public_id}
    )
    assert r.status_code == 404
    bobs = bearer(await api_token(runtime, bob))
    seen = (await client.get(f"/api/v1/statuses/{parent.public_id}", headers=bobs)).json()
    assert seen["replies_count"] == 1


async def test_quoting_a_post_makes_a_remix(client, runtime, alice, bob, auth) -> None:
    """quoted_status_id quotes (remixes) that post: a post here is approved at once and the
    answer carries the quote with the quoted Status; a followers-only post cannot be quoted
    (422), even by a follower who can see it."""
    sea = await made(runtime, bob, "sea")
    r = await client.post(
        "/api/v1/statuses",
        headers=auth,
        data={"status": "my take", "quoted_status_id": sea.public_id},
    )
    assert r.status_code == 200, r.text
    quote = r.json()["quote"]
    assert quote["state"] == "accepted" and quote["quoted_status"]["id"] == sea.public_id
    assert "quote-inline" in r.json()["content"]
    await write(runtime, actions.follow, alice, bob)
    private = await made(runtime, bob, "mine", visibility="followers")
    r = await client.post(
        "/api/v1/statuses",
        headers=auth,
        data={"status": "no", "quoted_status_id": private.public_id},
    )
    assert r.status_code == 422, r.text


async def test_show_respects_visibility_and_scopes(client, runtime, alice, bob, auth) -> None:
    """A public or unlisted status is readable without a token; a followers-only one only by
    its author and accepted followers (404 otherwise, as if it did not exist); a token sent
    without read:statuses gets 403."""
    public = await made(runtime, bob, "sea")
    unlisted = await made(runtime, bob, "quiet", visibility="unlisted")
    private = await made(runtime, bob, "mine", visibility="followers")
    assert (await client.get(f"/api/v1/statuses/{public.public_id}")).status_code == 200
    assert (await client.get(f"/api/v1/statuses/{unlisted.public_id}")).status_code == 200
    assert (await client.get(f"/api/v1/statuses/{private.public_id}")).status_code == 404
    url = f"/api/v1/statuses/{private.public_id}"
    assert (await client.get(url, headers=auth)).status_code == 404
    await write(runtime, actions.follow, alice, bob)
    r = await client.get(url, headers=auth)
    assert r.status_code == 200 and r.json()["visibility"] == "private"
    writer = bearer(await api_token(runtime, alice, "write"))
    assert (await client.get(url, headers=writer)).status_code == 403
    assert (await client.get("/api/v1/statuses/nothing")).status_code == 404


async def test_edit_and_delete_own_statuses(client, runtime, alice, bob, auth) -> None:
    """The author edits text, content warning, sensitive flag and language (an Update is
    federated, edited_at set); the source endpoint gives the typed text; deleting answers
    the status with its text and it is gone after; someone else's status answers 404."""
    r = await client.post("/api/v1/statuses", headers=auth, data={"status": "first"})
    sid = r.json()["id"]
    r = await client.put(
        f"/api/v1/statuses/{sid}",
        headers=auth,
        json={"status": "second", "spoiler_text": "cw", "language": "de"},
    )
    assert r.status_code == 200, r.text
    edited = r.json()
    assert "second" in edited["content"] and edited["edited_at"] is not None
    assert (edited["spoiler_text"], edited["sensitive"], edited["language"]) == ("cw", True, "de")
    assert [a["object"]["id"] for a, _ in await sent(runtime, "Update")] == [edited["uri"]]
    source = (await client.get(f"/api/v1/statuses/{sid}/source", headers=auth)).json()
    assert source == {"id": sid, "text": "second", "spoiler_text": "cw"}
    theirs = await made(runtime, bob, "sea")
    for method in ("PUT", "DELETE"):
        r = await client.request(method, f"/api/v1/statuses/{theirs.public_id}", headers=auth,
                                 json={"status": "mine now"})  # fmt: skip
        assert r.status_code == 404
    r = await client.delete(f"/api/v1/statuses/{sid}", headers=auth)
    assert r.status_code == 200 and r.json()["text"] == "second" and r.json()["id"] == sid
    assert (await client.get(f"/api/v1/statuses/{sid}", headers=auth)).status_code == 404
    assert [a["object"]["id"] for a, _ in await sent(runtime, "Delete")] == [edited["uri"]]


async def test_deleting_a_reply_uncounts_it(client, runtime, alice, bob, auth) -> None:
    """A deleted reply no longer counts in its parent's replies_count."""
    parent = await made(runtime, bob, "sea")
    r = await client.post(
        "/api/v1/statuses", headers=auth, data={"status": "hi", "in_reply_to_id": parent.public_id}
    )
    await client.delete(f"/api/v1/statuses/{r.json()['id']}", headers=auth)
    shown = (await client.get(f"/api/v1/statuses/{parent.public_id}")).json()
    assert shown["replies_count"] == 0


async def test_context_lists_what_the_caller_may_see(client, runtime, alice, bob, auth) -> None:
    """The context of a post: the chain it replies to, oldest first, and the replies below it
    in thread order (each reply followed by its own replies); a followers-only reply is
    left out for someone who may not see it."""
    root = await made(runtime, bob, "root")
    a = await made(runtime, alice, "a", in_reply_to=root)
    a1 = await made(runtime, bob, "a1", in_reply_to=a)
    b = await made(runtime, alice, "b", in_reply_to=root)
    secret = await made(runtime, bob, "s", in_reply_to=root, visibility="followers")
    ctx = (await client.get(f"/api/v1/statuses/{a1.public_id}/context")).json()
    assert [s["id"] for s in ctx["ancestors"]] == [root.public_id, a.public_id]
    assert ctx["descendants"] == []
    ctx = (await client.get(f"/api/v1/statuses/{root.public_id}/context")).json()
    assert [s["id"] for s in ctx["descendants"]] == [a.public_id, a1.public_id, b.public_id]
    await write(runtime, actions.follow, alice, bob)
    ctx = (await client.get(f"/api/v1/statuses/{root.public_id}/context", headers=auth)).json()
    assert secret.public_id in [s["id"] for s in ctx["descendants"]]


async def test_favourite_a_remote_post_federates_a_like(client, runtime, fedi, alice, auth) -> None:
    """Favouriting a remote author's post answers it favourited and counted, and queues a
    Like to the author's inbox; unfavouriting queues the Undo; write:favourites is needed."""
    far = await remote_note(client, runtime, fedi)
    url = f"/api/v1/statuses/{far.public_id}"
    statuses_only = bearer(await api_token(runtime, alice, "write:statuses"))
    assert (await client.post(f"{url}/favourite", headers=statuses_only)).status_code == 403
    r = await client.post(f"{url}/favourite", headers=auth)
    assert r.status_code == 200, r.text
    assert (r.json()["favourited"], r.json()["favourites_count"]) == (True, 1)
    ((like, inboxes),) = await sent(runtime, "Like")
    assert like["object"] == far.uri and inboxes == ["https://remote.example/users/rem/inbox"]
    r = await client.post(f"{url}/unfavourite", headers=auth)
    assert (r.json()["favourited"], r.json()["favourites_count"]) == (False, 0)
    ((undo, _),) = await sent(runtime, "Undo")
    assert undo["object"]["type"] == "Like"


async def test_reblog_answers_the_wrapping_status(client, runtime, alice, bob, auth) -> None:
    """Reblogging answers a reblog Status (its own id, the caller as account) wrapping the
    boosted one, which says reblogged; the reblog's id shows that reblog; unreblogging
    answers the original no longer reblogged; a followers-only post cannot be reblogged."""
    sea = await made(runtime, bob, "sea")
    r = await client.post(f"/api/v1/statuses/{sea.public_id}/reblog", headers=auth)
    assert r.status_code == 200, r.text
    wrap = r.json()
    assert wrap["id"] != sea.public_id and wrap["account"]["id"] == str(alice.id)
    assert wrap["reblog"]["id"] == sea.public_id and wrap["reblog"]["reblogged"] is True
    assert wrap["reblog"]["reblogs_count"] == 1
    shown = (await client.get(f"/api/v1/statuses/{wrap['id']}")).json()
    assert shown["id"] == wrap["id"] and shown["reblog"]["id"] == sea.public_id
    r = await client.post(f"/api/v1/statuses/{sea.public_id}/unreblog", headers=auth)
    assert r.json()["id"] == sea.public_id
    assert (r.json()["reblogged"], r.json()["reblogs_count"]) == (False, 0)
    await write(runtime, actions.follow, alice, bob)
    private = await made(runtime, bob, "mine", visibility="followers")
    r = await client.post(f"/api/v1/statuses/{private.public_id}/reblog", headers=auth)
    assert r.status_code == 422


async def test_who_favourited_and_reblogged_pages_with_link(
    client, runtime, new_account, bob
) -> None:
    """favourited_by and reblogged_by list the accounts, the latest first, paged by `limit`
    with a Link header whose next page continues where the last one stopped."""
    sea = await made(runtime, bob, "sea")
    fans = [await new_account(f"fan{i}") for i in range(3)]
    for fan in fans:
        await write(runtime, actions.like, fan, sea)
        await write(runtime, actions.boost, fan, sea)
    for kind in ("favourited_by", "reblogged_by"):
        r = await client.get(f"/api/v1/statuses/{sea.public_id}/{kind}", params={"limit": 2})
        assert r.status_code == 200, r.text
        assert [a["id"] for a in r.json()] == [str(fans[2].id), str(fans[1].id)]
        nxt = r.links["next"]["url"]
        rest = (await client.get(nxt)).json()
        assert [a["id"] for a in rest] == [str(fans[0].id)]


async def test_mastodon_py_drives_statuses(runtime, live, alice, bob) -> None:
    """Mastodon.py, an independent client, posts (with an Idempotency-Key, a reply and a
    quote), reads a status and its context, favourites and reblogs, lists who did, edits and
    deletes, and reads every answer as its own Status and Account objects."""
    token = await api_token(runtime, alice)
    sea = await made(runtime, bob, "sea")

    def drive() -> dict[str, Any]:
        api = Mastodon(access_token=token, api_base_url=live, version_check_mode="none")
        out: dict[str, Any] = {}
        out["posted"] = api.status_post("hello", idempotency_key="k1", spoiler_text="cw")
        out["again"] = api.status_post("hello", idempotency_key="k1", spoiler_text="cw")
        out["reply"] = api.status_post("reply", in_reply_to_id=sea.public_id,
                                       visibility="unlisted")  # fmt: skip
        out["shown"] = api.status(sea.public_id)
        out["context"] = api.status_context(sea.public_id)
        out["fav"] = api.status_favourite(sea.public_id)
        out["boost"] = api.status_reblog(sea.public_id)
        out["fans"] = api.status_favourited_by(sea.public_id)
        out["boosters"] = api.status_reblogged_by(sea.public_id)
        out["edited"] = api.status_update(out["posted"]["id"], "hello again")
        out["deleted"] = api.status_delete(out["posted"]["id"])
        return out

    out = await asyncio.wait_for(asyncio.to_thread(drive), timeout=60)
    assert out["posted"]["id"] == out["again"]["id"] and out["posted"]["spoiler_text"] == "cw"
    assert out["reply"]["in_reply_to_id"] == sea.public_id
    assert out["reply"]["visibility"] == "unlisted"
    assert out["shown"]["account"]["acct"] == "bob"
    assert [s["id"] for s in out["context"]["descendants"]] == [out["reply"]["id"]]
    assert out["fav"]["favourited"] is True
    assert out["boost"]["reblog"]["id"] == sea.public_id
    assert [a["acct"] for a in out["fans"]] == [a["acct"] for a in out["boosters"]] == ["alice"]
    assert "hello again" in out["edited"]["content"]
    assert out["deleted"]["text"] == "hello again"
    assert await count(runtime, Post, Post.account_id == alice.id,
                       Post.deleted_at.is_(None)) == 1  # fmt: skip
