"""What a local account does to others: follow, like, boost, and their undos.

Each action changes local state and enqueues the activity in one transaction: the local side
(rows, counters, notifications) is visible at once, the remote side is delivered by the
workers. Targets on this instance are handled locally without any HTTP.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from activitypub.objects import (
    AS_PUBLIC,
    build_accept,
    build_announce,
    build_follow,
    build_like,
    build_reject,
    build_undo,
)
from instance.content.counters import recount
from instance.content.notifications import notify
from instance.content.visibility import can_boost
from instance.errors import ActionError
from instance.outbound.fanout import enqueue
from instance.runtime import Runtime
from instance.storage.ids import new_public_id
from instance.storage.models import Account, Boost, Follow, Like, Post

Row = TypeVar("Row", Like, Boost)


async def follow(session: AsyncSession, rt: Runtime, me: Account, target: Account) -> Follow:
    """Follow `target`: at once when it is local and unlocked, else after its Accept."""
    if target.id == me.id:
        raise ActionError("an account cannot follow itself")
    existing = await session.scalar(
        select(Follow).where(Follow.follower_id == me.id, Follow.followee_id == target.id)
    )
    if existing is not None:
        return existing
    activity = build_follow(
        activity_id=rt.urls.activity(me.username, new_public_id()), actor=me.uri,
        object_id=target.uri,
    )  # fmt: skip
    row = Follow(follower_id=me.id, followee_id=target.id, uri=activity["id"],
                 created_at=rt.now())  # fmt: skip
    session.add(row)
    if target.local:
        row.accepted = not target.manually_approves_followers
        await session.flush()
        await notify(session, recipient=target, sender=me, now=rt.now(),
                     kind="follow" if row.accepted else "follow_request")  # fmt: skip
    else:
        await enqueue(session, rt, me, activity, to=[target])
    await session.flush()
    return row


async def unfollow(session: AsyncSession, rt: Runtime, me: Account, target: Account) -> bool:
    row = await session.scalar(
        select(Follow).where(Follow.follower_id == me.id, Follow.followee_id == target.id)
    )
    if row is None:
        return False
    if not target.local:
        original = build_follow(activity_id=row.uri, actor=me.uri, object_id=target.uri)
        undo = build_undo(activity_id=f"{row.uri}/undo", actor=me.uri, activity=original)
        await enqueue(session, rt, me, undo, to=[target])
    await session.delete(row)
    await session.flush()
    return True


async def pending_followers(session: AsyncSession, me: Account) -> list[Account]:
    """Follow requests waiting for `me` (an account that approves followers by hand)."""
    rows = await session.scalars(
        select(Account)
        .join(Follow, Follow.follower_id == Account.id)
        .where(Follow.followee_id == me.id, Follow.accepted.is_(False))
        .order_by(Follow.id)
    )
    return list(rows)


async def _request(session: AsyncSession, me: Account, follower: Account) -> Follow | None:
    return await session.scalar(
        select(Follow).where(
            Follow.follower_id == follower.id, Follow.followee_id == me.id,
            Follow.accepted.is_(False),
        )
    )  # fmt: skip


async def approve(session: AsyncSession, rt: Runtime, me: Account, follower: Account) -> bool:
    """Accept a pending follow request; the follower's server gets the Accept."""
    row = await _request(session, me, follower)
    if row is None:
        return False
    row.accepted = True
    if not follower.local:
        accept = build_accept(
            activity_id=rt.urls.activity(me.username, new_public_id()), actor=me.uri,
            follow={"id": row.uri, "actor": follower.uri, "object": me.uri},
        )  # fmt: skip
        await enqueue(session, rt, me, accept, to=[follower])
    await session.flush()
    return True


