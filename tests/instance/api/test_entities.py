"""Rows as Mastodon's entities (instance/api/entities.py), built from rows the content wing
made: local posts through posting.publish, likes and boosts through actions, quotes through
quotes.publish_quote, remote accounts and posts through our signed inbox."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event, select

from instance.api import entities
from instance.content import actions, quotes
from instance.content.posting import Draft, publish
from instance.content.posting import delete as delete_post
from instance.inbound.worker import InboxWorker
from instance.storage.models import Account, Boost, MediaAttachment, Notification, Post
from tests.instance.fediverse import FakeFediverse, RemoteActor
from tests.instance.inbox_helpers import post as inbox_post

ACCOUNT_KEYS = {
    "id", "username", "acct", "display_name", "locked", "bot", "discoverable", "group",
    "created_at", "note", "url", "uri", "avatar", "avatar_static", "header", "header_static",
    "followers_count", "following_count", "statuses_count", "last_status_at", "emojis", "fields",
}  # fmt: skip
STATUS_KEYS = {
    "id", "uri", "url", "created_at", "account", "content", "visibility", "sensitive",
    "spoiler_text", "media_attachments", "application", "mentions", "tags", "emojis",
    "reblogs_count", "favourites_count", "replies_count", "quotes_count", "in_reply_to_id",
    "in_reply_to_account_id", "reblog", "poll", "card", "language", "text", "edited_at",
    "quote",
}  # fmt: skip
VIEWER_KEYS = {"favourited", "reblogged", "muted", "bookmarked", "filtered"}


async def deliver(client, runtime, actor: RemoteActor, activity: dict[str, Any]) -> None:
    assert (await inbox_post(client, runtime, actor, activity)).status_code == 202
    assert await InboxWorker(runtime).run_once() == 1


async def remote_note(client, runtime, fedi: FakeFediverse, actor=None, **note: Any) -> Post:
    """A post by a remote account, received through our inbox."""
    actor = actor or fedi.actor("rem", "remote.example")
    doc = actor.note(note.pop("content", "<p>from afar</p>"), **note)
    await deliver(client, runtime, actor, actor.create(doc))
    async with runtime.sessions() as s:
        return await s.scalar(select(Post).where(Post.uri == doc["id"]))


async def fresh(runtime, model, row_id):
    async with runtime.sessions() as s:
        return await s.get(model, row_id)


async def write(runtime, fn, *args, **kwargs):
    """Run a content-wing function in its own committed transaction, on fresh rows."""
    async with runtime.session() as s:
        loaded = [await s.get(type(a), a.id) if isinstance(a, (Account, Post)) else a
                  for a in args]  # fmt: skip
        return await fn(s, runtime, *loaded, **kwargs)


async def as_json(runtime, fn, *args):
    async with runtime.sessions() as s:
        return await fn(runtime, s, *args)


def image(account: Account, width: int = 1024, height: int = 768) -> MediaAttachment:
    return MediaAttachment(account_id=account.id, file_name="0" * 26 + ".png",
                           media_type="image/png", width=width, height=height,
                           blurhash="LEHV6nWB2yk8", description="a lighthouse",
                           focal_x=0.25, focal_y=-0.5, size_bytes=1234)  # fmt: skip


@pytest.fixture
async def people(runtime, new_account):
    alice = await new_account("alice", display_name="Alice")
    painter = await new_account("painter", ai=True)
    return alice, painter


async def test_accounts_have_mastodons_shape_local_and_remote(
    runtime, client, fedi, people
) -> None:
    """An Account has every field Mastodon's has; `acct` is the bare username for ours and
    user@domain for a remote one; counters count accepted follows and live posts; the
    creation date is given at midnight as Mastodon does; a missing avatar is a placeholder
    image; an AI account is a bot and says so in its fields; a remote account's fields come
    from its actor, sanitised."""
    alice, painter = people
    actor = fedi.actor("rem", "remote.example", attachment=[
        {"type": "PropertyValue", "name": "Site",
         "value": '<a href="https://rem.example">rem</a><script>alert(1)</script>'},
    ])  # fmt: skip
    await remote_note(client, runtime, fedi, actor)
    await write(runtime, actions.follow, alice, painter)
    async with runtime.session() as s:
        await publish(s, runtime, await s.get_one(Account, painter.id), Draft(text="one"))
        gone = await publish(s, runtime, await s.get_one(Account, painter.id), Draft(text="x"))
    await write(runtime, delete_post, painter, gone)
    async with runtime.sessions() as s:
        rem = await s.scalar(select(Account).where(Account.uri == actor.uri))
        accts = [await s.get_one(Account, i) for i in (alice.id, painter.id)] + [rem]
        a, p, r = await entities.accounts(runtime, s, accts)
    assert set(a) >= ACCOUNT_KEYS
    assert (a["id"], a["acct"], a["username"], a["display_name"]) == (
        str(alice.id), "alice", "alice", "Alice")  # fmt: skip
    assert r["acct"] == "rem@remote.example" and r["uri"] == actor.uri
    assert (a["following_count"], p["followers_count"], p["statuses_count"]) == (1, 1, 1)
    assert a["created_at"].endswith("T00:00:00.000Z")
    assert p["last_status_at"] == runtime.now().date().isoformat()
    assert a["avatar"].endswith("/static/missing-avatar.png")
    assert (await client.get(a["avatar"])).status_code == 200  # the placeholder is served
    assert p["bot"] is True and a["bot"] is False
    assert [f["name"] for f in p["fields"]][:1] == ["Made by"]
    (site,) = r["fields"]
    assert site["name"] == "Site" and "rem.example" in site["value"]
    assert "<script" not in site["value"]


async def test_a_status_has_mastodons_shape_and_viewer_fields(runtime, people) -> None:
    """A Status has every field Mastodon's has, ids as strings; a followers-only post is
    `private`; hashtags and mentions are listed; an attachment has its URLs (the preview is
    the 640 px rendition), meta sizes, focus, alt text and blurhash. The viewer's fields are
    there only for a signed-in viewer, `text` (the typed source) and `pinned` only for the
    author."""
    alice, painter = people
    async with runtime.session() as s:
        author = await s.get_one(Account, painter.id)
        m = image(author)
        s.add(m)
        await s.flush()
        post = await publish(s, runtime, author, Draft(
            text="harbour #Sea", visibility="followers", summary="bright", media=[m],
            mentions=[await s.get_one(Account, alice.id)], language="de",
        ))  # fmt: skip
    async with runtime.sessions() as s:
        post = await s.get_one(Post, post.id)
        mine = await entities.status(runtime, s, post, await s.get_one(Account, painter.id))
        theirs = await entities.status(runtime, s, post, await s.get_one(Account, alice.id))
        nobody = await entities.status(runtime, s, post, None)
    assert set(mine) >= STATUS_KEYS
    assert mine["id"] == post.public_id and mine["account"]["id"] == str(painter.id)
    assert (mine["visibility"], mine["spoiler_text"], mine["sensitive"]) == (
        "private", "bright", True)  # fmt: skip
    assert mine["language"] == "de" and mine["created_at"].endswith("Z")
    assert mine["tags"] == [{"name": "sea", "url": runtime.urls.tag("sea")}]
    assert mine["mentions"] == [{"id": str(alice.id), "username": "alice", "acct": "alice",
                                 "url": runtime.urls.profile("alice")}]  # fmt: skip
    (att,) = mine["media_attachments"]
    assert att["id"] == m.public_id and att["type"] == "image"
    assert att["url"] == runtime.urls.media(m.file_name)
    assert att["preview_url"] == runtime.urls.media("0" * 26 + ".w640.webp")
    assert att["meta"]["original"] == {"width": 1024, "height": 768, "size": "1024x768",
                                       "aspect": 1024 / 768}  # fmt: skip
    assert att["meta"]["small"]["width"] == 640 and att["meta"]["small"]["height"] == 480
    assert att["meta"]["focus"] == {"x": 0.25, "y": -0.5}
    assert (att["description"], att["blurhash"], att["remote_url"]) == (
        "a lighthouse", "LEHV6nWB2yk8", None)  # fmt: skip
    assert mine["text"].startswith("harbour #Sea") and mine["pinned"] is False
    assert theirs["text"] is None and "pinned" not in theirs
    assert set(theirs) >= VIEWER_KEYS and theirs["favourited"] is False
    assert not VIEWER_KEYS & set(nobody)


async def test_replies_name_their_parent_and_the_parents_author(runtime, people) -> None:
    """A reply's in_reply_to_id is the parent's status id and in_reply_to_account_id its
    author's account id; the parent counts the reply."""
    alice, painter = people
    async with runtime.session() as s:
        parent = await publish(s, runtime, await s.get_one(Account, painter.id), Draft("sea"))
        reply = await publish(s, runtime, await s.get_one(Account, alice.id),
                              Draft("lovely", in_reply_to=parent))  # fmt: skip
    async with runtime.sessions() as s:
        rows = [await s.get_one(Post, parent.id), await s.get_one(Post, reply.id)]
        p, r = await entities.statuses(runtime, s, rows, None)
    assert (r["in_reply_to_id"], r["in_reply_to_account_id"]) == (p["id"], str(painter.id))
    assert p["in_reply_to_id"] is None and p["replies_count"] == 1


