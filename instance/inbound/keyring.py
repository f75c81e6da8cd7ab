"""The signers' public keys, for `activitypub.signatures.verify_request`.

Lookups go memory -> database -> one fetch, so a known sender costs a dictionary lookup:

- memory: `PublicKeyInfo` by keyId (the parsed RSA object is memoised by activitypub.keys);
- database: local accounts (`accounts.key_id`) and `remote_keys`;
- fetch, only on a miss: the keyId without its fragment, a signed GET by the instance actor
  through the one safe fetcher. Both keyId forms work: Mastodon's `<actor>#main-key` (the
  actor document) and GoToSocial's `<actor>/main-key` stub (a key document whose `owner` is
  then fetched, or an actor stub the fetcher re-fetches by its own id). Either way the key
  counts only if the owner's actor document lists it as its own (a key document cannot
  claim an owner that does not claim it back); keyId and owner must share an origin
  (checked again by verify_request).

Concurrent misses for one key share one fetch. A forced refresh (verification failed: the key
may have rotated) happens at most once a minute per key, and a keyId that could not be
fetched is not tried again for a minute, so forged requests cannot make us fetch in a loop.
One KeyRing per runtime: `rt.service(KeyRing)`.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from sqlalchemy import select

from activitypub.keys import PublicKeyInfo
from activitypub.objects import Actor, id_of
from activitypub.signatures import KeyResolver
from activitypub.urls import same_origin
from instance.errors import ActorUnavailable
from instance.inbound.remote import upsert_actor
from instance.runtime import Runtime
from instance.storage.models import Account, RemoteKey

RETRY_AFTER_S = 60.0
MAX_CACHED = 50_000


class KeyRing:
    def __init__(self, rt: Runtime, clock: Any = time.monotonic) -> None:
        self.rt = rt
        self.clock = clock
        self._keys: dict[str, PublicKeyInfo] = {}
        self._quiet_until: dict[str, float] = {}  # no fetch of this keyId before then
        self._inflight: dict[str, asyncio.Future[PublicKeyInfo | None]] = {}

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
        if not may_fetch or self.rt.urls.is_local(key_id):
            return self._keys.get(key_id)
        if self.clock() < self._quiet_until.get(key_id, 0.0):
            return self._keys.get(key_id)
        return await self._fetch_once(key_id, refresh)

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
        if len(self._keys) >= MAX_CACHED:
            self._keys.pop(next(iter(self._keys)))
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

    async def _fetch_once(self, key_id: str, refresh: bool) -> PublicKeyInfo | None:
        pending = self._inflight.get(key_id)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[PublicKeyInfo | None] = asyncio.get_running_loop().create_future()
        self._inflight[key_id] = future
        try:
            key = await self._fetch(key_id)
            if refresh or key is None:
                self._quiet_until[key_id] = self.clock() + RETRY_AFTER_S
        except BaseException as exc:
            self._quiet_until[key_id] = self.clock() + RETRY_AFTER_S
            future.set_exception(exc)
            future.exception()  # retrieved: waiters re-raise it, nobody else must
            raise
        else:
            future.set_result(key)
            return key
        finally:
            del self._inflight[key_id]

    async def _fetch(self, key_id: str) -> PublicKeyInfo | None:
        document = await self.rt.fetch_json(key_id.partition("#")[0])
        if "publicKeyPem" in document:  # a bare key document: follow its owner
            owner = id_of(document.get("owner"))
            if owner is None or not same_origin(owner, key_id):
                return None
            document = await self.rt.fetch_json(owner)
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
