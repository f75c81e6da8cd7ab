"""The admin's hands on the generator: cancel one job, pause and resume the whole worker.

- **Cancel.** A queued job becomes "cancelled" and is never claimed (instance/jobs.py only
  takes queued and lease-expired running rows). A running job is marked "cancelled" too; the
  worker finishes the image, but DbJobStore only writes to a row that is still *running*
  (store.py `_own`), so the image file is deleted and nothing follows: no media row, no
  post, no reply to an ask, no failure reply either. A finished job cannot be cancelled.
- **Pause.** One InstanceFlag row, `generator.paused`, read by the worker at every claim
  (`DbJobStore.claim_batch`): while it is true nothing new starts (a batch already running
  ends normally). Requests still queue, within the usual bound; `resume` lets the worker take
  them again, oldest first.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from instance.errors import UserError
from instance.runtime import Runtime
from instance.storage.models import GenerationJob, InstanceFlag

PAUSED_FLAG = "generator.paused"
CANCELLABLE = ("queued", "running")
CANCEL_REASON = "cancelled by the admin"


async def is_paused(session: AsyncSession) -> bool:
    """Whether the admin paused the generator (the flag row, read fresh each time)."""
    flag = await session.get(InstanceFlag, PAUSED_FLAG, populate_existing=True)
    return flag is not None and bool(flag.value)


async def set_paused(rt: Runtime, paused: bool) -> bool:
    """Pause (True) or resume (False) the generator; True when the state changed."""
    async with rt.session() as s:
        flag = await s.get(InstanceFlag, PAUSED_FLAG)
        before = flag is not None and bool(flag.value)
        if flag is None:
            s.add(InstanceFlag(key=PAUSED_FLAG, value=paused, updated_at=rt.now()))
        else:
            flag.value = paused
            flag.updated_at = rt.now()
    return before != paused


@dataclass(frozen=True)
class Cancelled:
    job: str
    was: str  # "queued" or "running"


async def cancel(rt: Runtime, job_id: str) -> Cancelled:
    """Cancel job `job_id` (its public id, as `dreamloom queue` shows it). UserError when
    there is no such job or it already ended."""
    async with rt.session() as s:
        row = await s.scalar(select(GenerationJob).where(GenerationJob.public_id == job_id))
        if row is None:
            raise UserError(f"no generation job {job_id!r} (see `dreamloom queue --all`)")
        was = row.status
        # one conditional UPDATE: a worker finishing the job at this moment wins or loses
        # cleanly, never both
        res = await s.execute(
            update(GenerationJob)
            .where(GenerationJob.id == row.id, GenerationJob.status.in_(CANCELLABLE))
            .values(
                status="cancelled",
                locked_until=None,
                finished_at=rt.now(),
                last_error=CANCEL_REASON,
            )
            .execution_options(synchronize_session=False)
        )
        if res.rowcount != 1:  # type: ignore[attr-defined]
            await s.refresh(row)
            raise UserError(f"generation job {job_id} is already {row.status}; nothing to cancel")
    return Cancelled(job_id, was)


@dataclass(frozen=True)
class GeneratorStatus:
    paused: bool
    queued: int
    running: int
    oldest_queued_at: datetime | None
    oldest_queued_age_s: float | None

    def to_json(self) -> dict[str, Any]:
        row = asdict(self)
        row["state"] = "paused" if self.paused else "running"
        oldest = self.oldest_queued_at
        row["oldest_queued_at"] = oldest.isoformat() if oldest is not None else None
        return row


async def status(rt: Runtime) -> GeneratorStatus:
    """Paused or running, how many jobs wait and run, and how long the oldest has waited."""
    async with rt.sessions() as s:
        paused = await is_paused(s)
        rows = await s.execute(
            select(GenerationJob.status, func.count())
            .where(GenerationJob.status.in_(CANCELLABLE))
            .group_by(GenerationJob.status)
        )
        counts: dict[str, int] = {status: int(n) for status, n in rows}
        oldest = await s.scalar(
            select(func.min(GenerationJob.created_at)).where(GenerationJob.status == "queued")
        )
    if oldest is not None and oldest.tzinfo is None:  # SQLite hands back naive UTC
        oldest = oldest.replace(tzinfo=rt.now().tzinfo)
    age = max(0.0, (rt.now() - oldest).total_seconds()) if oldest is not None else None
    return GeneratorStatus(paused, counts.get("queued", 0), counts.get("running", 0), oldest, age)
