"""Explore: public posts, local and federated, ranked by likes and remixes decayed by age.

The rule (documented, with the reasons, in docs/explore.md):

    score = (likes + 2 * remixes + boosts + 1) / (age_hours + 2) ** 1.5

over the newest CANDIDATES posts of the last WINDOW. Only posts on the public timelines
are candidates: public visibility (instance/content/visibility.py), not deleted, not by a
suspended or deleted account (instance/moderation/suspension.py), not from a suspended or
silenced domain (instance/moderation/domains.py). A remix is a post whose `quote_id` is the
post (set for approved quotes only); deleted remixes do not count, nor remixes by hidden
authors. Candidates and their remix counts come from one query; the score is computed here,
the same way on every database.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from instance.content.timelines import Entry
from instance.content.visibility import SHAREABLE, publicly_listed
from instance.moderation import domains
from instance.moderation.suspension import shown_author
from instance.storage.models import Account, Post

WINDOW = timedelta(days=7)
CANDIDATES = 1000
SHOWN = 60
GRAVITY = 1.5
REMIX_WEIGHT = 2
CACHE_SECONDS = 30.0


@dataclass(frozen=True)
class Ranked:
    post_id: int
    score: float
    likes: int
    boosts: int
    remixes: int


def score(likes: int, boosts: int, remixes: int, age_hours: float) -> float:
    """The Explore score of one post (see the module docstring)."""
    weight = likes + REMIX_WEIGHT * remixes + boosts + 1
    return float(weight / (max(age_hours, 0.0) + 2) ** GRAVITY)


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)


async def rank(
    session: AsyncSession,
    *,
    now: datetime,
    candidates: int = CANDIDATES,
    limit: int = SHOWN,
) -> list[Ranked]:
    """The top `limit` posts by score among the newest `candidates` of the last WINDOW."""
    remix = aliased(Post)
    remix_author = aliased(Account)
    remixes = (
        select(func.count(remix.id))
        .where(
            remix.quote_id == Post.id,  # indexed
            remix.deleted_at.is_(None),
            remix.visibility.in_(SHAREABLE),
            ~select(remix_author.id)
            .where(
                remix_author.id == remix.account_id,
                (remix_author.suspended_at.is_not(None)) | (remix_author.deleted_at.is_not(None)),
            )
            .exists(),
        )
        .correlate(Post)
        .scalar_subquery()
    )
    rows = await session.execute(
        select(Post.id, Post.published, Post.likes_count, Post.boosts_count, remixes)
        .where(
            publicly_listed(),
            Post.deleted_at.is_(None),
            Post.published >= now - WINDOW,
            shown_author(),
            domains.shown_domain(public=True),
        )
        .order_by(Post.published.desc(), Post.id.desc())
        .limit(candidates)
    )
    ranked = []
    for post_id, published, likes, boosts, remix_count in rows:
        age = (now - _aware(published)).total_seconds() / 3600
        likes, boosts, remix_count = likes or 0, boosts or 0, remix_count or 0
        ranked.append(
            Ranked(post_id, score(likes, boosts, remix_count, age), likes, boosts, remix_count)
        )
    ranked.sort(key=lambda r: (-r.score, -r.post_id))
    return ranked[:limit]


_cache: dict[str, tuple[float, list[Ranked]]] = {}


async def ranked_cached(session: AsyncSession, *, now: datetime, key: str) -> list[Ranked]:
    """`rank` remembered for CACHE_SECONDS per `key` (one per database): the page is public
    and the same for everyone, so a burst of visitors costs one query."""
    hit = _cache.get(key)
    if hit is not None and time.monotonic() - hit[0] < CACHE_SECONDS:
        return hit[1]
    result = await rank(session, now=now)
    _cache[key] = (time.monotonic(), result)
    return result


def forget_cache() -> None:
    _cache.clear()


async def entries(session: AsyncSession, ranked: list[Ranked]) -> list[Entry]:
    """The ranked posts as timeline entries (for the card partial), in rank order. A post
    deleted or hidden since it was ranked (the cache) is dropped."""
    ids = [r.post_id for r in ranked]
    if not ids:
        return []
    rows = await session.execute(
        select(Post, Account)
        .join(Account, Post.account_id == Account.id)
        .where(
            Post.id.in_(ids),
            Post.deleted_at.is_(None),
            publicly_listed(),
            shown_author(),
            domains.shown_domain(public=True),
        )
    )
    found = {p.id: (p, a) for p, a in rows}
    return [Entry(_aware(found[i][0].published), *found[i], None) for i in ids if i in found]
