"""Group commit for inbox rows: the rows of concurrent requests in one transaction.

The first request starts a drain; requests arriving while a batch commits wait for the next
one, so the busier the inbox, the larger (and cheaper per row) the batches. Each request is
answered only after its row is committed.

- **Once per (sender, id).** Every accepted activity leaves a key, a hash of who sent it
  (the signer: the actor itself, or the server that forwarded its Create) and its id, in
  `inbox_seen` (`INSERT .. ON CONFLICT DO NOTHING`); only rows whose key is new get an inbox
  row, so a redelivered activity makes one row however many copies race. Keying on the
  signer means nobody can occupy an id for another actor, not even by "forwarding" an
  activity in that actor's name.
- **Fair per server.** Each row carries its sender's host (`sender_host`), the key the
  worker's claim ranks by (claim.py).
- **First to the write lock (SQLite).** SQLite has one writer at a time, and its own wait
  for the lock sleeps ever longer (to 100 ms a try) while the inbox worker's transactions
  take the lock back to back, so a waiting 202 could take a second. The group commit uses
  its own connections, which give up after LOCK_WAIT_MS, and retries every LOCK_RETRY_S
  for up to LOCK_PATIENCE_S; while it waits and writes it holds the write turn
  (instance/inbound/write_turns.py), so the inbox worker commits after its current item
  and lets the batch in before its next transaction.
- **One bad row fails alone.** When a batch cannot be written, its rows are written one by
  one, so only the request whose row the database refuses gets the error; the others are
  answered as usual.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cachetools import TTLCache
from sqlalchemy import insert
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from activitypub.urls import authority_of
from instance.errors import Refused
from instance.inbound.claim import sender_host
from instance.inbound.write_turns import WriteTurns
from instance.outbound.domains import note_inbound, remember_scheme
from instance.runtime import Runtime
from instance.storage.db import is_sqlite, make_engine, make_sessionmaker
from instance.storage.idempotent import insert_ignore
from instance.storage.models import InboxItem, InboxSeen

log = logging.getLogger("dreamloom.inbox")

MAX_BATCH = 512
INBOUND_NOTE_EVERY_S = 60.0


def dedupe_key(sender: str, activity_id: str) -> str:
    return hashlib.sha256(f"{sender}\n{activity_id}".encode()).hexdigest()


@dataclass(frozen=True)
class Pending:
    row: dict[str, Any]  # InboxItem columns
    key: str  # dedupe_key(sender, id)
    future: asyncio.Future[None]
    scheme: str = "cavage"  # how the request was signed


LOCK_WAIT_MS = 2  # SQLite's own wait for the write lock, per try
LOCK_RETRY_S = 0.001
LOCK_PATIENCE_S = 15.0  # then the batch fails as any write error does


class InboxWriter:
    def __init__(self, rt: Runtime, max_batch: int = MAX_BATCH) -> None:
        self.rt = rt
        self.max_batch = max_batch
        self._engine: AsyncEngine | None = None
        self._sessions = rt.sessions
        if is_sqlite(rt.settings.database_url):
            # one drain at a time needs one connection, kept open (opening one per batch, a
            # thread and pragmas each time, cost a third of the plain rate); aclose() closes it
            self._engine = make_engine(
                rt.settings.database_url, busy_timeout_ms=LOCK_WAIT_MS, pool_size=1, max_overflow=1
            )
            self._sessions = make_sessionmaker(self._engine)
        self._pending: list[Pending] = []
        self._task: asyncio.Task[None] | None = None
        self._noted: TTLCache[str, bool] = TTLCache(10_000, INBOUND_NOTE_EVERY_S)

    async def write(
        self, row: dict[str, Any], sender: str | None = None, scheme: str = "cavage"
    ) -> None:
        """Return once `row` (InboxItem columns) is committed, or was accepted from `sender`
        (the signer's actor; default: the row's actor) before."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        row.setdefault("sender_host", sender_host(row["actor_uri"]))  # the fair claim's key
        key = dedupe_key(sender or row["actor_uri"], row["activity_uri"])
        self._pending.append(Pending(row, key, future, scheme))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain())
        await future

    async def _drain(self) -> None:
        while self._pending:
            batch = self._pending[: self.max_batch]
            del self._pending[: self.max_batch]
            try:
                await self._insert(batch)
            except Exception as exc:
                if len(batch) == 1:
                    log.warning("inbox write failed: %s", exc)
                    _settle(batch[0].future, exc)
                    continue
                log.warning("inbox write of %d rows failed (%s): writing them one by one",
                            len(batch), exc)  # fmt: skip
                await self._one_by_one(batch)
            else:
                for one in batch:
                    _settle(one.future, None)
            self.rt.wake("inbox")
            await self._note_inbound({(one.row["actor_uri"], one.scheme) for one in batch})

    async def _one_by_one(self, batch: list[Pending]) -> None:
        for one in batch:
            try:
                await self._insert([one])
            except Exception as exc:
                log.warning("inbox write of %s refused: %s", one.row["activity_uri"][:200], exc)
                _settle(one.future, Refused(400, "the activity cannot be stored"))
            else:
                _settle(one.future, None)

    async def _insert(self, batch: list[Pending]) -> None:
        keyed = {one.key: one.row for one in batch}
        deadline = time.monotonic() + LOCK_PATIENCE_S
        async with self.rt.service(WriteTurns).writing():  # the inbox worker lets us first
            while True:
                try:
                    async with self._sessions() as session, session.begin():
                        new = await _new_keys(session, list(keyed), self.rt.now())
                        if new:
                            rows = [keyed[k] for k in keyed if k in new]
                            await session.execute(insert(InboxItem), rows)
                    return
                except OperationalError as exc:
                    if "locked" not in str(exc) or time.monotonic() > deadline:
                        raise
                await asyncio.sleep(LOCK_RETRY_S)

    async def aclose(self) -> None:
        """Finish the drain under way (its rows were accepted: they are written), then
        close the writer's connection; disposing while a batch holds it would leave that
        connection to the garbage collector, unclosed."""
        task, self._task = self._task, None
        if task is not None and not task.done():
            try:
                await task
            except Exception as exc:  # _drain settles every row's future itself
                log.warning("inbox writer stopped with an error: %s", exc)
        if self._engine is not None:
            await self._engine.dispose()

    async def _note_inbound(self, senders: set[tuple[str, str]]) -> None:
        """A signed request shows the sender's domain is up (resumes paused deliveries), and
        one signed RFC 9421 that it takes those (our deliveries to it are signed so first);
        noted once a minute per host at most, after the 202s went out."""
        schemes: dict[str, str] = {}
        for actor, scheme in senders:
            host = authority_of(actor)  # with a non-default port: the key of domain_health
            if host not in self._noted and schemes.get(host) != "rfc9421":
                schemes[host] = scheme
        if not schemes:
            return
        try:
            async with self.rt.session() as session:
                for host, scheme in sorted(schemes.items()):
                    self._noted[host] = True
                    await note_inbound(session, host)
                    if scheme == "rfc9421":
                        await remember_scheme(session, host, scheme)
        except Exception as exc:
            log.warning("could not note inbound traffic from %s: %s", sorted(schemes), exc)


async def _new_keys(session: AsyncSession, keys: list[str], now: datetime) -> set[str]:
    """Record `keys` as seen; the ones that were not seen before."""
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    stmt = insert_ignore(dialect, InboxSeen).returning(InboxSeen.dedupe_key)
    return set(await session.scalars(stmt, [{"dedupe_key": k, "seen_at": now} for k in keys]))


def _settle(future: asyncio.Future[None], error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)
