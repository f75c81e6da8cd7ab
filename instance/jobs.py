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

import functools
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import and_, bindparam, case, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from instance.queues import Queue
from instance.storage.models import WorkRow, WorkStatus

R = TypeVar("R", bound=WorkRow)


def due(model: type[Any], now: datetime) -> Any:
    """Rows a worker may take now: due queued rows, and running rows whose lease expired."""
    return or_(waiting(model, now), lapsed(model, now))


def waiting(model: type[Any], now: datetime) -> Any:
    """Queued rows whose time has come: the `(status, run_at)` index walks them in order."""
    return and_(model.status == "queued", model.run_at <= now)


def lapsed(model: type[Any], now: datetime) -> Any:
    """Running rows whose lease expired (their worker died): few, found by `status`."""
    return and_(model.status == "running", model.locked_until < now)


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
    PostgreSQL), for the queue's lease unless `lease` is given; returned lapsed first, then by id.

    Lapsed leases (a dead worker's rows) are taken first, then queued rows in `order_by`
    (default: due time). The two halves of `due` are asked separately, because one `OR`
    makes SQLite and PostgreSQL sort every due row before the LIMIT applies; apart, each is
    an index walk that stops after `limit` rows. The UPDATE checks `due` again, so a row
    another worker took meanwhile is never claimed twice (it is left out instead)."""
    order = order_by or (model.run_at, model.id)  # type: ignore[attr-defined]
    locking = session.bind is not None and session.bind.dialect.name == "postgresql"

    def pick(branch: Any, n: int) -> Any:
        query = select(model.id).where(branch, *where).order_by(*order)  # type: ignore[attr-defined]
        query = query.limit(n)
        return query.with_for_update(skip_locked=True) if locking else query

    taken_over = list(await session.scalars(pick(lapsed(model, now), limit)))
    queued: list[Any] = []
    if len(taken_over) < limit:
        # chosen in a statement of its own, never as a subquery of the UPDATE: PostgreSQL may
        # run a `LIMIT n FOR UPDATE SKIP LOCKED` subquery more than once, each time skipping
        # the rows it locked before, and so lease more than n rows (one worker took 16 jobs
        # with max_batch 1: tests/instance/processes/test_roles.py)
        queued = list(await session.scalars(pick(waiting(model, now), limit - len(taken_over))))
    chosen = taken_over + queued
    if not chosen:
        return []
    ids: Any = model.id  # type: ignore[attr-defined]
    rows = await _lease(session, model, ids.in_(chosen), now, lease or queue.fixed_lease)
    lapsed_ids = set(taken_over)
    rows.sort(key=lambda row: (row.id not in lapsed_ids, row.id))  # type: ignore[attr-defined]
    return rows


async def claim_ids(
    session: AsyncSession,
    model: type[R],
    queue: Queue,
    ids: Sequence[int],
    *,
    now: datetime,
    lease: timedelta | None = None,
) -> list[R]:
    """Lease those of `ids` that are still due, for a caller that chose the rows itself
    (the delivery worker, fair per host). A row another worker took since is left out; on
    PostgreSQL a row being claimed by another transaction is waited for, then left out."""
    if not ids:
        return []
    return await _lease(
        session, model, model.id.in_(list(ids)), now, lease or queue.fixed_lease  # type: ignore[attr-defined]
    )


async def _lease(
    session: AsyncSession, model: type[R], chosen: Any, now: datetime, held: timedelta
) -> list[R]:
    # `due` is checked again on each chosen row, wrapped in a CASE so that the planner finds
    # the rows by id: given the bare OR, SQLite walks every due row of the index instead
    still_due = case((due(model, now), 1), else_=0) == 1
    stmt = (
        update(model)
        .where(chosen, still_due)
        .values(status="running", locked_until=now + held, attempts=model.attempts + 1)
        .returning(model)
        .execution_options(synchronize_session=False)
    )
    return list((await session.scalars(stmt)).all())


async def finish_held(
    session: AsyncSession, model: type[WorkRow], held: Sequence[Mapping[str, Any]], now: datetime
) -> None:
    """`finish` many rows in one executemany UPDATE, without loading them: each of `held` is
    {"id", "attempts", plus the same other columns to set}. Only rows still held are
    touched: running, on that attempt (a row whose lease lapsed and that another worker
    took since is left to that worker)."""
    if not held:
        return
    table: Any = model.__table__  # type: ignore[attr-defined]
    stmt = _finish_held_stmt(table, tuple(sorted(set(held[0]) - {"id", "attempts"})))
    connection = await session.connection()
    rows = [{"held_now": now, **{f"held_{k}": v for k, v in row.items()}} for row in held]
    await connection.execute(stmt, rows)


@functools.cache
def _finish_held_stmt(table: Any, extra: tuple[str, ...]) -> Any:
    """finish_held's UPDATE, built once per table and set of columns."""
    return (
        update(table)
        .where(
            table.c.id == bindparam("held_id"),
            table.c.status == "running",
            table.c.attempts == bindparam("held_attempts"),
        )
        .values(status="done", locked_until=None, finished_at=bindparam("held_now"),
                last_error=None, **{key: bindparam(f"held_{key}") for key in extra})
    )  # fmt: skip


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
