"""Fixtures that stand up Dreamloom instances for tests (in-process and on real loopback HTTP)."""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy.engine import make_url

from instance.app import create_app
from instance.runtime import Runtime, open_runtime
from instance.settings import Settings, settings_from_dict
from instance.setup import ensure_instance
from instance.storage.db import make_engine

AP_ACCEPT = {"Accept": "application/activity+json"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_settings(directory: Path, port: int | None = None, **sections: dict[str, Any]) -> Settings:
    data: dict[str, dict[str, Any]] = {
        "instance": {"domain": f"127.0.0.1:{port or free_port()}", "scheme": "http"},
        "federation": {"allow_private_addresses": True},
        "server": {"run_workers": False},
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    directory.mkdir(parents=True, exist_ok=True)
    return settings_from_dict(data, directory / "config.toml", env={})


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "instance")


@pytest.fixture
async def runtime(settings: Settings) -> AsyncIterator[Runtime]:
    rt = await open_runtime(settings)
    await ensure_instance(rt)
    try:
        yield rt
    finally:
        await rt.aclose()


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


@pytest.fixture
async def pg_database() -> AsyncIterator[str]:
    """A fresh database on the test PostgreSQL that scripts/test.sh starts; dropped after."""
    from tests.conftest import TEST_POSTGRES_URL

    if not TEST_POSTGRES_URL:
        if os.environ.get("CI"):
            pytest.fail("DREAMLOOM_TEST_POSTGRES_URL is not set: scripts/test.sh starts PostgreSQL")
        pytest.skip("no PostgreSQL (run the tests with scripts/test.sh)")
    name = f"dl_{secrets.token_hex(6)}"
    admin = make_engine(TEST_POSTGRES_URL, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(TEST_POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as conn:
            await conn.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.dispose()
