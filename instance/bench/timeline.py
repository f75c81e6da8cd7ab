"""`dreamloom bench timeline`: latency of `timelines.read` with a million posts stored.

A temporary instance (SQLite in a temporary directory, or an empty PostgreSQL database given
with `--database-url`, whose tables are dropped afterwards) is seeded in bulk with core
`INSERT ... executemany` in big transactions: ~5,000 accounts (10% local, the rest on 100
remote domains), posts spread over a year with a skewed author activity and the visibility mix
of a real instance (public, unlisted, followers-only, direct; 1% deleted), follows (every
local account follows 20-400 accounts; the viewer exactly 300), boosts of 5% of the posts and
mentions in 4% (the viewer in 0.1%). Then `timelines.read` runs in-process (no HTTP), one
session per read as a request would, for home (the viewer), local, federated and account
timelines, first page and a deep page (`before` at 10% of the year: ~90% of the posts are
newer), R reads each after a warm-up; printed: p50/p95/p99 in ms (the goal is p95 < 20 ms).
"""

from __future__ import annotations

import asyncio
import gc
import random
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, inspect, select, text

from instance.content import timelines
from instance.errors import UserError
from instance.runtime import Runtime, open_runtime
from instance.settings import load_settings
from instance.setup import write_config
from instance.storage.db import make_engine
from instance.storage.models import Account, Base, Boost, Follow, Mention, Post

CHUNK = 50_000
SPAN = timedelta(days=365)
VISIBILITY = {"public": 75, "unlisted": 12, "followers": 10, "direct": 3}
WARMUP = 10


def chunks(rows: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(rows), CHUNK):
        yield rows[start : start + CHUNK]


