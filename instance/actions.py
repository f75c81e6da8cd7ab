"""What a local account does to others: follow, like, boost, and their undos.

Each action changes local state and enqueues the activity in one transaction: the local side
(rows, counters, notifications) is visible at once, the remote side is delivered by the
workers. Targets on this instance are handled locally without any HTTP.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from activitypub.objects import (
    AS_PUBLIC,
    build_announce,
    build_follow,
    build_like,
    build_undo,
)

from .fanout import enqueue
from .notifications import notify
from .storage.ids import new_public_id
from .storage.models import Account, Boost, Follow, Like, Post
from .urls import LocalUrls


class ActionError(Exception):
    """An action that cannot be done; the message says why."""


async def follow(session: AsyncSession, urls: LocalUrls, me: Account, target: Account) -> Follow:
    """Follow `target`: at once when it is local and unlocked, else after its Accept."""
    if target.id == me.id:
        raise ActionError("an account cannot follow itself")
    existing = await session.scalar(
        select(Follow).where(Follow.follower_id == me.id, Follow.followee_id == target.id)
    )
    if existing is not None:
        return existing
    activity = build_follow(
        activity_id=urls.activity(me.username, new_public_id()), actor=me.uri, object_id=target.uri
    )
    row = Follow(follower_id=me.id, followee_id=target.id, uri=activity["id"])
    session.add(row)
    if target.local:
        row.accepted = not target.manually_approves_followers
        kind = "follow" if row.accepted else "follow_request"
        await session.flush()
        await notify(session, recipient=target, kind=kind, sender=me)
    else:
        await enqueue(session, urls, me, activity, inboxes=[target.inbox_uri or ""])
    await session.flush()
    return row


async def unfollow(session: AsyncSession, urls: LocalUrls, me: Account, target: Account) -> bool:
    row = await session.scalar(
        select(Follow).where(Follow.follower_id == me.id, Follow.followee_id == target.id)
    )
    if row is None:
        return False
    if not target.local:
        original = build_follow(activity_id=row.uri, actor=me.uri, object_id=target.uri)
        undo = build_undo(activity_id=f"{row.uri}/undo", actor=me.uri, activity=original)
        await enqueue(session, urls, me, undo, inboxes=[target.inbox_uri or ""])
    await session.delete(row)
    await session.flush()
    return True


async def _author(session: AsyncSession, post: Post) -> Account:
    return await session.get_one(Account, post.account_id)


async def like(session: AsyncSession, urls: LocalUrls, me: Account, post: Post) -> Like:
    """Like a post; a second like of the same post changes nothing (counts stay exact)."""
    existing = await session.scalar(
        select(Like).where(Like.account_id == me.id, Like.post_id == post.id)
    )
    if existing is not None:
        return existing
    author = await _author(session, post)
    activity = build_like(
        activity_id=urls.activity(me.username, new_public_id()), actor=me.uri,
        object_id=post.uri, object_author=author.uri,
    )  # fmt: skip
    row = Like(account_id=me.id, post_id=post.id, uri=activity["id"])
    session.add(row)
    await session.execute(
        update(Post).where(Post.id == post.id).values(likes_count=Post.likes_count + 1)
    )
    await session.flush()
    if author.local:
        await notify(session, recipient=author, kind="like", sender=me, post=post)
    else:
        await enqueue(session, urls, me, activity, inboxes=[author.inbox_uri or ""])
    return row


async def unlike(session: AsyncSession, urls: LocalUrls, me: Account, post: Post) -> bool:
    row = await session.scalar(
        select(Like).where(Like.account_id == me.id, Like.post_id == post.id)
    )
    if row is None:
        return False
    author = await _author(session, post)
    if not author.local:
        original = build_like(activity_id=row.uri, actor=me.uri, object_id=post.uri,
                              object_author=author.uri)  # fmt: skip
        undo = build_undo(activity_id=f"{row.uri}/undo", actor=me.uri, activity=original)
        await enqueue(session, urls, me, undo, inboxes=[author.inbox_uri or ""])
    await session.execute(delete(Like).where(Like.id == row.id))
    await session.execute(
        update(Post).where(Post.id == post.id, Post.likes_count > 0)
        .values(likes_count=Post.likes_count - 1)
    )  # fmt: skip
    return True


def _announce(urls: LocalUrls, me: Account, post: Post, author: Account, activity_id: str) -> Any:
    return build_announce(
        activity_id=activity_id, actor=me.uri, object_id=post.uri,
        to=[AS_PUBLIC], cc=[author.uri, me.followers_uri or ""],
    )  # fmt: skip


async def boost(session: AsyncSession, urls: LocalUrls, me: Account, post: Post) -> Boost:
    """Announce a public post to our followers and its author."""
    if post.visibility not in ("public", "unlisted"):
        raise ActionError("only public and unlisted posts can be boosted")
    existing = await session.scalar(
        select(Boost).where(Boost.account_id == me.id, Boost.post_id == post.id)
    )
    if existing is not None:
        return existing
    author = await _author(session, post)
    activity = _announce(urls, me, post, author, urls.activity(me.username, new_public_id()))
    row = Boost(account_id=me.id, post_id=post.id, uri=activity["id"])
    session.add(row)
    await session.execute(
        update(Post).where(Post.id == post.id).values(boosts_count=Post.boosts_count + 1)
    )
    await session.flush()
    if author.local:
        await notify(session, recipient=author, kind="boost", sender=me, post=post)
    inboxes = [] if author.local else [author.inbox_uri or ""]
    await enqueue(session, urls, me, activity, inboxes=inboxes, to_followers=True,
                  object_uri=post.uri)  # fmt: skip
    return row


async def unboost(session: AsyncSession, urls: LocalUrls, me: Account, post: Post) -> bool:
    row = await session.scalar(
        select(Boost).where(Boost.account_id == me.id, Boost.post_id == post.id)
    )
    if row is None:
        return False
    author = await _author(session, post)
    undo = build_undo(activity_id=f"{row.uri}/undo", actor=me.uri,
                      activity=_announce(urls, me, post, author, row.uri))  # fmt: skip
    inboxes = [] if author.local else [author.inbox_uri or ""]
    await enqueue(session, urls, me, undo, inboxes=inboxes, to_followers=True)
    await session.execute(delete(Boost).where(Boost.id == row.id))
    await session.execute(
        update(Post).where(Post.id == post.id, Post.boosts_count > 0)
        .values(boosts_count=Post.boosts_count - 1)
    )  # fmt: skip
    return True
