"""Fixtures that stand up Dreamloom instances for tests (in-process and on real loopback HTTP).

`make_settings` is the one place an instance's database is chosen: an SQLite file in its
directory, or (DREAMLOOM_TEST_DATABASE=postgresql) a migrated database of its own on the test
PostgreSQL, dropped when the fixture scope that made it ends (tests/pg_databases.py).
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from instance.app import create_app
from instance.runtime import Runtime, open_runtime
from instance.settings import Settings, settings_from_dict
from instance.setup import ensure_instance
from tests.pg_databases import PgDatabases

AP_ACCEPT = {"Accept": "application/activity+json"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


_pg: PgDatabases | None = None


def pg_databases() -> PgDatabases:
    """This session's databases on the test PostgreSQL (skips, or fails in CI, without one)."""
    from tests.conftest import TEST_POSTGRES_URL

    global _pg
    if not TEST_POSTGRES_URL:
        if os.environ.get("CI"):
            pytest.fail("DREAMLOOM_TEST_POSTGRES_URL is not set: scripts/test.sh starts PostgreSQL")
        pytest.skip("no PostgreSQL (run the tests with scripts/test.sh)")
    if _pg is None:
        _pg = PgDatabases(TEST_POSTGRES_URL)
    return _pg


def on_postgres() -> bool:
    """Whether this run of the suite puts its instances on PostgreSQL."""
    from tests.conftest import TEST_DATABASE

    return TEST_DATABASE == "postgresql"


def suite_database_url() -> str:
    """The database URL for a new instance in this run: "" (its SQLite file) or a fresh
    migrated PostgreSQL database."""
    return pg_databases().migrated() if on_postgres() else ""


def make_settings(directory: Path, port: int | None = None, **sections: dict[str, Any]) -> Settings:
    """Settings of an instance in `directory` on the suite's database; `database={"url": ""}`
    keeps it on its SQLite file in either run, `database={"url": U}` puts it on U."""
    data: dict[str, dict[str, Any]] = {
        "instance": {"domain": f"127.0.0.1:{port or free_port()}", "scheme": "http"},
        "federation": {"allow_private_addresses": True},
        "server": {"run_workers": False},
    }
    if on_postgres() and "url" not in sections.get("database", {}):
        data["database"] = {"url": suite_database_url()}
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    directory.mkdir(parents=True, exist_ok=True)
    return settings_from_dict(data, directory / "config.toml", env={})


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "instance")


@asynccontextmanager
async def instance_runtime(settings: Settings) -> AsyncIterator[Runtime]:
    """A runtime of an instance set up on `settings`, closed afterwards."""
    rt = await open_runtime(settings)
    await ensure_instance(rt)
    try:
        yield rt
    finally:
        await rt.aclose()


@pytest.fixture
async def runtime(settings: Settings) -> AsyncIterator[Runtime]:
    async with instance_runtime(settings) as rt:
        yield rt


@asynccontextmanager
async def asgi_client(rt: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(rt.settings, run_workers=False, runtime=rt)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=rt.settings.base_url) as c:
            yield c


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(runtime) as c:
        yield c


@asynccontextmanager
async def serve_live(rt: Runtime) -> AsyncIterator[str]:
    """Serve the instance over real HTTP on its configured 127.0.0.1 port."""
    app = create_app(rt.settings, run_workers=False, runtime=rt)
    host, _, port = rt.settings.host.rpartition(":")
    config = uvicorn.Config(app, host=host, port=int(port), log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started:
            break
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield rt.settings.base_url
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def live(runtime: Runtime) -> AsyncIterator[str]:
    async with serve_live(runtime) as base:
        yield base


@pytest.fixture
def new_account(runtime: Runtime) -> Callable[..., Any]:
    from instance.accounts import NewAccount, create_account

    async def make(username: str, **kwargs: Any) -> Any:
        async with runtime.session() as session:
            return await create_account(session, runtime.urls, NewAccount(username, **kwargs))

    return make


def _scope_databases() -> Iterator[None]:
    """Drop the PostgreSQL databases made while this scope was the innermost open one."""
    pg = _pg
    if pg is None:
        yield
        return
    made: list[str] = []
    pg.scopes.append(made)
    try:
        yield
    finally:
        pg.scopes.remove(made)
        pg.drop(made)


@pytest.fixture(scope="session", autouse=True)
def _session_databases() -> Iterator[None]:
    """With a test PostgreSQL: open the session's scope; at its end sweep every database
    this session made, the template included."""
    from tests.conftest import TEST_POSTGRES_URL

    if not TEST_POSTGRES_URL:
        yield
        return
    pg = pg_databases()
    pg.scopes.append([])
    try:
        yield
    finally:
        pg.sweep()


_module_databases = pytest.fixture(scope="module", autouse=True, name="_module_databases")(
    _scope_databases
)
_test_databases = pytest.fixture(autouse=True, name="_test_databases")(_scope_databases)


@pytest.fixture
def pg_database() -> str:
    """A fresh, empty database on the test PostgreSQL that scripts/test.sh starts; dropped
    after the test."""
    return pg_databases().empty()
