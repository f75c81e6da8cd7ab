"""The signers' public keys, for `activitypub.signatures.verify_request`.

Lookups go memory -> database -> one fetch, so a known sender costs a dictionary lookup:

- memory: `PublicKeyInfo` by keyId (the parsed RSA object is memoised by activitypub.keys);
- database: local accounts (`accounts.key_id`) and `remote_keys`;
- fetch, only on a miss: the keyId without its fragment, a signed GET by the instance actor
  through the runtime's key fetcher (its own small pool, a 5 s deadline: a request waits
  for it). Both keyId forms work: Mastodon's `<actor>#main-key` (the actor document) and
  GoToSocial's `<actor>/main-key` stub (a key document whose `owner` is then fetched, or an
  actor stub the fetcher re-fetches by its own id). Either way the key counts only if the
  owner's actor document lists it as its own (a key document cannot claim an owner that
  does not claim it back); keyId and owner must share an origin (checked again by
  verify_request).

Fetching is bounded, because an unsigned request can make us fetch: concurrent misses for
one key share one fetch; at most FETCHES_PER_HOST key fetches run at once per host and
FETCHES_IN_ALL in all (a request that cannot get a slot within SLOT_WAIT_S is answered 401,
and an honest sender retries); a host whose fetch failed is not asked again for
HOST_QUIET_S; a forced refresh (verification failed: the key may have rotated) happens at
most once a minute per key, and a keyId that could not be fetched is not tried again for a
minute. Every memory here is bounded (LRU and TTL caches). One KeyRing per runtime:
`rt.service(KeyRing)`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable

from cachetools import LRUCache, TTLCache
from sqlalchemy import select

from activitypub.errors import (
    BlockedAddressError,
    FetchError,
    FetchTimeoutError,
    RemoteHTTPError,
)
from activitypub.keys import PublicKeyInfo
from activitypub.objects import Actor, id_of
from activitypub.signatures import KeyResolver
from activitypub.urls import host_of, same_origin
from instance.errors import ActorUnavailable
from instance.inbound.remote import upsert_actor
from instance.runtime import Runtime
from instance.storage.models import Account, RemoteKey

RETRY_AFTER_S = 60.0
HOST_QUIET_S = 60.0
MAX_CACHED = 50_000
MAX_QUIET = 20_000
FETCHES_PER_HOST = 2
FETCHES_IN_ALL = 16
SLOT_WAIT_S = 1.0


class NoFetchSlot(Exception):
    """Every key fetch slot (for this host, or in all) stayed busy."""


def host_failed(exc: BaseException) -> bool:
    """The host itself is in trouble (unreachable, too slow, 5xx, 429, a blocked address):
    no key of it is fetched for a while. A 404 or a bad document is one key's problem."""
    if isinstance(exc, TimeoutError | FetchTimeoutError | BlockedAddressError):
        return True
    if isinstance(exc, RemoteHTTPError):
        return exc.status >= 500 or exc.status == 429
    return type(exc) is FetchError  # a network error


