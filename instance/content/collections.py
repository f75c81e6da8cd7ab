"""The contents of an account's collections: followers, following, outbox, featured."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased, selectinload

from instance.content.notes import create_json, note_json
from instance.content.render import PAGE_SIZE
from instance.content.visibility import served_unsigned_rows
from instance.moderation.domains import shown_domain
from instance.moderation.suspension import shown_author
from instance.storage.models import Account, Follow, Post
from instance.urls import LocalUrls


async def followers(
    session: AsyncSession, account: Account, page: int | None
) -> tuple[int, list[str]]:
    return await _follow_side(session, Follow.followee_id == account.id, Follow.follower_id, page)


async def following(
    session: AsyncSession, account: Account, page: int | None
) -> tuple[int, list[str]]:
    return await _follow_side(session, Follow.follower_id == account.id, Follow.followee_id, page)


async def _follow_side(
    session: AsyncSession, condition: Any, other_column: Any, page: int | None
) -> tuple[int, list[str]]:
    where = (condition, Follow.accepted.is_(True))
    total = await session.scalar(select(func.count()).select_from(Follow).where(*where)) or 0
    if page is None:
        return total, []
    other = aliased(Account)
    rows = await session.scalars(
        select(other.uri)
        .join(Follow, other_column == other.id)
        .where(*where)
        .order_by(Follow.id.desc())
        .limit(PAGE_SIZE)
        .offset((page - 1) * PAGE_SIZE)
    )
    return total, list(rows)


def _public_posts(account: Account) -> Any:
    return (
        Post.account_id == account.id,
        Post.deleted_at.is_(None),
        served_unsigned_rows(),
    )


async def outbox(
    session: AsyncSession, account: Account, urls: LocalUrls, page: int | None
) -> tuple[int, list[dict[str, Any]]]:
    where = _public_posts(account)
    total = await session.scalar(select(func.count()).select_from(Post).where(*where)) or 0
    if page is None:
        return total, []
    posts = await session.scalars(
        select(Post)
        .where(*where)
        .options(selectinload(Post.media))
        .order_by(Post.published.desc(), Post.id.desc())
        .limit(PAGE_SIZE)
        .offset((page - 1) * PAGE_SIZE)
    )
    items = []
    for post in posts:
        note = note_json(post, account, list(post.media), urls, with_context=False)
        activity = create_json(post, note)
        activity.pop("@context")
        items.append(activity)
    return total, items


async def featured(
    session: AsyncSession, account: Account, urls: LocalUrls
) -> list[dict[str, Any]]:
    """Pinned posts, inline (Mastodon syncs featured though it never reads outboxes)."""
    posts = await session.scalars(
        select(Post)
        .where(*_public_posts(account), Post.pinned_at.is_not(None))
        .options(selectinload(Post.media))
        .order_by(Post.pinned_at.desc())
        .limit(PAGE_SIZE)
    )
    return [note_json(p, account, list(p.media), urls, with_context=False) for p in posts]


async def replies(session: AsyncSession, post: Post, page: int | None) -> tuple[int, list[str]]:
    """The ids of the replies to `post` that anyone may fetch (ours and others', public or
    unlisted, not deleted), oldest first: Mastodon backfills a thread from this."""
    where = (
        Post.in_reply_to_id == post.id,
        Post.deleted_at.is_(None),
        served_unsigned_rows(),
        shown_author(),  # not by a suspended account (instance/moderation/suspension.py)
        shown_domain(),  # nor by an account of a suspended domain (moderation/domains.py)
    )
    total = await session.scalar(select(func.count()).select_from(Post).where(*where)) or 0
    if page is None:
        return total, []
    rows = await session.scalars(
        select(Post.uri).where(*where).order_by(Post.published, Post.id)
        .limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)
    )  # fmt: skip
    return total, list(rows)
