"""Keeping the work tables small: handled activities are deleted after `[federation]
inbox_keep_days`, and the record that an activity came (`inbox_seen`, a hash and a time)
after SEEN_KEEP. Mastodon gives up redelivering after about three days and a signature is
only valid for an hour, so a month of records recognises every redelivery and every replay.
Finished deliveries (done, failed, gone, cancelled) go after `delivery_keep_days`: a post to
100,000 followers leaves a row per inbox, which nothing reads once /metrics' hour is over,
except `dreamloom deliveries retry` for the failed ones. Rows still queued or running are
never deleted.

`RetentionWorker` (name "retention") prunes once an hour, in batches, so a large backlog
never holds the database's write lock for long; it also clears the remote image cache of
files unused for a week (media_cache.py), and drops the private key of a deleted account once
its last Delete delivery has ended (content/account_delete.py). On its first step with an S3
store that has `public_base_url` it starts, in the background, the one-off walk that makes
the renditions older images lack (content/rendition_backfill.py; a marker row makes it
nothing at later starts); `aclose` stops it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timedelta

from sqlalchemy import delete, select

from instance.content import rendition_backfill
from instance.content.account_delete import forget_spent_keys
from instance.inbound.media_cache import RemoteMedia
from instance.runtime import Runtime
from instance.storage.models import DELIVERY_ENDED, Delivery, InboxItem, InboxSeen

SEEN_KEEP = timedelta(days=30)
EVERY = timedelta(hours=1)
BATCH = 5000
log = logging.getLogger("dreamloom.retention")


async def prune(rt: Runtime) -> int:
    """Delete what is past keeping; returns how many rows went."""
    now = rt.now()
    fed = rt.settings.federation
    handled = now - timedelta(days=fed.inbox_keep_days)
    delivered = now - timedelta(days=fed.delivery_keep_days)
    gone = 0
    for key, where in (
        (InboxItem.id, (InboxItem.status.in_(("done", "failed")), InboxItem.finished_at < handled)),
        (InboxSeen.dedupe_key, (InboxSeen.seen_at < now - SEEN_KEEP,)),
        (Delivery.id, (Delivery.status.in_(DELIVERY_ENDED), Delivery.finished_at < delivered)),
    ):
        model = key.class_
        while True:
            async with rt.session() as session:
                batch = select(key).where(*where).limit(BATCH).scalar_subquery()
                result = await session.execute(delete(model).where(key.in_(batch)))
            count = int(result.rowcount or 0)  # type: ignore[attr-defined]
            gone += count
            if count < BATCH:
                break
    return gone


class RetentionWorker:
    name = "retention"

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.last: datetime | None = None
        self.backfill: asyncio.Task[None] | None = None

    async def run_once(self) -> int:
        if self.backfill is None and rendition_backfill.wanted(self.rt.settings):
            self.backfill = asyncio.create_task(self._backfill(), name="renditions-backfill")
        now = self.rt.now()
        if self.last is not None and now - self.last < EVERY:
            return 0
        self.last = now
        await prune(self.rt)
        await self.rt.service(RemoteMedia).prune()
        await forget_spent_keys(self.rt)
        return 0  # pruning is not work that asks for another step at once

    async def _backfill(self) -> None:
        try:
            await rendition_backfill.at_start(self.rt)
        except Exception:  # the database gone, say: the next start tries again
            log.exception("the renditions backfill stopped")

    async def aclose(self) -> None:
        if self.backfill is not None and not self.backfill.done():
            self.backfill.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.backfill
