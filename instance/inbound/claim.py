"""Which inbox items one worker step takes: fair per remote server, in order per actor.

A claim ordered only by arrival lets one server's flood (5,000 activities from one host)
fill every batch, and a second server's single activity waits behind all of it. So a claim
takes the due items round-robin across sending servers (`InboxItem.sender_host`, written at
intake by writer.py): every server's oldest item, then every server's second, ... up to the
batch size. One server alone still fills a whole batch; a second one gets its item into the
very next step.

The work stays bounded however deep the queue: one query lists the servers with due items
(oldest first, at most a batch of them) from the index on (status, sender_host, run_at), one
more reads at most a batch of the oldest items of each of those servers from the same index,
and the round-robin is done here. Ranking every due row in SQL (a window over the whole
queue) cost 95 ms per claim at 10,000 queued and 465 ms at 50,000.

Per actor, the items taken are always that actor's oldest due ones (a server's items are
taken oldest first), and the worker handles one actor's items one after another
(worker.py), so a Create is handled before its Update. Actors with an item already running
in another worker (a second inbox process, on PostgreSQL) are left for later, so two workers
do not handle one actor's activities at the same time. Items whose worker died (lease
expired) are taken first.
"""

from __future__ import annotations

from datetime import datetime
from itertools import zip_longest

from sqlalchemy import func, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from activitypub.urls import host_of
from instance import jobs
from instance.queues import INBOX
from instance.storage.models import InboxItem

MAX_HOST_CHARS = 255


def sender_host(actor: str) -> str:
    """The server an activity comes from: the actor URL's host (no port), or the URL itself
    when it has none (a row written by hand; never an accepted activity)."""
    try:
        return host_of(actor)[:MAX_HOST_CHARS]
    except ValueError:
        return actor[:MAX_HOST_CHARS]


async def claim_fair(session: AsyncSession, *, now: datetime, limit: int) -> list[InboxItem]:
    """Lease up to `limit` due inbox items, round-robin across sending servers (module
    docstring)."""
    chosen = await _pick(session, now, limit)
    if not chosen:
        return []
    return await jobs.claim(
        session, InboxItem, INBOX, now=now, limit=limit, where=[InboxItem.id.in_(chosen)]
    )


async def _pick(session: AsyncSession, now: datetime, limit: int) -> list[int]:
    busy = select(InboxItem.actor_uri).where(
        InboxItem.status == "running", InboxItem.locked_until >= now
    )
    free = InboxItem.actor_uri.not_in(busy)
    abandoned = list(await session.scalars(
        select(InboxItem.id)
        .where(InboxItem.status == "running", InboxItem.locked_until < now)
        .order_by(InboxItem.run_at, InboxItem.id).limit(limit)
    ))  # fmt: skip
    queued = (InboxItem.status == "queued", InboxItem.run_at <= now)
    hosts = list(await session.scalars(
        select(InboxItem.sender_host).where(*queued)
        .group_by(InboxItem.sender_host).order_by(func.min(InboxItem.run_at)).limit(limit)
    ))  # fmt: skip
    if not hosts:
        return abandoned
    oldest = [
        select(InboxItem.id, InboxItem.sender_host, InboxItem.run_at)
        .where(*queued, InboxItem.sender_host == host, free)
        .order_by(InboxItem.run_at, InboxItem.id).limit(limit)
        .subquery().select()  # SQLite: no LIMIT on a compound's member itself
        for host in hosts
    ]  # fmt: skip
    rows = (await session.execute(union_all(*oldest))).all()
    per_host: dict[str, list[tuple[datetime, int]]] = {host: [] for host in hosts}
    for item_id, host, run_at in rows:
        per_host[host].append((run_at, item_id))
    lists = [sorted(found) for found in per_host.values()]
    fair = [item_id for turn in zip_longest(*lists) for _, item_id in filter(None, turn)]
    return (abandoned + fair)[:limit]