async def test_likes_boosts_and_reblogs_for_the_viewer(runtime, people) -> None:
    """After the viewer likes and boosts a post, its Status says favourited and reblogged
    with the counts; the boost itself is a reblog Status: its own id (the boost's), the
    booster as account, and the boosted post's Status as `reblog`."""
    alice, painter = people
    async with runtime.session() as s:
        post = await publish(s, runtime, await s.get_one(Account, painter.id), Draft("sea"))
    await write(runtime, actions.like, alice, post)
    boost = await write(runtime, actions.boost, alice, post)
    async with runtime.sessions() as s:
        me = await s.get_one(Account, alice.id)
        post = await s.get_one(Post, post.id)
        boost = await s.get_one(Boost, boost.id)
        plain, wrapped = await entities.timeline(runtime, s, [post, boost], me)
        alone = await entities.reblog_status(runtime, s, boost, me)
    assert (plain["favourited"], plain["reblogged"]) == (True, True)
    assert (plain["favourites_count"], plain["reblogs_count"]) == (1, 1)
    assert wrapped == alone
    assert wrapped["id"] == boost.public_id != post.public_id
    assert wrapped["account"]["id"] == str(alice.id) and wrapped["uri"] == boost.uri
    assert wrapped["reblog"]["id"] == post.public_id
    assert wrapped["reblog"]["account"]["id"] == str(painter.id)
    assert wrapped["reblogged"] is True and wrapped["content"] == ""


