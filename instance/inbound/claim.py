"""Which inbox items one worker step takes: fair per remote server, in order per actor.

A claim ordered only by arrival lets one server's flood (5,000 activities from one host)
fill every batch, and a second server's single activity waits behind all of it. So each
claim ranks the due items per sending server (`InboxItem.sender_host`, written at intake
by writer.py, indexed with status and arrival) and takes them round-robin: every server's
oldest item, then every server's second, ... up to the batch size. One server alone still
fills a whole batch; a second one gets its item into the very next step.

Per actor, the items taken are always that actor's oldest due ones (a server's rank follows
arrival), and the worker handles one actor's items one after another (worker.py), so a
Create is handled before its Update. Actors with an item already running in another
worker (a second inbox process, on PostgreSQL) are left for later, so two workers do not
handle one actor's activities at the same time.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
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
    rank = func.row_number().over(
        partition_by=InboxItem.sender_host, order_by=(InboxItem.run_at, InboxItem.id)
    )
    busy = select(InboxItem.actor_uri).where(
        InboxItem.status == "running", InboxItem.locked_until >= now
    )
    ranked = (
        select(InboxItem.id, InboxItem.run_at, rank.label("rank"))
        .where(jobs.due(InboxItem, now), InboxItem.actor_uri.not_in(busy))
        .subquery()
    )
    fair = (
        select(ranked.c.id)
        .order_by(ranked.c.rank, ranked.c.run_at, ranked.c.id)
        .limit(limit)
    )
    return await jobs.claim(
        session, InboxItem, INBOX, now=now, limit=limit, where=[InboxItem.id.in_(fair)]
    )
