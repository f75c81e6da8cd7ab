"""`dreamloom bench explore`: time of the Explore ranking query (instance/content/explore.py).

A temporary instance (SQLite in a temporary directory, or an empty PostgreSQL database given
with `--database-url`, whose tables are dropped afterwards) is seeded in bulk: 1,000 accounts
(10% local, the rest on 50 remote domains), N posts spread over the last 10 days (so ~70% fall
in Explore's 7-day window and the candidate cap of 1,000 binds), 90% public, 1% deleted, likes
and boosts counters with a long tail (most posts 0-3, a few hundreds), and 10% of the posts
remixes of an earlier post (quote_id set). Then `explore.rank` runs in-process, one session per
ranking as a request without the cache would, R times after a warm-up; printed: p50/p95/p99.
"""

from __future__ import annotations

import asyncio
import gc
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text

from instance.bench.timeline import _require_empty, percentiles, seed
from instance.content import explore
from instance.runtime import open_runtime
from instance.settings import load_settings
from instance.setup import write_config
from instance.storage.models import Base

SPAN = timedelta(days=10)
WARMUP = 5


def make_world(
    n_posts: int, end: datetime, n_accounts: int = 1000, seed_: int = 1
) -> dict[str, Any]:
    rng = random.Random(seed_)
    n_local = n_accounts // 10
    accounts = []
    for a in range(1, n_accounts + 1):
        local = a <= n_local
        domain = "" if local else f"remote{a % 50}.example"
        accounts.append(
            {
                "id": a,
                "username": f"u{a}",
                "username_key": f"u{a}",
                "domain": domain,
                "local": local,
                "uri": f"https://{domain or 'bench.example'}/users/u{a}",
            }
        )
    posts: list[dict[str, Any]] = []
    step = SPAN / max(1, n_posts)
    for i in range(n_posts):
        author = rng.randint(1, n_accounts)
        quote = rng.randrange(i) + 1 if i and rng.random() < 0.10 else None
        posts.append(
            {
                "id": i + 1,
                "public_id": f"e{i + 1}",
                "uri": f"{accounts[author - 1]['uri']}/p{i}",
                "account_id": author,
                "local": author <= n_local,
                "content": f"<p>post {i}</p>",
                "visibility": "public" if rng.random() < 0.9 else "unlisted",
                "published": end - SPAN + step * i,
                "to": [],
                "cc": [],
                "tags": [],
                "likes_count": int(rng.paretovariate(1.2)) - 1,
                "boosts_count": int(rng.paretovariate(1.6)) - 1,
                "quote_id": quote,
                "quote_uri": posts[quote - 1]["uri"] if quote else None,
                "deleted_at": end if rng.random() < 0.01 else None,
            }
        )
    return {"accounts": accounts, "posts": posts, "follows": [], "boosts": [], "mentions": []}


async def run(
    n_posts: int, repeats: int, database_url: str | None, directory: Path
) -> dict[str, Any]:
    write_config(directory, "bench.example", "https")
    settings = load_settings(directory / "config.toml")
    if database_url:
        settings.database.url = database_url
        await _require_empty(database_url)
    rt = await open_runtime(settings)
    try:
        end = datetime.now(UTC)
        world = make_world(n_posts, end)
        started = time.perf_counter()
        await seed(rt, world)
        seeded = time.perf_counter()
        remixes = sum(1 for p in world["posts"] if p["quote_id"])
        del world
        gc.collect()
        timings, shown, candidates = [], 0, 0
        for i in range(WARMUP + repeats):
            t0 = time.perf_counter()
            async with rt.session() as session:
                ranked = await explore.rank(session, now=end)
            if i >= WARMUP:
                timings.append(time.perf_counter() - t0)
            shown = len(ranked)
        async with rt.session() as session:
            candidates = len(await explore.rank(session, now=end, limit=explore.CANDIDATES * 10))
    finally:
        if database_url:
            async with rt.engine.begin() as conn:
                await conn.run_sync(Base.metadata.drop_all)
                await conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
        await rt.aclose()
    return {
        "backend": rt.engine.dialect.name,
        "posts": n_posts,
        "remixes": remixes,
        "candidates": candidates,
        "shown": shown,
        "repeats": repeats,
        "seed_s": round(seeded - started, 1),
        "rank": percentiles(timings),
    }


def bench(
    n_posts: int = 100_000, repeats: int = 100, database_url: str | None = None
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="dreamloom-bench-") as tmp:
        return asyncio.run(run(n_posts, repeats, database_url, Path(tmp)))


def table(r: dict[str, Any]) -> str:
    p = r["rank"]
    return (
        f"explore: {r['posts']:,} posts ({r['remixes']:,} remixes) on {r['backend']}, "
        f"seeded in {r['seed_s']} s; {r['candidates']} candidates, {r['shown']} shown; "
        f"{r['repeats']} rankings: p50 {p['p50_ms']} ms, p95 {p['p95_ms']} ms, "
        f"p99 {p['p99_ms']} ms\n"
    )
