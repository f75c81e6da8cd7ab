"""Finished deliveries do not pile up: a post to many followers leaves one row per inbox, and
the retention worker (instance/inbound/retention.py) deletes the finished ones after
`[federation] delivery_keep_days`, in batches, while a delivery still queued, running or
waiting for a retry stays however old it is. On SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, select, text

from instance.inbound import retention
from instance.runtime import Runtime
from instance.storage.models import Delivery
from tests.instance.generation_fixtures import Clock
from tests.instance.outbound.test_delivery_claim import activity
from tests.instance_fixtures import instance_runtime, make_settings


@pytest.fixture(params=["sqlite", "postgresql"])
async def rt(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Runtime]:
    database = {}
    if request.param == "postgresql":
        database = {"url": request.getfixturevalue("pg_database")}
    settings = make_settings(tmp_path / "instance", database=database,
                             federation={"delivery_keep_days": 3})  # fmt: skip
    async with instance_runtime(settings) as runtime:
        yield runtime


async def test_finished_deliveries_go_after_the_keep_days_and_open_ones_stay(
    rt, monkeypatch
) -> None:
    clock = Clock()
    rt.clock = clock
    now = clock.now
    act = await activity(rt)
    rows = []
    for n, (status, age_days) in enumerate([
        ("done", 4), ("failed", 4), ("gone", 4), ("cancelled", 4),  # past keeping: go
        ("done", 2), ("failed", 2),  # finished, but recent: stay
        ("queued", 30), ("running", 30),  # never finished: stay, however old
    ]):  # fmt: skip
        then = now - timedelta(days=age_days)
        finished = then if status not in ("queued", "running") else None
        rows.append({"activity_id": act, "inbox_uri": f"https://h{n}.example/inbox",
                     "host": f"h{n}.example", "status": status, "attempts": 1,
                     "run_at": then, "created_at": then, "finished_at": finished})  # fmt: skip
    # and 12 more old done rows, with a batch of 5: the pruning takes several batches
    rows += [{"activity_id": act, "inbox_uri": f"https://bulk.example/{n}/inbox",
              "host": "bulk.example", "status": "done", "attempts": 1, "run_at": now,
              "created_at": now, "finished_at": now - timedelta(days=5)} for n in range(12)]
    async with rt.session() as session:
        await session.execute(insert(Delivery), rows)
    monkeypatch.setattr(retention, "BATCH", 5)
    gone = await retention.prune(rt)
    async with rt.sessions() as session:
        found = await session.execute(select(Delivery.host, Delivery.status))
        left = sorted(tuple(row) for row in found)
    assert left == [("h4.example", "done"), ("h5.example", "failed"),
                    ("h6.example", "queued"), ("h7.example", "running")]  # fmt: skip
    assert gone == 16


async def test_the_outcome_query_of_metrics_and_the_retention_walk_an_index(rt) -> None:
    """The last hour's outcomes (/metrics) and retention read finished rows through
    ix_deliveries_finished, not a scan of every delivery ever made."""
    since = datetime(2026, 12, 1, tzinfo=UTC)
    async with rt.sessions() as session:
        query = ("SELECT count(*) FROM deliveries"
                 " WHERE status IN ('done', 'failed') AND finished_at >= :t")  # fmt: skip
        if rt.settings.database.url.startswith("postgresql"):
            await session.execute(text("SET enable_seqscan = off"))  # an empty table otherwise
            sql = f"EXPLAIN {query}"
        else:
            sql = f"EXPLAIN QUERY PLAN {query}"
        plan = " ".join(str(r) for r in (await session.execute(text(sql), {"t": since})).all())
    assert "ix_deliveries_finished" in plan, plan
