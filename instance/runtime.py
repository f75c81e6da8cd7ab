"""The Runtime: what one running instance holds (settings, database, HTTP client, clock).

Built once by the app's lifespan or a CLI command and passed explicitly; nothing global.

- `now()` is the one clock: every row written and every deadline checked reads it, so a test
  replaces `clock` to move time.
- Four SSRF-guarded HTTP pools, so one kind of traffic cannot starve another: `http`
  (deliveries and WebFinger), `fetcher` (remote objects and actors), `key_fetcher`
  (signers' keys while a request waits: short deadline, small pool) and `media_fetcher`
  (remote images for our pages' cache, which a visitor's request waits for: the same).
- `media` is the store of our own images (a directory, or an S3 bucket).
- `wake(queue)` tells the workers of this process that a row is waiting in `queue`
  (instance/workers.py sets `waker`; without workers it does nothing).
- `service(Kind)` is the runtime's one `Kind(rt)`, made on first use: the per-process state
  a wing keeps (the inbound key cache, the inbox writer, the web login throttle), held here
  without this module importing the wings above it.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from activitypub.fetch import SafeFetcher
from activitypub.netguard import make_client
from instance import __version__
from instance.settings import Settings
from instance.storage.db import SessionMaker, make_engine, make_sessionmaker
from instance.storage.media_store import MediaStore, make_media_store, public_base
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
    key_fetcher: SafeFetcher
    media_fetcher: SafeFetcher
    media: MediaStore  # our own images: local dir or S3 (instance/storage/media_store.py)
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
        """A remote ActivityStreams document, a signed GET through the safe fetcher."""
        return await self.fetcher.fetch_json(url, signer=self.instance_signer)

    async def fetch_key_json(self, url: str) -> dict[str, Any]:
        """A signer's key or actor document, fetched while its request waits."""
        return await self.key_fetcher.fetch_json(url, signer=self.instance_signer)

    async def use_http(self, client: httpx.AsyncClient) -> None:
        """Send all traffic through `client`, closing the clients it replaces (tests plug a
        fake fediverse in at the transport)."""
        for old in self._clients():
            if old is not client:
                await old.aclose()
        self.http = client
        self.fetcher = make_fetcher(self.settings, client)
        self.key_fetcher = make_fetcher(self.settings, client, deadline=KEY_DEADLINE_S)
        self.media_fetcher = make_fetcher(self.settings, client, deadline=MEDIA_DEADLINE_S)

    def now(self) -> datetime:
        """The clock every worker and handler reads; tests replace `clock` to move time."""
        return self.clock()

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session in a transaction, committed on success."""
        async with self.sessions() as session, session.begin():
            yield session

    def _clients(self) -> list[httpx.AsyncClient]:
        pools = (self.http, self.fetcher.client, self.key_fetcher.client,
                 self.media_fetcher.client)  # fmt: skip
        found = {id(c): c for c in pools}
        return list(found.values())

    async def aclose(self) -> None:
        for service in list(self._services.values()):
            close = getattr(service, "aclose", None)
            if close is not None:  # a service holding connections of its own
                await close()
        for client in self._clients():
            await client.aclose()
        await self.engine.dispose()


KEY_DEADLINE_S = 5.0  # a key fetch holds a request: it gets much less time than other fetches
KEY_CONNECTIONS = 32
MEDIA_DEADLINE_S = 15.0  # a remote image for a page: a visitor waits for it
MEDIA_CONNECTIONS = 16


def private_database_files(settings: Settings) -> None:
    """An SQLite database holds every account's private key: readable by its owner only
    (0600), with its WAL and shared-memory files, however the umask made them."""
    url = make_url(settings.database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return
    database = Path(url.database)
    for path in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
        with contextlib.suppress(FileNotFoundError):
            path.chmod(0o600)


def make_http_client(
    settings: Settings, *, connections: int | None = None, timeout_s: float | None = None
) -> httpx.AsyncClient:
    """An SSRF-guarded client with its own connection pool; a runtime makes one per kind of
    traffic, never one per request."""
    fed = settings.federation
    seconds = timeout_s or fed.fetch_timeout_s
    size = connections or max(100, fed.delivery_concurrency * 4)
    return make_client(
        fed.allow_private_addresses,
        timeout=httpx.Timeout(seconds, connect=min(5.0, seconds)),
        limits=httpx.Limits(max_connections=size, max_keepalive_connections=min(64, size)),
        user_agent=user_agent(settings),
    )


def delivery_connections(settings: Settings) -> int:
    """The pool of `Runtime.http`: every delivery POST in flight, the slow ones the delivery
    worker parks included (instance/outbound/delivery.py), and the webfinger lookups."""
    return max(256, settings.federation.delivery_concurrency * 8)


def make_fetcher(
    settings: Settings, client: httpx.AsyncClient, *, deadline: float | None = None
) -> SafeFetcher:
    fed = settings.federation
    return SafeFetcher(
        client,
        local_hosts=[settings.host],
        media_max_bytes=fed.media_max_bytes,
        deadline=deadline or max(fed.fetch_timeout_s * 3, 30.0),
    )


async def open_runtime(settings: Settings, *, migrate: bool = True) -> Runtime:
    """Connect to the database (upgrading the schema when behind) and build the HTTP client."""
    settings.data_path.mkdir(parents=True, exist_ok=True)
    settings.media_path.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.database_url)
    if migrate:
        await upgrade(engine)
    private_database_files(settings)
    keys = make_http_client(settings, connections=KEY_CONNECTIONS, timeout_s=KEY_DEADLINE_S)
    media = make_http_client(settings, connections=MEDIA_CONNECTIONS, timeout_s=MEDIA_DEADLINE_S)
    return Runtime(
        settings=settings,
        engine=engine,
        sessions=make_sessionmaker(engine),
        urls=LocalUrls(settings.base_url, media_base=public_base(settings)),
        http=make_http_client(settings, connections=delivery_connections(settings)),
        fetcher=make_fetcher(settings, make_http_client(settings)),
        key_fetcher=make_fetcher(settings, keys, deadline=KEY_DEADLINE_S),
        media_fetcher=make_fetcher(settings, media, deadline=MEDIA_DEADLINE_S),
        media=make_media_store(settings),
    )