async def test_quotes_as_mastodon_4_5_shows_them(runtime, client, fedi, people) -> None:
    """`quote` is null for a post that quotes nothing; a quote of a post here is accepted at
    once and carries the quoted Status, whose own quote is only named (ShallowQuote); a
    quote of a remote post waiting for its author's approval is pending, without the quoted
    status; once the quoted post is deleted the quote says deleted. quotes_count counts
    accepted quotes."""
    alice, painter = people
    async with runtime.session() as s:
        sea = await publish(s, runtime, await s.get_one(Account, painter.id), Draft("sea"))
    first = await write(runtime, lambda s, rt, me, parent: quotes.publish_quote(
        s, rt, me, Draft("mine", quote=parent)), alice, sea)  # fmt: skip
    second = await write(runtime, lambda s, rt, me, parent: quotes.publish_quote(
        s, rt, me, Draft("again", quote=parent)), painter, first)  # fmt: skip
    policy = {"canQuote": {"automaticApproval": ["https://www.w3.org/ns/activitystreams#Public"],
                           "manualApproval": []}}  # fmt: skip
    far = await remote_note(client, runtime, fedi, interactionPolicy=policy)
    waiting = await write(runtime, lambda s, rt, me, parent: quotes.publish_quote(
        s, rt, me, Draft("far", quote=parent)), alice, far)  # fmt: skip
    async with runtime.sessions() as s:
        rows = [await s.get_one(Post, p.id) for p in (sea, first, second, waiting)]
        plain, one, two, pending = await entities.statuses(runtime, s, rows, None)
    assert plain["quote"] is None and plain["quotes_count"] == 1
    assert one["quote"]["state"] == "accepted"
    assert one["quote"]["quoted_status"]["id"] == sea.public_id
    assert two["quote"]["quoted_status"]["id"] == first.public_id
    assert two["quote"]["quoted_status"]["quote"] == {
        "state": "accepted",
        "quoted_status_id": sea.public_id,
    }
    assert pending["quote"] == {"state": "pending", "quoted_status": None}
    assert plain["quote_approval"]["automatic"] == ["public"]

    await write(runtime, delete_post, painter, sea)
    async with runtime.sessions() as s:
        again = await entities.status(runtime, s, await s.get_one(Post, first.id), None)
    assert again["quote"] == {"state": "deleted", "quoted_status": None}


