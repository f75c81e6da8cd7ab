"""Who may see a post, and what others may do with it: each rule written once, here.

A post has one of four visibilities (its audience, as Mastodon reads `to`/`cc`):

    rule                                         public  unlisted  followers  direct
    seen by a signed-in viewer                   yes     yes       accepted   mentioned
                                                                   followers
    seen by an anonymous visitor (pages)         yes     no        no         no
    served to anyone, unsigned (JSON, permalink) yes     yes       no         no
    on the local and federated timelines         yes     no        no         no
    boosted, quoted or remixed, pinned           yes     yes       no         no

Authors always see their own posts. Followers-only and direct posts are delivered to their
audience and never served publicly. Rules over many rows are SQL expressions over `Post`
(for timelines and pages); rules over one loaded post are plain functions.
"""

from __future__ import annotations

from typing import Any, TypeGuard

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from activitypub.addressing import Visibility
from instance.errors import PostingError
from instance.storage.models import Account, Follow, Mention, Post

VISIBILITIES: tuple[Visibility, ...] = ("public", "unlisted", "followers", "direct")
SHAREABLE: tuple[Visibility, ...] = ("public", "unlisted")
"""Visibilities anyone may fetch, and so boost, quote, remix or find pinned."""


def visible_to(viewer: Account | None) -> ColumnElement[bool]:
    """The posts `viewer` may see (None: an anonymous visitor)."""
    if viewer is None:
        return Post.visibility == "public"
    following = exists().where(
        Follow.follower_id == viewer.id, Follow.followee_id == Post.account_id,
        Follow.accepted.is_(True),
    )  # fmt: skip
    mentioned = exists().where(Mention.post_id == Post.id, Mention.account_id == viewer.id)
    return or_(
        Post.visibility.in_(SHAREABLE),
        and_(Post.visibility == "followers", or_(following, Post.account_id == viewer.id)),
        mentioned,
        Post.account_id == viewer.id,
    )


async def can_see(session: AsyncSession, viewer: Account | None, post: Post) -> bool:
    """Whether `viewer` may see this one post (the same rule as `visible_to`)."""
    found = await session.scalar(select(Post.id).where(Post.id == post.id, visible_to(viewer)))
    return found is not None


def publicly_listed() -> ColumnElement[bool]:
    """Posts on the local and federated timelines (and boosts shown on home timelines)."""
    return Post.visibility == "public"


def served_unsigned_rows() -> ColumnElement[bool]:
    """Posts we hand to anyone who asks: outbox, featured collection, permalinks."""
    return Post.visibility.in_(SHAREABLE)


def served_unsigned(post: Post) -> bool:
    return post.visibility in SHAREABLE


def can_boost(post: Post) -> bool:
    return post.visibility in SHAREABLE


def can_quote(post: Post) -> bool:
    """Whether a quote (a remix) of `post` may be made or approved."""
    return post.visibility in SHAREABLE


def can_pin(post: Post) -> bool:
    return post.visibility in SHAREABLE


def is_visibility(value: Any) -> TypeGuard[Visibility]:
    return value in VISIBILITIES


def visibility_option(value: str) -> Visibility:
    """A visibility a person typed; PostingError naming the choices when it is none."""
    if not is_visibility(value):
        raise PostingError(f"unknown visibility {value!r} (use one of {', '.join(VISIBILITIES)})")
    return value
