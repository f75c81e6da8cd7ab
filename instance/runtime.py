"""The Runtime: what one running instance holds (settings, database, HTTP client, workers).

Built once by the app's lifespan or a CLI command and passed explicitly; nothing global.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from . import __version__
from .settings import Settings
from .storage.db import SessionMaker, make_engine, make_sessionmaker
from .storage.migrate import upgrade
from .urls import LocalUrls


def user_agent(settings: Settings) -> str:
    return f"Dreamloom/{__version__} (+{settings.base_url}/)"


@dataclass
class Runtime:
    settings: Settings
    engine: AsyncEngine
    sessions: SessionMaker
    urls: LocalUrls
    http: httpx.AsyncClient
    extras: dict[str, Any] = field(default_factory=dict)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    def now(self) -> datetime:
        """The clock every worker and handler reads; tests replace `clock` to move time."""
        return self.clock()

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session in a transaction, committed on success."""
        async with self.sessions() as session, session.begin():
            yield session

    async def aclose(self) -> None:
        await self.http.aclose()
        await self.engine.dispose()


def make_http_client(settings: Settings) -> httpx.AsyncClient:
    from activitypub.fetch import make_client

    return make_client(
        allow_private_addresses=settings.federation.allow_private_addresses,
        timeout=settings.federation.fetch_timeout_s,
        user_agent=user_agent(settings),
    )


async def open_runtime(settings: Settings, *, migrate: bool = True) -> Runtime:
    """Connect to the database (upgrading the schema when behind) and build the HTTP client."""
    settings.data_path.mkdir(parents=True, exist_ok=True)
    settings.media_path.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.database_url)
    if migrate:
        await upgrade(engine)
    return Runtime(
        settings=settings,
        engine=engine,
        sessions=make_sessionmaker(engine),
        urls=LocalUrls(settings.base_url),
        http=make_http_client(settings),
    )