async def test_remote_media_is_shown_from_our_cache(runtime, client, fedi) -> None:
    """A remote post's attachment is served from our media cache, never hotlinked: `url`
    is our remote-media URL and `remote_url` the origin; the author's acct has its domain."""
    doc_media = [{"type": "Document", "mediaType": "image/png", "name": "owl",
                  "url": "https://remote.example/media/owl.png", "width": 800, "height": 600,
                  "blurhash": "LKO2?U%2Tw=w"}]  # fmt: skip
    post = await remote_note(client, runtime, fedi, attachment=doc_media)
    async with runtime.sessions() as s:
        data = await entities.status(runtime, s, await s.get_one(Post, post.id), None)
    (att,) = data["media_attachments"]
    assert att["url"] == runtime.urls.remote_media(att["id"])
    assert att["remote_url"] == "https://remote.example/media/owl.png"
    assert att["meta"]["original"]["width"] == 800
    assert data["account"]["acct"] == "rem@remote.example"


async def test_a_timeline_of_40_costs_as_many_queries_as_one(runtime, people) -> None:
    """Statuses of a batch load their relations in bulk: 40 posts (with attachments,
    replies, mentions, hashtags, quotes, likes and boosts) take no more queries than one
    post with the same relations, and at most a small fixed number."""
    alice, painter = people
    async with runtime.session() as s:
        author = await s.get_one(Account, painter.id)
        me = await s.get_one(Account, alice.id)
        root = await publish(s, runtime, author, Draft("root"))
        made = []
        for i in range(40):
            m = image(author)
            m.file_name = f"{i:026d}.png"
            s.add(m)
            await s.flush()
            made.append(await publish(s, runtime, author, Draft(
                f"post {i} #tag{i}", media=[m], mentions=[me], in_reply_to=root,
            )))  # fmt: skip
    for p in made:
        await write(runtime, actions.like, alice, p)
    counted: list[str] = []

    def count(conn, cursor, statement, *args) -> None:
        counted.append(statement)

    async def queries(n: int) -> int:
        counted.clear()
        event.listen(runtime.engine.sync_engine, "before_cursor_execute", count)
        try:
            async with runtime.sessions() as s:
                viewer = await s.get_one(Account, alice.id)
                rows = list(await s.scalars(select(Post).where(
                    Post.id.in_([p.id for p in made[:n]]))))  # fmt: skip
                start = len(counted)
                out = await entities.statuses(runtime, s, rows, viewer)
                assert len(out) == n and all(o["favourited"] for o in out)
                return len(counted) - start
        finally:
            event.remove(runtime.engine.sync_engine, "before_cursor_execute", count)

    one, forty = await queries(1), await queries(40)
    assert forty == one <= 15


async def test_notifications_with_mastodons_types(runtime, people) -> None:
    """Notifications use Mastodon's type names (a like is `favourite`, a boost `reblog`, a
    reply `mention`, a remix `quote`), carry the sender as account and, for those about a
    post, its Status; a follow has no status; one about a deleted post is left out."""
    alice, painter = people
    async with runtime.session() as s:
        post = await publish(s, runtime, await s.get_one(Account, painter.id), Draft("sea"))
        other = await publish(s, runtime, await s.get_one(Account, painter.id), Draft("sky"))
    await write(runtime, actions.follow, alice, painter)
    await write(runtime, actions.like, alice, post)
    await write(runtime, actions.boost, alice, post)
    await write(runtime, actions.like, alice, other)
    await write(runtime, lambda s, rt, me, parent: quotes.publish_quote(
        s, rt, me, Draft("mine", quote=parent)), alice, post)  # fmt: skip
    async with runtime.session() as s:
        await publish(s, runtime, await s.get_one(Account, alice.id),
                      Draft("nice", in_reply_to=await s.get_one(Post, post.id)))  # fmt: skip
    await write(runtime, delete_post, painter, other)
    async with runtime.sessions() as s:
        rows = list(await s.scalars(select(Notification).where(
            Notification.account_id == painter.id).order_by(Notification.id)))  # fmt: skip
        out = await entities.notifications(runtime, s, rows, await s.get_one(Account, painter.id))
    assert [n["type"] for n in out] == ["follow", "favourite", "reblog", "quote", "mention"]
    assert all(n["account"]["id"] == str(alice.id) for n in out)
    assert "status" not in out[0]
    assert out[1]["status"]["id"] == post.public_id and out[1]["id"] == str(rows[1].id)
    assert out[3]["status"]["quote"]["quoted_status"]["id"] == post.public_id
