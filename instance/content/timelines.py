"""Timelines: home (followed accounts and their boosts), local, federated, one account's posts.

Reads only; paged newest first with `before` (the last entry's `at`). Who sees which post
is instance/content/visibility.py's: the local and federated timelines list public posts,
home and account timelines what the viewer may see.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import literal, or_, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from instance.content.text import plain_text
from instance.content.visibility import publicly_listed, visible_to
from instance.moderation import domains
from instance.moderation.suspension import shown_author
from instance.storage.models import Account, Boost, Follow, MediaAttachment, Mention, Post
from instance.urls import LocalUrls

KINDS = ("home", "local", "federated")
PAGE = 20
HOME_WINDOWS = (*(timedelta(hours=h) for h in (6, 72, 720, 8760)), None)  # then everything


@dataclass(frozen=True)
class Entry:
    at: datetime  # when it entered the timeline: pass as `before` for the next page
    post: Post
    author: Account
    boosted_by: Account | None


def _posts_where(kind: str, viewer: Account | None, author: Account | None) -> list[Any]:
    if kind == "account":
        if author is None:
            raise ValueError("an account timeline needs the account")
        return [Post.account_id == author.id, visible_to(viewer)]
    if kind == "local":
        return [Post.local.is_(True), publicly_listed()]
    if kind == "federated":
        return [publicly_listed()]
    if kind == "home":
        if viewer is None:
            raise ValueError("the home timeline needs a viewer")
        followed = select(Follow.followee_id).where(
            Follow.follower_id == viewer.id, Follow.accepted.is_(True)
        )
        mentioned = select(Mention.post_id).where(Mention.account_id == viewer.id)
        return [
            or_(Post.account_id.in_(followed), Post.account_id == viewer.id,
                Post.id.in_(mentioned)),
            visible_to(viewer),
        ]  # fmt: skip
    raise ValueError(f"unknown timeline {kind!r} (use one of {', '.join(KINDS)})")


def shown_posts(
    kind: str, *, viewer: Account | None = None, author: Account | None = None
) -> list[Any]:
    """WHERE clauses over `Post` for the posts of a timeline (its boosts aside), for callers
    that page it their own way (the client API pages by id)."""
    # suspended (and deleted) authors are hidden everywhere: instance/moderation/suspension.py
    where = [*_posts_where(kind, viewer, author), Post.deleted_at.is_(None), shown_author()]
    # suspended domains everywhere, silenced ones off public timelines: moderation/domains.py
    where.append(domains.shown_domain(public=kind in ("local", "federated")))
    return where


def shown_boosts(viewer: Account) -> list[Any]:
    """WHERE clauses over `Boost` joined to its `Post` for the boosts on `viewer`'s home
    timeline (those of the accounts it follows), for callers that page it their own way."""
    followed = select(Follow.followee_id).where(
        Follow.follower_id == viewer.id, Follow.accepted.is_(True)
    )
    return [
        Boost.account_id.in_(followed),
        Post.deleted_at.is_(None),
        publicly_listed(),
        shown_author(),
        domains.shown_domain(),  # a boost of a suspended domain's post is dropped
        ~domains.author_domain_hidden(Boost.account_id),  # and one it made
        Boost.account_id.not_in(  # a suspended account's boosts are hidden too
            select(Account.id).where(Account.suspended_at.is_not(None))
        ),
    ]


def account_boosts(author: Account, viewer: Account | None) -> list[Any]:
    """WHERE clauses over `Boost` joined to its `Post` for the boosts `author` made that
    `viewer` may see among its posts (the client API's account timeline lists them, as
    Mastodon does): of posts that are not gone, by authors and domains that are shown."""
    return [
        Boost.account_id == author.id,
        Post.deleted_at.is_(None),
        visible_to(viewer),
        shown_author(),
        domains.shown_domain(),
    ]


async def read(
    session: AsyncSession,
    kind: str,
    *,
    viewer: Account | None = None,
    author: Account | None = None,
    before: datetime | None = None,
    limit: int = PAGE,
    now: datetime,
) -> list[Entry]:
    """One page of a timeline, newest first. `kind`: home/local/federated, or "account"."""
    where = shown_posts(kind, viewer=viewer, author=author)
    # Home merges the posts of hundreds of accounts: asking for all of them and sorting would
    # sort every post they ever wrote, so look back over growing windows until one holds a page.
    upper = before or now
    windows = HOME_WINDOWS if kind == "home" else (None,)
    for window in windows:
        since = upper - window if window else None
        rows = await _page(session, where, kind, viewer, before, since, limit)
        if len(rows) >= limit:
            break
    post_rows = await session.scalars(select(Post).where(Post.id.in_({r.post_id for r in rows})))
    posts = {p.id: p for p in post_rows}
    boost_ids = {r.boost_id for r in rows if r.boost_id}
    boosts: dict[int, Boost] = {}
    if boost_ids:
        boost_rows = await session.scalars(select(Boost).where(Boost.id.in_(boost_ids)))
        boosts = {b.id: b for b in boost_rows}
    accounts = await _accounts(
        session, {p.account_id for p in posts.values()} | {b.account_id for b in boosts.values()}
    )
    entries = []
    for row in rows:
        post = posts[row.post_id]
        booster = accounts[boosts[row.boost_id].account_id] if row.boost_id else None
        at = row.at if row.at.tzinfo else row.at.replace(tzinfo=UTC)
        entries.append(Entry(at, post, accounts[post.account_id], booster))
    return entries


async def _page(
    session: AsyncSession,
    where: list[Any],
    kind: str,
    viewer: Account | None,
    before: datetime | None,
    since: datetime | None,
    limit: int,
) -> list[Any]:
    """(post_id, boost_id, at) rows of one page, entries at `since` or later when given."""
    posts_q = select(
        Post.id.label("post_id"), literal(None).label("boost_id"), Post.published.label("at")
    ).where(*where)
    if before is not None:
        posts_q = posts_q.where(Post.published < before)
    if since is not None:
        posts_q = posts_q.where(Post.published >= since)
    parts: list[Any] = [posts_q]
    if kind == "home" and viewer is not None:
        boosts_q = (
            select(Boost.post_id, Boost.id, Boost.published)
            .join(Post, Post.id == Boost.post_id)
            .where(*shown_boosts(viewer))
        )
        if before is not None:
            boosts_q = boosts_q.where(Boost.published < before)
        if since is not None:
            boosts_q = boosts_q.where(Boost.published >= since)
        parts.append(boosts_q)
    merged = union_all(*parts).subquery() if len(parts) > 1 else posts_q.subquery()
    return list(
        await session.execute(
            select(merged.c.post_id, merged.c.boost_id, merged.c.at)
            .order_by(merged.c.at.desc(), merged.c.post_id.desc())
            .limit(limit)
        )
    )


async def _accounts(session: AsyncSession, ids: set[int]) -> dict[int, Account]:
    if not ids:
        return {}
    rows = await session.scalars(select(Account).where(Account.id.in_(ids)))
    return {a.id: a for a in rows}


async def entry_json(session: AsyncSession, entry: Entry, urls: LocalUrls) -> dict[str, Any]:
    post, author = entry.post, entry.author
    media = await session.scalars(
        select(MediaAttachment).where(MediaAttachment.post_id == post.id)
        .order_by(MediaAttachment.position)
    )  # fmt: skip
    return {
        "at": entry.at.isoformat(),
        "uri": post.uri,
        "url": post.url or post.uri,
        "author": urls.handle(author),
        "boosted_by": urls.handle(entry.boosted_by) if entry.boosted_by else None,
        "text": plain_text(post.content),
        "visibility": post.visibility,
        "published": post.published.isoformat(),
        "media": [
            {"url": urls.media(m.file_name) if m.file_name else m.remote_url, "alt": m.description}
            for m in media
        ],
        "likes": post.likes_count,
        "boosts": post.boosts_count,
        "replies": post.replies_count,
        "in_reply_to": post.in_reply_to_uri,
        "remix_of": post.quote_uri,
        "recipe": post.recipe,
    }

