"""Remix lineage: the chain of parents a post was remixed from, and the remixes of a post.

Parents are followed through `quote_id` (known posts, local or remote) up to MAX_DEPTH; a
parent known only by URI ends the chain with that URI. Only what `viewer` may see is shown
(instance/content/visibility.py): a remix the viewer may not see is not listed, and a
parent the viewer may not see ends the chain as a bare URI, without its prompt or author.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from activitypub.urls import safe_link
from instance.content.visibility import can_see, visible_to
from instance.moderation.domains import shown_domain
from instance.moderation.suspension import shown_author
from instance.storage.models import Account, Post
from instance.urls import LocalUrls

MAX_DEPTH = 16


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


async def remixes(
    session: AsyncSession, post: Post, urls: LocalUrls, viewer: Account | None, limit: int = 50
) -> list[dict[str, Any]]:
    rows = await session.execute(
        select(Post, Account)
        .join(Account, Post.account_id == Account.id)
        .where(
            Post.quote_id == post.id,  # set for approved quotes only (inbound/handlers/notes.py)
            Post.deleted_at.is_(None),
            visible_to(viewer),
            shown_author(),  # not by a suspended account
            shown_domain(),  # nor by an account of a suspended domain
        )
        .order_by(Post.published)
        .limit(limit)
    )
    return [_entry(p, a, p.uri, urls) for p, a in rows]


async def lineage_of(
    session: AsyncSession, post: Post, urls: LocalUrls, viewer: Account | None
) -> dict[str, Any]:
    """The lineage of `post` as `viewer` may see it (None: an anonymous visitor)."""
    return {
        "parents": await ancestors(session, post, urls, viewer),
        "remixes": await remixes(session, post, urls, viewer),
    }
