"""Pinned posts: an account's showcase, served as its `featured` collection.

Mastodon never backfills a remote outbox but does sync `featured`, so pinned images are what
new visitors see first. Only an account's own public or unlisted posts can be pinned, at most
`MAX_PINNED`. Pinning and unpinning are also federated as `Add`/`Remove` with the featured
collection as `target`, which Mastodon applies at once (else it waits for its next refresh).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from activitypub.objects import AS_CONTEXT, AS_PUBLIC
from instance.content.visibility import can_pin
from instance.errors import PinError
from instance.outbound.fanout import enqueue
from instance.runtime import Runtime
from instance.storage.ids import new_public_id
from instance.storage.models import Account, Post

MAX_PINNED = 5

async def find_local_post(session: AsyncSession, url: str) -> Post:
    """A post of this instance by its id or page URL; PinError when there is none."""
    post = await session.scalar(
        select(Post).where(Post.local.is_(True), or_(Post.uri == url, Post.url == url))
    )
    if post is None or post.deleted_at is not None:
        raise PinError(f"no post of this instance at {url}")
    return post


async def pinned_count(session: AsyncSession, account: Account) -> int:
    return int(
        await session.scalar(
            select(func.count())
            .select_from(Post)
            .where(
                Post.account_id == account.id,
                Post.pinned_at.is_not(None),
                Post.deleted_at.is_(None),
            )
        )
        or 0
    )


async def pin(session: AsyncSession, rt: Runtime, account: Account, post: Post) -> bool:
    """Pin `post` to `account`'s profile; False when it already was."""
    if post.account_id != account.id or not post.local:
        raise PinError(f"{account.username} can only pin its own posts")
    if not can_pin(post):
        raise PinError(
            f"only public or unlisted posts can be pinned (this one is {post.visibility})"
        )
    if post.pinned_at is not None:
        return False
    if await pinned_count(session, account) >= MAX_PINNED:
        raise PinError(
            f"{account.username} already has {MAX_PINNED} pinned posts, the most; unpin one first"
        )
    post.pinned_at = rt.now()
    await _federate(session, rt, account, post, "Add")
    return True


async def unpin(session: AsyncSession, rt: Runtime, account: Account, post: Post) -> bool:
    """Unpin `post`; False when it was not pinned."""
    if post.account_id != account.id or not post.local:
        raise PinError(f"{account.username} can only unpin its own posts")
    if post.pinned_at is None:
        return False
    post.pinned_at = None
    await _federate(session, rt, account, post, "Remove")
    return True


async def _federate(
    session: AsyncSession, rt: Runtime, account: Account, post: Post, kind: str
) -> None:
    activity: dict[str, Any] = {
        "@context": AS_CONTEXT,
        "id": rt.urls.activity(account.username, new_public_id()),
        "type": kind,
        "actor": account.uri,
        "object": post.uri,
        "target": account.featured_uri or rt.urls.featured(account.username),
        "to": [AS_PUBLIC],
        "cc": [account.followers_uri or ""],
    }
    await enqueue(session, rt, account, activity, to_followers=True, object_uri=post.uri)
