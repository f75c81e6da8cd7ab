"""The async engine and session factory; SQLite gets WAL, foreign keys and a busy timeout."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from instance.storage import sqlite_driver

SessionMaker = async_sessionmaker[AsyncSession]


BUSY_TIMEOUT_MS = 10_000


def _sqlite_pragmas(busy_timeout_ms: int) -> Any:
    def apply(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cur.close()

    return apply


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def make_engine(url: str, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS, **kwargs: Any) -> AsyncEngine:
    """`busy_timeout_ms` (SQLite): how long a writer waits for the write lock inside SQLite,
    whose waits grow to 100 ms sleeps; a writer that must not wait that way (the inbox's
    group commit) asks for a short one and retries itself (instance/inbound/writer.py)."""
    if is_sqlite(url):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        parsed = make_url(url)
        if parsed.drivername == "sqlite+aiosqlite":  # one trip to its thread per statement
            parsed = parsed.set(drivername=sqlite_driver.DRIVERNAME)
        engine = create_async_engine(
            parsed, connect_args={"timeout": busy_timeout_ms / 1000}, **kwargs
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas(busy_timeout_ms))
        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 10)
    kwargs.setdefault("pool_pre_ping", True)
    return create_async_engine(url, **kwargs)


def make_sessionmaker(engine: AsyncEngine) -> SessionMaker:
    return async_sessionmaker(engine, expire_on_commit=False)
