"""Role heartbeats: each worker process says, in the database, that it is alive.

A process running a role (inbox, delivery, generation...) calls `beat()` every
HEARTBEAT_EVERY_S seconds: one upsert of its row in `role_heartbeats`, keyed by (role, host,
pid), so processes on several hosts sharing one PostgreSQL each keep their own row. A clean
stop calls `leave()`, which deletes the row; a crashed process leaves its row behind, and
rows not beaten for PRUNE_AFTER are deleted (by `beat()`, at most once per PRUNE_EVERY per
process, so the prune costs nothing noticeable).

`/healthz` (instance/routes/health.py) reads `roles()` and asks `stale_roles()`: a role
that beat within PRUNE_AFTER but none of whose processes beat within STALE_AFTER_S is
down. The database is the only thing the processes share, so it is where they report.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite

from instance.runtime import Runtime
from instance.storage.models import RoleHeartbeat

HEARTBEAT_EVERY_S = 10.0  # how often a worker process beats
STALE_AFTER_S = 30.0  # a role none of whose processes beat for this long is down
PRUNE_AFTER = timedelta(days=1)  # rows of processes gone this long are deleted
PRUNE_EVERY = timedelta(hours=1)  # a process prunes at most this often


@dataclass(frozen=True)
class Beat:
    """One process's last heartbeat."""

    role: str
    host: str
    pid: int
    started_at: datetime
    beat_at: datetime
    detail: dict[str, Any]

    def age_s(self, now: datetime) -> float:
        """Seconds since this process last beat."""
        return max(0.0, (now - self.beat_at).total_seconds())


class _Pruner:
    """When this process last deleted old heartbeat rows (one per runtime)."""

    def __init__(self, rt: Runtime) -> None:
        self.last: datetime | None = None


def this_process() -> tuple[str, int]:
    """(host name, pid): the key of this process's rows, with the role."""
    return socket.gethostname(), os.getpid()


async def beat(
    rt: Runtime, role: str, *, started_at: datetime, detail: dict[str, Any] | None = None
) -> None:
    """Record that this process runs `role` and is alive now (an upsert of its row).
    `detail` (concurrency, model...) is shown by the public /healthz: never a secret."""
    host, pid = this_process()
    now = rt.now()
    values = {
        "role": role, "host": host, "pid": pid, "started_at": started_at, "beat_at": now,
        "detail": detail or {},
    }  # fmt: skip
    async with rt.session() as session:
        dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        stmt = insert(RoleHeartbeat).values(**values)
        stmt = stmt.on_conflict_do_update(
            index_elements=["role", "host", "pid"],
            set_={"started_at": started_at, "beat_at": now, "detail": values["detail"]},
        )
        await session.execute(stmt)
        pruner = rt.service(_Pruner)
        if pruner.last is None or now - pruner.last >= PRUNE_EVERY:
            pruner.last = now
            old = RoleHeartbeat.beat_at < now - PRUNE_AFTER
            await session.execute(delete(RoleHeartbeat).where(old))


async def leave(rt: Runtime, role: str) -> None:
    """This process stops running `role` cleanly: its row goes (it is not a stale role)."""
    host, pid = this_process()
    async with rt.session() as session:
        await session.execute(
            delete(RoleHeartbeat).where(
                RoleHeartbeat.role == role, RoleHeartbeat.host == host, RoleHeartbeat.pid == pid
            )
        )


async def roles(rt: Runtime) -> list[Beat]:
    """Every process's last heartbeat, by role, host and pid."""
    async with rt.sessions() as session:
        order = RoleHeartbeat.role, RoleHeartbeat.host, RoleHeartbeat.pid
        rows = await session.scalars(select(RoleHeartbeat).order_by(*order))
        return [
            Beat(r.role, r.host, r.pid, r.started_at, r.beat_at, dict(r.detail or {}))
            for r in rows
        ]


def stale_roles(beats: Iterable[Beat], now: datetime) -> set[str]:
    """Roles that beat within PRUNE_AFTER but have no process that beat within STALE_AFTER_S."""
    recent: dict[str, float] = {}  # role -> seconds since its freshest beat
    for b in beats:
        age = b.age_s(now)
        if age <= PRUNE_AFTER.total_seconds():
            recent[b.role] = min(age, recent.get(b.role, age))
    return {role for role, age in recent.items() if age > STALE_AFTER_S}
