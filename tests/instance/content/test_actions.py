"""Local accounts acting: follow, like, boost and undo, on local and remote targets."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from instance.content import actions
from instance.content.posting import Draft, publish
from instance.storage.models import Account, Delivery, Follow, Notification, OutboundActivity, Post


@pytest.fixture
async def world(runtime, new_account):
    me = await new_account("alice")
    bot = await new_account("painter", ai=True)
    locked = await new_account("shy", manually_approves_followers=True)
    async with runtime.session() as s:
        bot = await s.get(Account, bot.id)
        post = await publish(s, runtime, bot, Draft(text="harbour"))
        remote = Account(username="rem", username_key="rem", domain="remote.example", local=False,
                         uri="https://remote.example/users/rem",
                         inbox_uri="https://remote.example/users/rem/inbox")  # fmt: skip
        s.add(remote)
        await s.flush()
        rpost = Post(
            uri="https://remote.example/notes/1", account_id=remote.id, content="<p>hi</p>"
        )
        s.add(rpost)
    return me, bot, locked, post, remote, rpost


async def run(runtime, fn, *args):
    async with runtime.session() as s:
        fresh = [await s.get(type(a), a.id) if hasattr(a, "id") else a for a in args]
        return await fn(s, runtime, *fresh)


async def outbound(runtime, kind):
    async with runtime.sessions() as s:
        rows = list(await s.scalars(select(OutboundActivity).where(OutboundActivity.kind == kind)))
        out = []
        for r in rows:
            inboxes = list(
                await s.scalars(select(Delivery.inbox_uri).where(Delivery.activity_id == r.id))
            )
            out.append((json.loads(r.body), inboxes))
        return out


async def test_local_follow_is_immediate_and_notifies(runtime, world) -> None:
    me, bot, locked, *_ = world
    await run(runtime, actions.follow, me, bot)
    await run(runtime, actions.follow, me, locked)
    async with runtime.sessions() as s:
        rows = {f.followee_id: f.accepted for f in await s.scalars(select(Follow))}
        kinds = sorted(n.kind for n in await s.scalars(select(Notification)))
    assert rows == {bot.id: True, locked.id: False}
    assert kinds == ["follow", "follow_request"]


async def test_remote_follow_sends_follow_and_waits(runtime, world) -> None:
    me, *_, remote, _ = world
    row = await run(runtime, actions.follow, me, remote)
    assert row.accepted is False
    ((follow, inboxes),) = await outbound(runtime, "Follow")
    # the stored id answers the Accept
    assert follow["object"] == remote.uri and follow["id"] == row.uri
    assert inboxes == [remote.inbox_uri]
    assert await run(runtime, actions.unfollow, me, remote)
    ((undo, _),) = await outbound(runtime, "Undo")
    assert undo["object"]["id"] == row.uri  # Undo embeds the original


async def test_like_counts_once_and_undo(runtime, world) -> None:
    me, _, _, post, remote, rpost = world
    for _ in range(2):
        await run(runtime, actions.like, me, post)
    async with runtime.sessions() as s:
        assert (await s.get(Post, post.id)).likes_count == 1
    assert await run(runtime, actions.unlike, me, post)
    assert not await run(runtime, actions.unlike, me, post)
    async with runtime.sessions() as s:
        assert (await s.get(Post, post.id)).likes_count == 0
    await run(runtime, actions.like, me, rpost)
    ((like, inboxes),) = await outbound(runtime, "Like")
    # to the post author's inbox
    assert like["object"] == rpost.uri and inboxes == [remote.inbox_uri]


async def test_boost_goes_to_followers_and_author(runtime, world) -> None:
    me, _, _, post, remote, rpost = world
    async with runtime.session() as s:
        s.add(Follow(follower_id=remote.id, followee_id=me.id, uri="urn:x", accepted=True))
    await run(runtime, actions.boost, me, rpost)
    ((announce, inboxes),) = await outbound(runtime, "Announce")
    assert announce["object"] == rpost.uri
    assert announce["to"] == ["https://www.w3.org/ns/activitystreams#Public"]
    assert announce["published"].endswith("Z")  # Mastodon dates the boost by it
    assert inboxes == [remote.inbox_uri]  # author and follower share one inbox here
    await run(runtime, actions.boost, me, post)
    async with runtime.sessions() as s:
        assert (await s.get(Post, post.id)).boosts_count == 1
    assert await run(runtime, actions.unboost, me, post)
    async with runtime.sessions() as s:
        assert (await s.get(Post, post.id)).boosts_count == 0


async def test_cannot_follow_self(runtime, world) -> None:
    me, *_ = world
    with pytest.raises(actions.ActionError, match="cannot follow itself"):
        await run(runtime, actions.follow, me, me)


async def test_locked_account_approves_or_rejects_requests(runtime, world) -> None:
    """A locked account's requests wait; approve sends Accept, reject sends Reject."""
    _, _, locked, _, remote, _ = world
    other = Account(username="o", username_key="o", domain="other.example", local=False,
                    uri="https://other.example/users/o",
                    inbox_uri="https://other.example/users/o/inbox")  # fmt: skip
    async with runtime.session() as s:
        s.add(other)
        await s.flush()
        for who, n in ((remote, 1), (other, 2)):
            s.add(Follow(follower_id=who.id, followee_id=locked.id, uri=f"{who.uri}/follows/{n}"))
    async with runtime.sessions() as s:
        pending = await actions.pending_followers(s, await s.get(Account, locked.id))
    assert [a.uri for a in pending] == [remote.uri, other.uri]
    assert await run(runtime, actions.approve, locked, remote)
    assert await run(runtime, actions.reject, locked, other)
    assert not await run(runtime, actions.approve, locked, other)  # nothing pending any more
    ((accept, to_remote),) = await outbound(runtime, "Accept")
    assert accept["object"] == {"id": f"{remote.uri}/follows/1", "type": "Follow",
                                "actor": remote.uri, "object": locked.uri}  # fmt: skip
    assert to_remote == [remote.inbox_uri]
    ((refusal, to_other),) = await outbound(runtime, "Reject")
    assert refusal["object"]["id"] == f"{other.uri}/follows/2" and to_other == [other.inbox_uri]
    async with runtime.sessions() as s:
        rows = {(f.follower_id, f.accepted) for f in await s.scalars(select(Follow))}
    assert rows == {(remote.id, True)}
