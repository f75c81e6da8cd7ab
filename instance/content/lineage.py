"""Remix lineage: the chain of parents a post was remixed from, and the remixes of a post.

Parents are followed through `quote_id` (known posts, local or remote) up to MAX_DEPTH; a
parent known only by URI ends the chain with that URI. Only what `viewer` may see is shown
(instance/content/visibility.py): a remix the viewer may not see is not listed, and a
parent the viewer may not see ends the chain as a bare URI, without its prompt or author.

Remixes form a tree: each remix entry carries its own remixes under "remixes", down to
TREE_DEPTH levels below the post, at most `limit` per post (oldest first); "more" counts the
visible remixes of that entry that are not listed (cut by the limit or the depth). Every level
is one query, with the same rule as the first: not deleted, visible to the viewer, not by a
suspended account or domain. Remote remixes link to their own server's page ("url").
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from activitypub.urls import safe_link
from instance.content.visibility import can_see, visible_to
from instance.moderation.domains import shown_domain
from instance.moderation.suspension import shown_author
from instance.storage.models import Account, Post
from instance.urls import LocalUrls

MAX_DEPTH = 16
TREE_DEPTH = 4


def _entry(post: Post | None, author: Account | None, uri: str, urls: LocalUrls) -> dict[str, Any]:
    return {
        "uri": uri,
        "url": safe_link(post.url, safe_link(post.uri)) if post else safe_link(uri),
        "author": urls.handle(author) if author else None,
        "prompt": (post.recipe or {}).get("prompt") if post else None,
        "deleted": bool(post and post.deleted_at),
        "local": urls.is_local(uri),
    }


async def ancestors(
    session: AsyncSession, post: Post, urls: LocalUrls, viewer: Account | None
) -> list[dict[str, Any]]:
    chain: list[dict[str, Any]] = []
    current, seen = post, {post.id}
    while current.quote_uri and len(chain) < MAX_DEPTH:
        parent = await session.get(Post, current.quote_id) if current.quote_id else None
        if parent is None:
            parent = await session.scalar(select(Post).where(Post.uri == current.quote_uri))
        if parent is None or parent.id in seen or not await can_see(session, viewer, parent):
            chain.append(_entry(None, None, current.quote_uri, urls))
            break
        seen.add(parent.id)
        author = await session.get(Account, parent.account_id)
        chain.append(_entry(parent, author, parent.uri, urls))
        current = parent
    return chain


def _remix_rule(viewer: Account | None) -> list[Any]:
    return [
        Post.deleted_at.is_(None),
        visible_to(viewer),
        shown_author(),  # not by a suspended account
        shown_domain(),  # nor by an account of a suspended domain
    ]


async def remixes(
    session: AsyncSession,
    post: Post,
    urls: LocalUrls,
    viewer: Account | None,
    limit: int = 50,
    depth: int = TREE_DEPTH,
) -> list[dict[str, Any]]:
    """The remixes of `post` the viewer may see, each with its own remixes nested."""
    top: list[dict[str, Any]] = []
    level: dict[int, list[dict[str, Any]]] = {post.id: top}  # parent id -> its children list
    holders: dict[int, dict[str, Any]] = {}  # post id -> its entry (to set "more")
    seen = {post.id}
    for _ in range(max(1, depth)):
        rows = await session.execute(
            select(Post, Account)
            .join(Account, Post.account_id == Account.id)
            .where(
                Post.quote_id.in_(list(level)),  # set for approved quotes only
                *_remix_rule(viewer),
            )
            .order_by(Post.published, Post.id)
        )
        following: dict[int, list[dict[str, Any]]] = {}
        for remix, author in rows:
            if remix.id in seen or remix.quote_id is None:
                continue
            seen.add(remix.id)
            siblings = level[remix.quote_id]
            if len(siblings) >= limit:
                parent_entry = holders.get(remix.quote_id)
                if parent_entry is not None:
                    parent_entry["more"] += 1
                continue
            entry = {**_entry(remix, author, remix.uri, urls), "remixes": [], "more": 0}
            siblings.append(entry)
            holders[remix.id] = entry
            following[remix.id] = entry["remixes"]
        if not following:
            return top
        level = following
    # the depth limit: count what the deepest listed remixes have below them
    counts = await session.execute(
        select(Post.quote_id, func.count(Post.id))
        .where(Post.quote_id.in_(list(level)), *_remix_rule(viewer))
        .group_by(Post.quote_id)
    )
    for parent_id, n in counts:
        if parent_id in holders:
            holders[parent_id]["more"] += int(n)
    return top


async def lineage_of(
    session: AsyncSession, post: Post, urls: LocalUrls, viewer: Account | None
) -> dict[str, Any]:
    """The lineage of `post` as `viewer` may see it (None: an anonymous visitor)."""
    return {
        "parents": await ancestors(session, post, urls, viewer),
        "remixes": await remixes(session, post, urls, viewer),
    }
