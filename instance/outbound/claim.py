"""Which due deliveries one claim takes: round-robin across hosts, within each host's cap.

A fan-out to 100,000 followers leaves ~10,000 due rows, and a worker claims a few dozen at
a time, hundreds of times. Ranking every due row per host on each claim (a window
function) made the database sort all of them every time: ~10 ms a claim at 10,000 rows,
most of the delivery worker's time at that size. Instead a claim walks the due rows in
index order (`ix_deliveries_due`: status, run_at, id) in windows of `WINDOW_FACTOR` x the
rows wanted, and stops as soon as it has enough:

- the per-host cap counts every row *running* under a live lease, in any process (a few
  hundred rows at most, found by `status`): a host with `per_host` in flight is full, and
  its rows are skipped, as are paused domains (instance/outbound/domains.py), rows under a
  suspended domain (instance/moderation/domains.py: held, never sent, not dropped) and
  rows of activities held while their account is suspended (instance/moderation/
  suspension.py);
- a host seen full or suspended in one window is left out of the next in SQL (and so is
  a held activity), so one host with thousands of due rows at the front (a resumed
  domain) costs one window, not a stall: every window either fills the claim or retires
  the hosts and activities that filled it;
- what was found is taken round-robin: every host's first row, then every host's second
  ..., in due order within a rank, as the window-function claim did;
- rows whose lease lapsed (a dead worker's) come first, unless they are this worker's own
  rows still in flight.

The chosen ids are then leased by `jobs.claim_ids`, which checks `due` again in the
UPDATE: a row another worker took meanwhile is left out, never claimed twice. Two workers
reading the running counts at once may each fill the same host's last slots, so across
processes the cap can be exceeded by one claim's worth; within a process it is exact (one
writer task claims).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from datetime import datetime

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from instance import jobs
from instance.moderation import suspension
from instance.moderation.domains import suspended_domains, under
from instance.queues import DELIVERY
from instance.storage.models import Delivery, DomainHealth, OutboundActivity

WINDOW_FACTOR = 4  # rows read per window, as a multiple of the rows wanted
MIN_WINDOW = 64


async def running_per_host(session: AsyncSession, now: datetime) -> Counter[str]:
    """Rows in flight per host, in every process: running under a live lease."""
    rows = await session.execute(
        select(Delivery.host, func.count())
        .where(Delivery.status == "running", Delivery.locked_until >= now)
        .group_by(Delivery.host)
    )
    return Counter({host: n for host, n in rows.all()})


async def held_among(session: AsyncSession, activity_ids: set[int]) -> set[int]:
    """Those of `activity_ids` whose deliveries wait while their account is suspended (by
    primary key: a window's rows belong to a handful of activities)."""
    if not activity_ids:
        return set()
    query = suspension.held_activities().where(OutboundActivity.id.in_(sorted(activity_ids)))
    return set(await session.scalars(query))


async def claim_fair(
    session: AsyncSession, *, now: datetime, room: int, per_host: int, mine: Collection[int]
) -> list[Delivery]:
    """Lease up to `room` due deliveries, round-robin across hosts, never more than
    `per_host` running per host (module docstring). `mine`: ids this worker holds."""
    if room <= 0:
        return []
    busy = await running_per_host(session, now)
    blocked = await suspended_domains(session)
    skip = {host for host, n in busy.items() if n >= per_host}  # hosts left out in SQL
    paused = select(DomainHealth.host).where(DomainHealth.paused.is_(True))
    known: dict[int, bool] = {}  # activity id -> held (suspension.held_activities)
    found: list[tuple[int, int]] = []  # (rank within its host, position)
    ids: list[int] = []

    async def take(rows: list[tuple[int, str, int]]) -> None:
        fresh = {activity for _, _, activity in rows} - known.keys()
        held = await held_among(session, fresh)
        known.update({activity: activity in held for activity in fresh})
        for row_id, host, activity in rows:
            if host in skip or known[activity]:
                continue
            if under(host, blocked):
                skip.add(host)
                continue
            busy[host] += 1
            found.append((busy[host], len(ids)))
            ids.append(row_id)
            if busy[host] >= per_host:
                skip.add(host)

    lapsed = await session.execute(
        select(Delivery.id, Delivery.host, Delivery.activity_id)
        .where(jobs.lapsed(Delivery, now), Delivery.id.not_in(list(mine)))
        .where(Delivery.host.not_in(paused))
        .order_by(Delivery.run_at, Delivery.id)
        .limit(room)
    )
    await take([(row_id, host, activity) for row_id, host, activity in lapsed.all()])
    window = max(MIN_WINDOW, WINDOW_FACTOR * room)
    after: tuple[datetime, int] | None = None
    while len(ids) < room:
        keyset = []
        if after is not None:
            keyset.append(
                or_(Delivery.run_at > after[0],
                    and_(Delivery.run_at == after[0], Delivery.id > after[1]))
            )  # fmt: skip
        held = sorted(activity for activity, is_held in known.items() if is_held)
        query = (
            select(Delivery.id, Delivery.host, Delivery.activity_id, Delivery.run_at)
            .where(jobs.waiting(Delivery, now), Delivery.host.not_in(sorted(skip)), *keyset)
            .where(Delivery.host.not_in(paused), Delivery.activity_id.not_in(held))
            .order_by(Delivery.run_at, Delivery.id)
            .limit(window)
        )
        page = (await session.execute(query)).all()
        await take([(row_id, host, activity) for row_id, host, activity, _ in page])
        if len(page) < window:
            break
        after = (page[-1][3], page[-1][0])
    chosen = [ids[position] for _, position in sorted(found)[:room]]
    if not chosen:
        return []
    rows = await jobs.claim_ids(session, Delivery, DELIVERY, chosen, now=now)
    order = {row_id: n for n, row_id in enumerate(chosen)}
    return sorted(rows, key=lambda row: order[row.id])  # round-robin: the order they start in
