"""Role heartbeats in the database (instance/heartbeats.py), on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import socket
from datetime import timedelta

from sqlalchemy import func, select

from instance import heartbeats
from instance.storage.models import RoleHeartbeat


async def count_rows(rt) -> int:
    async with rt.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(RoleHeartbeat)))


async def test_beat_upserts_one_row_per_process(runtime) -> None:
    """Beating again updates this process's row for the role instead of adding one; another
    role of the same process has its own row."""
    started = runtime.now()
    await heartbeats.beat(runtime, "inbox", started_at=started, detail={"claimed": 1})
    first = runtime.now()
    runtime.clock = lambda: first + timedelta(seconds=10)
    await heartbeats.beat(runtime, "inbox", started_at=started, detail={"claimed": 5})
    await heartbeats.beat(runtime, "delivery", started_at=started)
    beats = await heartbeats.roles(runtime)
    assert [(b.role, b.host, b.pid) for b in beats] == [
        ("delivery", socket.gethostname(), os.getpid()),
        ("inbox", socket.gethostname(), os.getpid()),
    ]
    inbox = beats[1]
    assert inbox.beat_at == first + timedelta(seconds=10)
    assert inbox.started_at == started
    assert inbox.detail == {"claimed": 5}
    assert inbox.age_s(first + timedelta(seconds=12)) == 2.0


async def test_leave_removes_only_its_role(runtime) -> None:
    """A clean stop deletes the row of the role that stopped and leaves the others."""
    await heartbeats.beat(runtime, "inbox", started_at=runtime.now())
    await heartbeats.beat(runtime, "generation", started_at=runtime.now())
    await heartbeats.leave(runtime, "inbox")
    assert [b.role for b in await heartbeats.roles(runtime)] == ["generation"]


async def test_rows_older_than_a_day_are_pruned(runtime) -> None:
    """A crashed process's row is deleted by a later beat once it is over a day old; the
    prune runs at most hourly, so a beat within the hour leaves a newly old row alone."""
    t0 = runtime.now()
    runtime.clock = lambda: t0
    async with runtime.session() as s:
        s.add(RoleHeartbeat(role="inbox", host="gone.example", pid=1, started_at=t0,
                            beat_at=t0 - timedelta(days=2), detail={}))  # fmt: skip
        s.add(RoleHeartbeat(role="inbox", host="old.example", pid=2, started_at=t0,
                            beat_at=t0 - timedelta(hours=23, minutes=50), detail={}))  # fmt: skip
    await heartbeats.beat(runtime, "inbox", started_at=t0)
    assert sorted(b.host for b in await heartbeats.roles(runtime)) == sorted(
        ["old.example", socket.gethostname()]
    )
    runtime.clock = lambda: t0 + timedelta(minutes=30)  # old.example is over a day old now
    await heartbeats.beat(runtime, "inbox", started_at=t0)
    assert await count_rows(runtime) == 2  # but the last prune was under an hour ago
    runtime.clock = lambda: t0 + timedelta(hours=1)
    await heartbeats.beat(runtime, "inbox", started_at=t0)
    assert [b.host for b in await heartbeats.roles(runtime)] == [socket.gethostname()]


def test_a_role_is_stale_when_none_of_its_processes_beat_lately() -> None:
    """One fresh process keeps its role up; a role whose every process is older than
    STALE_AFTER_S is stale; a role last seen over a day ago is not counted at all."""
    from datetime import UTC, datetime

    now = datetime(2026, 1, 1, tzinfo=UTC)

    def b(role: str, age_s: float, pid: int = 1) -> heartbeats.Beat:
        return heartbeats.Beat(role, "h", pid, now, now - timedelta(seconds=age_s), {})

    beats = [b("inbox", 5), b("inbox", 600, pid=2), b("delivery", 31), b("web", 2 * 86400)]
    assert heartbeats.stale_roles(beats, now) == {"delivery"}
