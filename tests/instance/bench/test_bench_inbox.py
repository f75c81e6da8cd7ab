"""`dreamloom bench inbox` end to end on a small load: every request accepted and stored, and
in the default deployment (`dreamloom serve`, every role running) every accepted activity
handled, for Notes that mention the instance's AI account and Notes that mention nobody."""

from __future__ import annotations

import pytest

from instance.bench.inbox import bench
from instance.errors import UserError


@pytest.mark.parametrize("generator", ["raw", "httpx"])
def test_bench_inbox_accept_path_alone(generator):
    """--no-workers: every request accepted and stored, nothing handled (no worker runs)."""
    (run,) = bench(20, 4, generator, deployments=["no-workers"], loads=["plain"])["runs"]
    assert run["codes"] == {"202": 20}
    assert (run["stored_rows"], run["lost"], run["key_fetches"]) == (20, 0, 1)
    assert run["accepted_by_status"] == {"queued": 20} and run["drain_s"] is None
    assert run["accepted_per_s"] > 0
    assert run["p50_ms"] <= run["p95_ms"] <= run["p99_ms"]


def test_bench_inbox_default_deployment_drains_both_loads():
    """The default deployment handles every accepted activity; the mentions become asks of
    the AI account, within its quota (5 pictures per asker, the rest refused or dropped)."""
    result = bench(20, 4, deployments=["default"], loads=["mention", "plain"])
    mention, plain = result["runs"]
    for run in (mention, plain):
        assert run["codes"] == {"202": 20} and run["lost"] == 0
        assert run["accepted_by_status"] == {"done": 20}
        assert run["drain_s"] is not None and run["drain_s"] >= 0
    assert 1 <= sum(mention["generation_jobs"].values()) <= 5
    assert plain["generation_jobs"] == {}
    # the server's CPU is reported by role: the web accepted, the inbox role handled
    roles = mention["server_cpu_s_by_role_with_drain"]
    assert {"web", "inbox", "delivery", "generation"} <= set(roles)
    assert roles["web"] > 0 and roles["inbox"] > 0
    assert mention["database_cpu_s_with_drain"] is None  # SQLite runs inside the roles


def test_bench_inbox_from_several_actors_warms_each_one_up():
    """--actors K: the Notes come from K actors in turn; each actor's key is fetched by its
    warm-up request, before the clock starts, and none during the timed requests."""
    (run,) = bench(12, 4, deployments=["no-workers"], loads=["plain"], actors=3)["runs"]
    assert run["codes"] == {"202": 12} and run["actors"] == 3
    assert (run["stored_rows"], run["lost"], run["key_fetches"]) == (12, 0, 3)
    with pytest.raises(UserError, match="--actors must be at least 1"):
        bench(1, 1, actors=0)


def test_bench_inbox_names_an_unknown_deployment():
    with pytest.raises(UserError, match="unknown deployment 'gpu'"):
        bench(1, 1, deployments=["gpu"])


@pytest.mark.postgres
def test_bench_inbox_on_postgresql_with_two_inbox_processes(pg_database):
    """--database-url: the same bench on an empty PostgreSQL database, here with two inbox
    processes draining the queue; every accepted activity is handled and the tables are
    dropped after the run, so the database is empty again."""
    (run,) = bench(20, 4, deployments=["default"], loads=["plain"],
                   database_url=pg_database, inbox_processes=2)["runs"]  # fmt: skip
    assert (run["database"], run["inbox_processes"]) == ("postgresql", 2)
    assert run["codes"] == {"202": 20} and run["lost"] == 0
    assert run["accepted_by_status"] == {"done": 20} and run["drain_s"] is not None
    # a PostgreSQL on this host (as .ci/run starts it): its CPU is reported beside the roles'
    # (found, and never less with the drain; 20 requests may cost it less than a clock tick)
    if "@127.0.0.1:" in pg_database or "@localhost:" in pg_database:
        sending, drained = run["database_cpu_s_while_sending"], run["database_cpu_s_with_drain"]
        assert sending is not None and drained >= sending >= 0, (sending, drained)
    bench(1, 1, deployments=["no-workers"], loads=["plain"], database_url=pg_database)


@pytest.mark.postgres
def test_bench_inbox_refuses_a_database_that_is_not_empty(pg_database):
    """A database with tables in it is refused before anything runs: the bench drops every
    table it made, so it must not be pointed at a real instance's database."""
    import asyncio

    from sqlalchemy import text

    from instance.storage.db import make_engine

    async def make_a_table():
        engine = make_engine(pg_database)
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE precious (id int)"))
        await engine.dispose()

    asyncio.run(make_a_table())
    with pytest.raises(UserError, match="must be an empty database"):
        bench(1, 1, deployments=["no-workers"], loads=["plain"], database_url=pg_database)
