"""SQLite statements take one trip to aiosqlite's thread (instance/storage/sqlite_driver.py)
and behave as through SQLAlchemy's own adapter: rows, RETURNING, rowcount, lastrowid,
executemany, errors translated, streaming results."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError

from instance.storage import sqlite_driver
from instance.storage.db import make_engine

pytestmark = pytest.mark.sqlite_only("the SQLite driver")


async def test_statements_through_one_trip(tmp_path) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path}/t.db")
    try:
        assert engine.url.drivername == sqlite_driver.DRIVERNAME
        async with engine.begin() as c:
            await c.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT UNIQUE)"))
            inserted = await c.execute(text("INSERT INTO t (v) VALUES ('a')"))
            assert (inserted.rowcount, inserted.lastrowid) == (1, 1)
            many = await c.execute(text("INSERT INTO t (v) VALUES (:v)"), [{"v": "b"}, {"v": "c"}])
            assert many.rowcount == 2
            returned = await c.execute(text("INSERT INTO t (v) VALUES ('d') RETURNING id, v"))
            assert returned.all() == [(4, "d")]
            rows = await c.execute(text("SELECT v FROM t ORDER BY id"))
            assert [r.v for r in rows] == ["a", "b", "c", "d"]
            assert (await c.execute(text("UPDATE t SET v = v || '!' WHERE id < 3"))).rowcount == 2
            streamed = await c.stream(text("SELECT id FROM t ORDER BY id"))
            assert [row.id async for row in streamed] == [1, 2, 3, 4]
        async with engine.connect() as c:
            with pytest.raises(IntegrityError):
                await c.execute(text("INSERT INTO t (v) VALUES ('c')"))
            await c.rollback()
            with pytest.raises(OperationalError, match="no such table"):
                await c.execute(text("SELECT * FROM missing"))
    finally:
        await engine.dispose()