async def reject(session: AsyncSession, rt: Runtime, me: Account, follower: Account) -> bool:
    """Refuse a pending follow request; the follower's server gets Reject."""
    row = await _request(session, me, follower)
    if row is None:
        return False
    if not follower.local:
        refusal = build_reject(
            activity_id=rt.urls.activity(me.username, new_public_id()), actor=me.uri,
            follow={"id": row.uri, "actor": follower.uri, "object": me.uri},
        )  # fmt: skip
        await enqueue(session, rt, me, refusal, to=[follower])
    await session.delete(row)
    await session.flush()
    return True


async def _author(session: AsyncSession, post: Post) -> Account:
    return await session.get_one(Account, post.account_id)


async def _mine(session: AsyncSession, model: type[Row], me: Account, post: Post) -> Row | None:
    found: Row | None = await session.scalar(
        select(model).where(model.account_id == me.id, model.post_id == post.id)
    )
    return found


async def like(session: AsyncSession, rt: Runtime, me: Account, post: Post) -> Like:
    """Like a post; a second like of the same post changes nothing (counts stay exact)."""
    existing = await _mine(session, Like, me, post)
    if existing is not None:
        return existing
    author = await _author(session, post)
    activity = _like(me, post, author, rt.urls.activity(me.username, new_public_id()))
    row = Like(account_id=me.id, post_id=post.id, uri=activity["id"], created_at=rt.now())
    session.add(row)
    await session.flush()
    await recount(session, post.id)
    if author.local:
        await notify(session, recipient=author, kind="like", sender=me, post=post, now=rt.now())
    else:
        await enqueue(session, rt, me, activity, to=[author])
    return row


async def unlike(session: AsyncSession, rt: Runtime, me: Account, post: Post) -> bool:
    row = await _mine(session, Like, me, post)
    if row is None:
        return False
    author = await _author(session, post)
    if not author.local:
        undo = build_undo(activity_id=f"{row.uri}/undo", actor=me.uri,
                          activity=_like(me, post, author, row.uri))  # fmt: skip
        await enqueue(session, rt, me, undo, to=[author])
    await session.delete(row)
    await session.flush()
    await recount(session, post.id)
    return True


def _like(me: Account, post: Post, author: Account, activity_id: str) -> dict[str, Any]:
    return build_like(activity_id=activity_id, actor=me.uri, object_id=post.uri,
                      object_author=author.uri)  # fmt: skip


def _announce(
    me: Account, post: Post, author: Account, activity_id: str, published: datetime
) -> dict[str, Any]:
    """Mastodon dates a boost by the Announce's `published` (without it, by arrival)."""
    return build_announce(
        activity_id=activity_id, actor=me.uri, object_id=post.uri,
        to=[AS_PUBLIC], cc=[author.uri, me.followers_uri or ""], published=published,
    )  # fmt: skip


async def boost(session: AsyncSession, rt: Runtime, me: Account, post: Post) -> Boost:
    """Announce a public post to our followers and its author."""
    if not can_boost(post):
        raise ActionError("only public and unlisted posts can be boosted")
    existing = await _mine(session, Boost, me, post)
    if existing is not None:
        return existing
    author = await _author(session, post)
    now = rt.now()
    activity = _announce(me, post, author, rt.urls.activity(me.username, new_public_id()), now)
    row = Boost(account_id=me.id, post_id=post.id, uri=activity["id"], published=now)
    session.add(row)
    await session.flush()
    await recount(session, post.id)
    if author.local:
        await notify(session, recipient=author, kind="boost", sender=me, post=post, now=rt.now())
    await enqueue(session, rt, me, activity, to=[author], to_followers=True, object_uri=post.uri)
    return row


async def unboost(session: AsyncSession, rt: Runtime, me: Account, post: Post) -> bool:
    row = await _mine(session, Boost, me, post)
    if row is None:
        return False
    author = await _author(session, post)
    undo = build_undo(activity_id=f"{row.uri}/undo", actor=me.uri,
                      activity=_announce(me, post, author, row.uri, row.published))  # fmt: skip
    await enqueue(session, rt, me, undo, to=[author], to_followers=True)
    await session.delete(row)
    await session.flush()
    await recount(session, post.id)
    return True
