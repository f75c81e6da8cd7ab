"""A post's counters, always recounted from their rows (duplicates and undos stay exact)."""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from instance.storage.models import Boost, Like, Post


async def recount(session: AsyncSession, post_id: int) -> None:
    """likes, boosts and replies of one post."""
    count = select(func.count())
    await session.execute(
        update(Post).where(Post.id == post_id).values(
            likes_count=count.select_from(Like).where(Like.post_id == post_id).scalar_subquery(),
            boosts_count=count.select_from(Boost).where(Boost.post_id == post_id)
            .scalar_subquery(),
            replies_count=count.select_from(Post).where(
                Post.in_reply_to_id == post_id, Post.deleted_at.is_(None)
            ).scalar_subquery(),
        ).execution_options(synchronize_session=False)
    )  # fmt: skip
