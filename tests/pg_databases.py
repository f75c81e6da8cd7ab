"""Throwaway PostgreSQL databases for the test suite, on the server scripts/test.sh starts.

When the suite runs on PostgreSQL (DREAMLOOM_TEST_DATABASE=postgresql) every instance a test
builds gets its own database. Running the migration for each would cost more than most tests,
so the schema is migrated once per pytest session into a template database, and each instance
gets `CREATE DATABASE ... TEMPLATE` of it (a file copy; the server runs with fsync off).

A database lives as long as the fixture scope that made it: `scopes` holds one list per open
scope (session, module, test), `track()` puts a new name on the innermost, and the autouse
fixtures in tests/instance_fixtures.py drop what their scope made when it ends. Every name
starts with this session's prefix, so the session's end sweeps whatever was left.

Admin statements run on a thread of their own with its own event loop: `make_settings` is
synchronous and is called both from plain fixtures and inside running async tests.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import asyncpg
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from instance.storage.db import make_engine
from instance.storage.migrate import upgrade

T = TypeVar("T")
_admin_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pg-admin")


def _on_admin_thread(fn: Callable[[], Awaitable[T]]) -> T:
    async def go() -> T:
        return await fn()

    return _admin_thread.submit(asyncio.run, go()).result()


class PgDatabases:
    """Creates and drops this session's databases on one PostgreSQL server."""

    def __init__(self, server_url: str) -> None:
        self.server_url = server_url  # SQLAlchemy form, any database on the server
        self.prefix = f"dlt_{secrets.token_hex(4)}"
        self.template = f"{self.prefix}_template"
        self._template_ready = False
        self.scopes: list[list[str]] = []

    def url(self, name: str) -> str:
        """The SQLAlchemy URL of database `name` on the server."""
        return make_url(self.server_url).set(database=name).render_as_string(hide_password=False)

    def _dsn(self) -> str:
        url = make_url(self.server_url).set(drivername="postgresql")
        return url.render_as_string(hide_password=False)

    async def _execute(self, *statements: str) -> None:
        conn = await asyncpg.connect(self._dsn())
        try:
            for statement in statements:
                await conn.execute(statement)
        finally:
            await conn.close()

    def track(self, name: str) -> None:
        if self.scopes:
            self.scopes[-1].append(name)

    def empty(self) -> str:
        """A new, empty database (nothing migrated); its URL."""
        name = f"{self.prefix}_{secrets.token_hex(6)}"
        _on_admin_thread(lambda: self._execute(f'CREATE DATABASE "{name}"'))
        self.track(name)
        return self.url(name)

    def migrated(self) -> str:
        """A new database holding the schema at head (a copy of the template); its URL."""
        if not self._template_ready:
            _on_admin_thread(self._make_template)
            self._template_ready = True
        name = f"{self.prefix}_{secrets.token_hex(6)}"
        _on_admin_thread(
            lambda: self._execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        )
        self.track(name)
        return self.url(name)

    async def _make_template(self) -> None:
        await self._execute(f'CREATE DATABASE "{self.template}"')
        engine = make_engine(self.url(self.template))
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()
        # no connection may be open on a template while it is copied: refuse them all
        await self._execute(
            f'ALTER DATABASE "{self.template}" WITH IS_TEMPLATE true ALLOW_CONNECTIONS false'
        )

    def drop(self, names: list[str]) -> None:
        """Drop `names`, closing whatever connections a test left open on them."""
        if names:
            statements = [f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE)' for n in names]
            _on_admin_thread(lambda: self._execute(*statements))

    def sweep(self) -> None:
        """Drop every database of this session still on the server, the template last."""

        async def go() -> None:
            conn = await asyncpg.connect(self._dsn())
            try:
                rows = await conn.fetch(
                    "SELECT datname FROM pg_database WHERE datname LIKE $1 ORDER BY datname",
                    f"{self.prefix}\\_%",
                )
                names = [row["datname"] for row in rows]
                if self.template in names:  # a template cannot be dropped until it is not one
                    await conn.execute(f'ALTER DATABASE "{self.template}" WITH IS_TEMPLATE false')
                for name in names:
                    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await conn.close()

        _on_admin_thread(go)


def pg_query(url: str, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows of `sql` (with :name parameters) on the database at `url`, as dicts: for tests
    that inspect an instance served by another process."""

    async def go() -> list[dict[str, Any]]:
        engine = create_async_engine(url, poolclass=NullPool)
        try:
            async with engine.connect() as conn:
                result = await conn.execute(text(sql), params)
                return [dict(row) for row in result.mappings()]
        finally:
            await engine.dispose()

    return _on_admin_thread(go)