class KeyRing:
    def __init__(self, rt: Runtime, clock: Callable[[], float] = time.monotonic) -> None:
        self.rt = rt
        self.clock = clock
        self._keys: LRUCache[str, PublicKeyInfo] = LRUCache(MAX_CACHED)
        # no fetch of this keyId (or from this host) until its entry expires
        self._quiet_keys: TTLCache[str, bool] = TTLCache(MAX_QUIET, RETRY_AFTER_S, timer=clock)
        self._quiet_hosts: TTLCache[str, bool] = TTLCache(MAX_QUIET, HOST_QUIET_S, timer=clock)
        self._inflight: dict[str, asyncio.Future[PublicKeyInfo | None]] = {}
        self._per_host: dict[str, int] = {}
        self._all = asyncio.Semaphore(FETCHES_IN_ALL)

    def resolver(self, *, may_fetch: bool = True) -> KeyResolver:
        async def resolve(key_id: str, refresh: bool) -> PublicKeyInfo | None:
            return await self.resolve(key_id, refresh=refresh, may_fetch=may_fetch)

        return resolve

    async def resolve(
        self, key_id: str, *, refresh: bool = False, may_fetch: bool = True
    ) -> PublicKeyInfo | None:
        if not refresh:
            known = await self.known(key_id)
            if known is not None:
                return known
        if not may_fetch or self.rt.urls.is_local(key_id) or key_id in self._quiet_keys:
            return self._keys.get(key_id)
        try:
            host = host_of(key_id)
        except ValueError:
            return None
        if host in self._quiet_hosts:
            return self._keys.get(key_id)
        try:
            return await self._fetch_once(key_id, host, refresh)
        except NoFetchSlot:
            return self._keys.get(key_id)

    async def known(self, key_id: str) -> PublicKeyInfo | None:
        """The key from memory or the database; never fetches."""
        cached = self._keys.get(key_id)
        if cached is not None:
            return cached
        stored = await self._stored(key_id)
        if stored is not None:
            self._remember(stored)
        return stored

    def forget_owner(self, owner: str) -> None:
        """Drop every cached key of an actor (deleted, or its key changed at origin)."""
        for key_id in [k for k, v in self._keys.items() if v.owner == owner]:
            del self._keys[key_id]

    def _remember(self, key: PublicKeyInfo) -> None:
        self._keys[key.key_id] = key

    async def _stored(self, key_id: str) -> PublicKeyInfo | None:
        """A stored key counts only when its owner lives on the key's server; any other row
        (written before that rule, or by a bug) is treated as absent, so the key is fetched
        again from its own server."""
        async with self.rt.sessions() as session:
            row = await session.get(RemoteKey, key_id)
            if row is not None and same_origin(row.owner_uri, key_id):
                return PublicKeyInfo(row.key_id, row.owner_uri, row.public_key_pem)
            account = await session.scalar(
                select(Account).where(Account.key_id == key_id, Account.deleted_at.is_(None))
            )
        if account is None or not account.public_key_pem or not same_origin(account.uri, key_id):
            return None
        return PublicKeyInfo(key_id, account.uri, account.public_key_pem)

    async def _fetch_once(self, key_id: str, host: str, refresh: bool) -> PublicKeyInfo | None:
        pending = self._inflight.get(key_id)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[PublicKeyInfo | None] = asyncio.get_running_loop().create_future()
        self._inflight[key_id] = future
        try:
            async with self._slot(host):
                key = await self._fetch(key_id)
            if refresh or key is None:
                self._quiet_keys[key_id] = True
        except BaseException as exc:
            if not isinstance(exc, NoFetchSlot):
                self._quiet_keys[key_id] = True
            if host_failed(exc):
                self._quiet_hosts[host] = True
            future.set_exception(exc)
            future.exception()  # retrieved: waiters re-raise it, nobody else must
            raise
        else:
            future.set_result(key)
            return key
        finally:
            del self._inflight[key_id]

    @contextlib.asynccontextmanager
    async def _slot(self, host: str) -> AsyncIterator[None]:
        """One of FETCHES_PER_HOST for `host` and of FETCHES_IN_ALL, within SLOT_WAIT_S."""
        deadline = self.clock() + SLOT_WAIT_S
        while self._per_host.get(host, 0) >= FETCHES_PER_HOST or host in self._quiet_hosts:
            if self.clock() >= deadline or host in self._quiet_hosts:
                raise NoFetchSlot(host)
            await asyncio.sleep(0.05)
        self._per_host[host] = self._per_host.get(host, 0) + 1
        try:
            try:
                await asyncio.wait_for(self._all.acquire(), max(0.0, deadline - self.clock()))
            except TimeoutError:
                raise NoFetchSlot(host) from None
            try:
                yield
            finally:
                self._all.release()
        finally:
            left = self._per_host.pop(host, 1) - 1
            if left:
                self._per_host[host] = left

    async def _fetch(self, key_id: str) -> PublicKeyInfo | None:
        document = await self.rt.fetch_key_json(key_id.partition("#")[0])
        if "publicKeyPem" in document:  # a bare key document: follow its owner
            owner = id_of(document.get("owner"))
            if owner is None or not same_origin(owner, key_id):
                return None
            document = await self.rt.fetch_key_json(owner)
        key = Actor(document).public_key(key_id)
        if key is None:
            return None  # the actor does not list this key as its own
        try:
            async with self.rt.session() as session:
                await upsert_actor(session, document, self.rt.now(), trusted_key=True)
        except ActorUnavailable:
            return None
        self.forget_owner(key.owner)
        self._remember(key)
        return key
