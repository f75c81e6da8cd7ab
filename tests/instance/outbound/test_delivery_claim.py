"""The delivery claim (instance/outbound/claim.py) on SQLite and on PostgreSQL: round-robin
across hosts, the per-host cap counted over every worker's running rows, a host with many
rows in front not holding the others back, paused and suspended domains skipped, lapsed
leases taken again (not our own), and concurrent claims never taking one row twice."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, select, update

from instance.outbound.claim import claim_fair
from instance.runtime import Runtime, open_runtime
from instance.setup import ensure_instance
from instance.storage.models import Delivery, DomainBlock, DomainHealth, OutboundActivity
from tests.instance_fixtures import make_settings

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
async def rt(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Runtime]:
    database = {}
    if request.param == "postgresql":
        database = {"url": request.getfixturevalue("pg_database")}
    runtime = await open_runtime(make_settings(tmp_path / "instance", database=database))
    await ensure_instance(runtime)
    try:
        yield runtime
    finally:
        await runtime.aclose()


async def activity(rt: Runtime, uri: str = "urn:act") -> int:
    from instance.accounts import NewAccount, create_account

    async with rt.session() as session:
        bot = await create_account(session, rt.urls, NewAccount("painter"))
        row = OutboundActivity(uri=uri, account_id=bot.id, kind="Create", body="{}",
                               created_at=NOW)  # fmt: skip
        session.add(row)
        await session.flush()
        return row.id


async def add_rows(rt: Runtime, activity_id: int, hosts: list[str], age_s: float = 60) -> None:
    """One queued row per entry of `hosts` (a host may repeat), due `age_s` ago, in order."""
    async with rt.session() as session:
        await session.execute(insert(Delivery), [
            {"activity_id": activity_id, "inbox_uri": f"https://{host}/users/{n}/inbox",
             "host": host, "status": "queued", "attempts": 0,
             "run_at": NOW - timedelta(seconds=age_s - n * 0.001), "created_at": NOW}
            for n, host in enumerate(hosts)
        ])  # fmt: skip


async def claim(rt: Runtime, room: int, per_host: int, mine: list[int] | None = None) -> list:
    async with rt.session() as session:
        return await claim_fair(session, now=NOW, room=room, per_host=per_host, mine=mine or [])


async def test_round_robin_every_hosts_first_row_before_any_second(rt) -> None:
    # a fair claim starts one row on each host before a second row on any host
    act = await activity(rt)
    await add_rows(rt, act, ["a.example"] * 6 + ["b.example", "c.example", "d.example"])
    rows = await claim(rt, room=4, per_host=2)
    assert [r.host for r in rows][:4] == ["a.example", "b.example", "c.example", "d.example"]


async def test_a_host_with_many_rows_in_front_does_not_hold_back_the_others(rt) -> None:
    # 2,000 rows of one host queued first (a resumed domain) hold nobody back: the claim
    # still fills up, one row per host, the big host's first row among them
    act = await activity(rt)
    await add_rows(rt, act, ["big.example"] * 2000 + [f"h{n}.example" for n in range(30)])
    rows = await claim(rt, room=16, per_host=4)
    hosts = Counter(r.host for r in rows)
    assert len(rows) == 16 and set(hosts.values()) == {1} and "big.example" in hosts


async def test_the_cap_counts_rows_running_in_another_worker(rt) -> None:
    # rows another process has in flight to a host count against that host's cap
    act = await activity(rt)
    await add_rows(rt, act, ["a.example"] * 10 + ["b.example"])
    async with rt.session() as session:
        ids = list(await session.scalars(
            select(Delivery.id).where(Delivery.host == "a.example").order_by(Delivery.id).limit(3)
        ))  # fmt: skip
        await session.execute(
            update(Delivery).where(Delivery.id.in_(ids))
            .values(status="running", attempts=1, locked_until=NOW + timedelta(seconds=10))
        )  # fmt: skip
    rows = await claim(rt, room=10, per_host=4)
    assert Counter(r.host for r in rows) == {"a.example": 1, "b.example": 1}


async def test_paused_and_suspended_domains_wait(rt) -> None:
    # rows of a paused domain and of a suspended one are not sent, and stay queued
    act = await activity(rt)
    await add_rows(rt, act, ["paused.example", "sub.blocked.example", "ok.example"])
    async with rt.session() as session:
        session.add(DomainHealth(host="paused.example", failure_days=[], paused=True))
        session.add(DomainBlock(domain="blocked.example", severity="suspend"))
    assert [r.host for r in await claim(rt, room=10, per_host=4)] == ["ok.example"]
    async with rt.session() as session:
        left = set(await session.scalars(select(Delivery.host).where(Delivery.status == "queued")))
    assert left == {"paused.example", "sub.blocked.example"}


async def test_lapsed_leases_are_taken_again_but_not_our_own(rt) -> None:
    # a dead worker's expired leases are claimed first; rows this worker still holds are not
    act = await activity(rt)
    await add_rows(rt, act, ["dead.example", "mine.example", "new.example"])
    async with rt.session() as session:
        await session.execute(
            update(Delivery).where(Delivery.host.in_(["dead.example", "mine.example"]))
            .values(status="running", attempts=1, locked_until=NOW - timedelta(seconds=1))
        )  # fmt: skip
        mine = await session.scalar(select(Delivery.id).where(Delivery.host == "mine.example"))
    rows = await claim(rt, room=10, per_host=4, mine=[mine])
    assert [(r.host, r.attempts) for r in rows] == [("dead.example", 2), ("new.example", 1)]


async def test_concurrent_claims_never_take_a_row_twice(rt) -> None:
    # four workers claiming at once: every row is claimed exactly once in all
    act = await activity(rt)
    await add_rows(rt, act, [f"h{n % 50}.example" for n in range(400)])

    async def worker() -> list[int]:
        taken: list[int] = []
        while True:
            rows = await claim(rt, room=16, per_host=1000)
            if not rows:
                return taken
            taken += [r.id for r in rows]
            await asyncio.sleep(0)

    claimed = await asyncio.gather(*(worker() for _ in range(4)))
    every = [row_id for ids in claimed for row_id in ids]
    assert len(every) == len(set(every)) == 400