def make_world(n_posts: int, n_accounts: int, end: datetime, seed: int = 1) -> dict[str, Any]:
    """Every row to insert, as dicts for the core tables (ids given, 1..n), posts until `end`."""
    rng = random.Random(seed)
    n_local = max(2, n_accounts // 10)
    accounts = []
    for a in range(1, n_accounts + 1):
        local = a <= n_local
        domain = "" if local else f"remote{a % 100}.example"
        uri = f"https://{domain or 'bench.example'}/users/u{a}"
        accounts.append({"id": a, "username": f"u{a}", "username_key": f"u{a}",
                         "domain": domain, "local": local, "uri": uri})  # fmt: skip
    ids = list(range(1, n_accounts + 1))
    rng.shuffle(ids)  # activity: rank r posts ~ 1/r^0.8
    weights = [0.0] * (n_accounts + 1)
    for rank, a in enumerate(ids, 1):
        weights[a] = 1 / rank**0.8
    authors = rng.choices(range(n_accounts + 1), weights=weights, k=n_posts)
    kinds = rng.choices(list(VISIBILITY), weights=list(VISIBILITY.values()), k=n_posts)
    step = SPAN / n_posts
    start = end - SPAN
    posts, published = [], []
    for i in range(n_posts):
        author = authors[i]
        at = start + step * i + timedelta(seconds=rng.uniform(-3600, 0))
        published.append(at)
        posts.append({
            "id": i + 1, "public_id": f"b{i + 1}", "uri": f"{accounts[author - 1]['uri']}/p{i}",
            "account_id": author, "local": author <= n_local, "content": f"<p>post {i}</p>",
            "visibility": kinds[i], "published": at, "to": [], "cc": [], "tags": [],
            "deleted_at": at if rng.random() < 0.01 else None,
        })  # fmt: skip
    viewer = 1
    follows: list[dict[str, Any]] = []
    for follower in range(1, n_local + 1):
        count = 300 if follower == viewer else rng.randint(20, 400)
        for followee in rng.sample(range(2, n_accounts + 1), min(count, n_accounts - 1)):
            accepted = rng.random() > 0.02
            follows.append({"follower_id": follower, "followee_id": followee,
                            "uri": f"f{len(follows)}", "accepted": accepted})  # fmt: skip
    boosted = {(rng.choices(range(n_accounts + 1), weights=weights)[0], rng.randrange(n_posts))
               for _ in range(n_posts // 20)}  # fmt: skip
    boosts = [
        {"account_id": a, "post_id": p + 1, "uri": f"b{n}",
         "published": min(end, published[p] + timedelta(seconds=rng.uniform(0, 2 * 86400)))}
        for n, (a, p) in enumerate(sorted(boosted))
    ]  # fmt: skip
    mentioned = {(rng.randrange(n_posts) + 1, rng.randint(1, n_accounts))
                 for _ in range(n_posts // 25)}  # fmt: skip
    mentioned |= {(rng.randrange(n_posts) + 1, viewer) for _ in range(n_posts // 1000)}
    mentions = [{"post_id": p, "account_id": a} for p, a in sorted(mentioned)]
    author = ids[20]  # an active account, not the most active
    return {"accounts": accounts, "posts": posts, "follows": follows, "boosts": boosts,
            "mentions": mentions, "viewer": viewer, "author": author}  # fmt: skip


async def seed(rt: Runtime, world: dict[str, Any]) -> None:
    for model, key in ((Account, "accounts"), (Post, "posts"), (Follow, "follows"),
                       (Boost, "boosts"), (Mention, "mentions")):  # fmt: skip
        for rows in chunks(world[key]):
            async with rt.engine.begin() as conn:
                await conn.execute(insert(model), rows)
    if rt.engine.dialect.name == "postgresql":
        async with rt.engine.begin() as conn:
            await conn.execute(text("ANALYZE"))  # what autovacuum does after a bulk load


def percentiles(seconds: list[float]) -> dict[str, float]:
    ordered = sorted(seconds)

    def at(fraction: float) -> float:
        return round(1000 * ordered[min(len(ordered) - 1, int(len(ordered) * fraction))], 2)

    return {"p50_ms": at(0.50), "p95_ms": at(0.95), "p99_ms": at(0.99)}


async def measure(
    rt: Runtime, viewer_id: int, author_id: int, deep: datetime, reads: int
) -> dict[str, dict[str, Any]]:
    async with rt.session() as session:
        viewer = await session.get(Account, viewer_id)
        author = await session.get(Account, author_id)
    cases: dict[str, tuple[str, dict[str, Any]]] = {
        "home": ("home", {"viewer": viewer}),
        "local": ("local", {}),
        "federated": ("federated", {}),
        "account": ("account", {"author": author, "viewer": viewer}),
    }
    results = {}
    for name, (kind, kw) in cases.items():
        for page, before in (("first", None), ("deep", deep)):
            timings, count = [], 0
            for i in range(WARMUP + reads):
                started = time.perf_counter()
                async with rt.session() as session:
                    found = await timelines.read(session, kind, before=before, now=rt.now(), **kw)
                    count = len(found)
                if i >= WARMUP:
                    timings.append(time.perf_counter() - started)
            results[f"{name} {page}"] = {**percentiles(timings), "entries": count}
    return results


async def run(n_posts: int, n_accounts: int, reads: int, database_url: str | None,
              directory: Path) -> dict[str, Any]:  # fmt: skip

    write_config(directory, "bench.example", "https")
    settings = load_settings(directory / "config.toml")
    if database_url:
        settings.database.url = database_url
        await _require_empty(database_url)
    rt = await open_runtime(settings)
    try:
        started = time.perf_counter()
        end = datetime.now(UTC)
        world = make_world(n_posts, n_accounts, end)
        built = time.perf_counter()
        await seed(rt, world)
        seeded = time.perf_counter()
        counts = {key: len(world[key]) for key in ("follows", "boosts", "mentions")}
        viewer, author = world["viewer"], world["author"]
        del world  # a million dicts alive would make every full GC pass slow the reads
        gc.collect()
        results = await measure(rt, viewer, author, end - SPAN * 0.9, reads)
    finally:
        if database_url:
            async with rt.engine.begin() as conn:
                await conn.run_sync(Base.metadata.drop_all)
                await conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
        await rt.aclose()
    return {
        "backend": rt.engine.dialect.name, "posts": n_posts, "accounts": n_accounts,
        **counts, "viewer_follows": min(300, n_accounts - 1), "reads": reads,
        "build_rows_s": round(built - started, 1), "seed_s": round(seeded - built, 1),
        "timelines": results,
    }  # fmt: skip


async def _require_empty(url: str) -> None:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda c: inspect(c).get_table_names())
            if tables:
                raise UserError(f"--database-url must be an empty database; it has {tables[:5]}")
            await conn.execute(select(1))
    finally:
        await engine.dispose()


def bench(n_posts: int, n_accounts: int = 5000, reads: int = 200,
          database_url: str | None = None) -> dict[str, Any]:  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="dreamloom-bench-") as tmp:
        return asyncio.run(run(n_posts, n_accounts, reads, database_url, Path(tmp)))


def table(result: dict[str, Any]) -> str:
    lines = [
        f"timelines: {result['posts']:,} posts, {result['accounts']:,} accounts, "
        f"{result['follows']:,} follows, {result['boosts']:,} boosts, "
        f"{result['mentions']:,} mentions on {result['backend']}; seeded in {result['seed_s']} s "
        f"(+{result['build_rows_s']} s building rows); {result['reads']} reads each",
        f"{'timeline':<16} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'entries':>8}",
    ]
    for name, r in result["timelines"].items():
        lines.append(
            f"{name:<16} {r['p50_ms']:>8} {r['p95_ms']:>8} {r['p99_ms']:>8} {r['entries']:>8}"
        )
    return "\n".join(lines) + "\n"
