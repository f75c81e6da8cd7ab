"""Durable work rows: claim, finish, retry, fail. The one lock-and-retry mechanism.

Every background step (an inbox item, a delivery, a generation job) is a row with `status`,
`run_at`, `locked_until` and `attempts` (storage.models.WorkRow). A worker *claims* due rows
atomically: queued rows whose `run_at` has come, or running rows whose lease expired (their
worker died: SIGKILL loses nothing). Claiming sets status=running, bumps attempts and leases
the row; the worker then finishes, retries (queued again at a later run_at) or fails it.

    queued --claim--> running --finish--> done
       ^                 |  \\--fail----> failed
       '----retry--------'   (lease expires) -> claimable again

How long a lease lasts and when a failed row runs again are declared per queue in
instance/queues.py; this module only moves rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from instance.queues import Queue
from instance.storage.models import WorkRow, WorkStatus

R = TypeVar("R", bound=WorkRow)


def due(model: type[Any], now: datetime) -> Any:
    """Rows a worker may take now: due queued rows, and running rows whose lease expired."""
    return or_(
        and_(model.status == "queued", model.run_at <= now),
        and_(model.status == "running", model.locked_until < now),
    )


async def claim(
    session: AsyncSession,
    model: type[R],
    queue: Queue,
    *,
    now: datetime,
    limit: int,
    lease: timedelta | None = None,
    where: Sequence[Any] = (),
    order_by: Sequence[Any] = (),
) -> list[R]:
    """Atomically lease up to `limit` due rows of `queue` (FOR UPDATE SKIP LOCKED on
    PostgreSQL), for the queue's lease unless `lease` is given."""
    held = lease or queue.fixed_lease
    pick = (
        select(model.id)  # type: ignore[attr-defined]
        .where(due(model, now), *where)
        .order_by(*(order_by or (model.run_at, model.id)))  # type: ignore[attr-defined]
        .limit(limit)
    )
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        pick = pick.with_for_update(skip_locked=True)
    stmt = (
        update(model)
        .where(model.id.in_(pick.scalar_subquery()), due(model, now))  # type: ignore[attr-defined]
        .values(status="running", locked_until=now + held, attempts=model.attempts + 1)
        .returning(model)
        .execution_options(synchronize_session=False)
    )
    rows = list((await session.scalars(stmt)).all())
    return rows


def finish(row: WorkRow, now: datetime) -> None:
    row.status = "done"
    row.locked_until = None
    row.finished_at = now
    row.last_error = None


def retry(row: WorkRow, now: datetime, delay: timedelta, error: str | None = None) -> None:
    row.status = "queued"
    row.locked_until = None
    row.run_at = now + delay
    row.last_error = error


def fail(row: WorkRow, now: datetime, error: str, status: WorkStatus = "failed") -> None:
    row.status = status
    row.locked_until = None
    row.finished_at = now
    row.last_error = error
