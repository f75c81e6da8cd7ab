"""`INSERT .. ON CONFLICT DO NOTHING` for SQLite and PostgreSQL alike.

A redelivered activity must make one row however many copies race: the database's
unique constraints decide, and the losers are silently skipped instead of raising.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession


def insert_ignore(dialect: str, model: type[Any]) -> Insert:
    """An INSERT for `model` that skips rows violating any unique constraint."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(model).on_conflict_do_nothing()


def _dialect(session: AsyncSession) -> str:
    return session.bind.dialect.name if session.bind is not None else "sqlite"


async def insert_rows(
    session: AsyncSession, model: type[Any], rows: Sequence[dict[str, Any]]
) -> None:
    """Insert many rows in one statement, skipping duplicates."""
    if rows:
        await session.execute(insert_ignore(_dialect(session), model), list(rows))


async def insert_one(session: AsyncSession, model: type[Any], **values: Any) -> int | None:
    """Insert one row; its primary key, or None when an equal row already existed."""
    stmt = insert_ignore(_dialect(session), model).values(**values).returning(model.id)
    new_id: int | None = await session.scalar(stmt)
    return new_id
