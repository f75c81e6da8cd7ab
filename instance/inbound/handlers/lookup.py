"""Finding the local rows an activity refers to."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from instance.storage.models import Account, Post


async def local_account(session: AsyncSession, uri: str | None) -> Account | None:
    if not uri:
        return None
    return await session.scalar(
        select(Account).where(
            Account.uri == uri, Account.local.is_(True), Account.deleted_at.is_(None)
        )
    )


async def account(session: AsyncSession, uri: str | None) -> Account | None:
    if not uri:
        return None
    return await session.scalar(select(Account).where(Account.uri == uri))


async def post(session: AsyncSession, uri: str | None) -> Post | None:
    """A post that is not deleted, local or remote."""
    if not uri:
        return None
    return await session.scalar(select(Post).where(Post.uri == uri, Post.deleted_at.is_(None)))
