"""The Runtime: what one running instance holds (settings, database, HTTP client, clock).

Built once by the app's lifespan or a CLI command and passed explicitly; nothing global.

- `now()` is the one clock: every row written and every deadline checked reads it, so a test
  replaces `clock` to move time.
- `wake(queue)` tells the workers of this process that a row is waiting in `queue`
  (instance/workers.py sets `waker`; without workers it does nothing).
- `service(Kind)` is the runtime's one `Kind(rt)`, made on first use: the per-process state
  a wing keeps (the inbound key cache, the inbox writer, the web login throttle), held here
  without this module importing the wings above it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from activitypub.fetch import SafeFetcher
from activitypub.netguard import make_client
from instance import __version__
from instance.settings import Settings
from instance.storage.db import SessionMaker, make_engine, make_sessionmaker
from instance.storage.migrate import upgrade
from instance.urls import LocalUrls

S = TypeVar("S")


def user_agent(settings: Settings) -> str:
    """What remote admins see in their logs: our software, our site and, when set, a contact."""
    contact = settings.federation.user_agent_contact.strip()
    return f"Dreamloom/{__version__} (+{settings.base_url}/{'; ' + contact if contact else ''})"


def wall_clock() -> datetime:
    return datetime.now(UTC)


def no_waker(queue: str) -> None:
    """No workers in this process: rows are found by whichever process polls for them."""


@dataclass
class Runtime:
    settings: Settings
    engine: AsyncEngine
    sessions: SessionMaker
    urls: LocalUrls
    http: httpx.AsyncClient
    fetcher: SafeFetcher
    clock: Callable[[], datetime] = wall_clock
    waker: Callable[[str], None] = no_waker
    signer: tuple[str, str] | None = None  # the instance actor's (key_id, private_pem)
    _services: dict[type, Any] = field(default_factory=dict, repr=False)

    @property
    def instance_signer(self) -> tuple[str, str]:
        """(key_id, private_pem) of the instance actor, which signs every GET we make
        (servers in authorized-fetch mode refuse unsigned ones)."""
        if self.signer is None:
            raise RuntimeError("the instance actor is not loaded: call setup.ensure_instance")
        return self.signer

    def wake(self, queue: str) -> None:
        """A row is waiting in `queue` ("inbox", "delivery", "generation")."""
        self.waker(queue)

    def service(self, kind: type[S]) -> S:
        """This runtime's one `kind(self)`, made on first use."""
        found: S | None = self._services.get(kind)
        if found is None:
            found = self._services[kind] = kind(self)  # type: ignore[call-arg]
        return found

    def forget_service(self, kind: type) -> None:
        """Drop the state `service(kind)` holds (a restart, as far as that state knows)."""
        self._services.pop(kind, None)

    async def fetch_json(self, url: str) -> dict[str, Any]:
        """A remote ActivityStreams document, signed GET through the one safe fetcher."""
        return await self.fetcher.fetch_json(url, signer=self.instance_signer)

    def use_http(self, client: httpx.AsyncClient) -> None:
        """Swap the HTTP client (tests plug a fake fediverse in at the transport)."""
        self.http = client
        self.fetcher = make_fetcher(self.settings, client)

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
    """The one SSRF-guarded client, shared by every fetch and delivery: one connection pool
    per process, never a client per request."""
    fed = settings.federation
    return make_client(
        fed.allow_private_addresses,
        timeout=httpx.Timeout(fed.fetch_timeout_s, connect=min(5.0, fed.fetch_timeout_s)),
        limits=httpx.Limits(
            max_connections=max(100, fed.delivery_concurrency * 4), max_keepalive_connections=64
        ),
        user_agent=user_agent(settings),
    )


def make_fetcher(settings: Settings, client: httpx.AsyncClient) -> SafeFetcher:
    fed = settings.federation
    return SafeFetcher(
        client,
        local_hosts=[settings.host],
        media_max_bytes=fed.media_max_bytes,
        deadline=max(fed.fetch_timeout_s * 3, 30.0),
    )


async def open_runtime(settings: Settings, *, migrate: bool = True) -> Runtime:
    """Connect to the database (upgrading the schema when behind) and build the HTTP client."""
    settings.data_path.mkdir(parents=True, exist_ok=True)
    settings.media_path.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.database_url)
    if migrate:
        await upgrade(engine)
    http = make_http_client(settings)
    return Runtime(
        settings=settings,
        engine=engine,
        sessions=make_sessionmaker(engine),
        urls=LocalUrls(settings.base_url),
        http=http,
        fetcher=make_fetcher(settings, http),
    )
