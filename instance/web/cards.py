"""Post cards for the local users' pages: a post, its author, its images, and the viewer's
like/boost state, shaped for templates/post_card.html (three queries for a whole page)."""

from __future__ import annotations

import html
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from activitypub.urls import safe_link
from instance.content import renditions
from instance.content.timelines import Entry
from instance.content.visibility import can_boost
from instance.runtime import Runtime
from instance.storage.models import Account, Boost, Like, MediaAttachment, Post


async def cards(
    session: AsyncSession, rt: Runtime, entries: list[Entry], viewer: Account | None
) -> list[dict[str, Any]]:
    ids = [e.post.id for e in entries]
    media: dict[int, list[MediaAttachment]] = {}
    for m in await session.scalars(
        select(MediaAttachment).where(MediaAttachment.post_id.in_(ids))
        .order_by(MediaAttachment.position)
    ):  # fmt: skip
        media.setdefault(m.post_id or 0, []).append(m)
    liked: set[int] = set()
    boosted: set[int] = set()
    if viewer is not None and ids:
        liked = set(
            await session.scalars(
                select(Like.post_id).where(Like.account_id == viewer.id, Like.post_id.in_(ids))
            )
        )
        boosted = set(
            await session.scalars(
                select(Boost.post_id).where(Boost.account_id == viewer.id, Boost.post_id.in_(ids))
            )
        )
    return [
        card(rt, e.post, e.author, media.get(e.post.id, []),
             boosted_by=e.boosted_by, liked=e.post.id in liked, boosted=e.post.id in boosted)
        for e in entries
    ]  # fmt: skip


def made_by_a_model(post: Post, author: Account) -> bool:
    """Whether the card says "AI-generated": a post with a recipe (ours, or another
    Dreamloom's), or by an automated account (a Service: every AI account)."""
    return bool(post.recipe or (post.raw or {}).get("recipe")) or author.kind == "Service"


def card(
    rt: Runtime,
    post: Post,
    author: Account,
    media: list[MediaAttachment],
    *,
    boosted_by: Account | None = None,
    liked: bool = False,
    boosted: bool = False,
) -> dict[str, Any]:
    return {
        "public_id": post.public_id,
        "url": safe_link(post.url, safe_link(post.uri)),
        "content": post.content,
        # text, escaped by the template (a remote one is stored HTML-escaped: plain_summary)
        "summary": post.summary if post.local else html.unescape(post.summary or "") or None,
        "sensitive": post.sensitive or bool(post.summary),
        "published": post.published,
        "likes_count": post.likes_count,
        "boosts_count": post.boosts_count,
        "author": rt.urls.handle(author),
        "author_name": author.display_name or author.username,
        "author_url": safe_link(author.url, safe_link(author.uri)),
        "boosted_by": rt.urls.handle(boosted_by) if boosted_by else None,
        "liked": liked,
        "boosted": boosted,
        "boostable": can_boost(post),
        "visibility": post.visibility,
        "ai": made_by_a_model(post, author),
        "media": [
            {
                "src": (rt.urls.media(m.file_name) if m.file_name
                        else rt.urls.remote_media(m.public_id)),  # never hotlinked
                "description": m.description,
                "srcset": srcset(rt, m),
                "width": m.width,
                "height": m.height,
            }
            for m in media
        ],
    }


def srcset(rt: Runtime, m: MediaAttachment) -> str:
    """`srcset` of a local image: its renditions (instance/content/renditions.py, made on
    first request for older images) and the original at its real width; empty for a remote
    or a size-less image (the browser takes `src`)."""
    if not m.file_name or not m.width:
        return ""
    sources = [f"{rt.urls.media(renditions.rendition_name(m.file_name, w))} {w}w"
               for w in renditions.widths_for(m.width)]  # fmt: skip
    return ", ".join([*sources, f"{rt.urls.media(m.file_name)} {m.width}w"])
