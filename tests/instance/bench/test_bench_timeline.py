"""`dreamloom bench timeline` on a tiny instance: the shape of its output, no timings."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from typer.testing import CliRunner

from instance.bench.timeline import make_world, seed
from instance.cli import app
from instance.content import timelines
from instance.runtime import open_runtime
from instance.storage.models import Account

CASES = {f"{kind} {page}" for kind in ("home", "local", "federated", "account")
         for page in ("first", "deep")}  # fmt: skip


def test_bench_timeline_small_run() -> None:
    args = ["bench", "timeline", "--posts", "2000", "--accounts", "200", "--reads", "3", "--json"]
    answer = CliRunner().invoke(app, args)
    assert answer.exit_code == 0, answer.output
    result = json.loads(answer.output)
    assert (result["backend"], result["posts"], result["accounts"]) == ("sqlite", 2000, 200)
    assert result["follows"] > 300 and result["boosts"] > 0 and result["mentions"] > 0
    assert set(result["timelines"]) == CASES
    for row in result["timelines"].values():
        assert row["p50_ms"] <= row["p95_ms"] <= row["p99_ms"]
        assert 0 < row["entries"] <= 20
    assert result["timelines"]["home first"]["entries"] == 20


async def test_home_windows_give_the_unwindowed_page(settings, monkeypatch) -> None:
    """The home timeline looks back over growing windows; every page must equal the page of
    one query over all time (the bench's world: a year of posts, boosts and mentions)."""
    world = make_world(3000, 300, datetime.now(UTC))
    rt = await open_runtime(settings)
    try:
        await seed(rt, world)
        async with rt.session() as session:
            viewer = await session.get(Account, world["viewer"])
            for before in (None, *(datetime.now(UTC) - timedelta(days=d) for d in (1, 90, 364))):
                windowed = await timelines.read(
                    session, "home", viewer=viewer, before=before, now=rt.now()
                )
                monkeypatch.setattr(timelines, "HOME_WINDOWS", (None,))
                everything = await timelines.read(
                    session, "home", viewer=viewer, before=before, now=rt.now()
                )
                monkeypatch.undo()
                assert [(e.at, e.post.id) for e in windowed] == [
                    (e.at, e.post.id) for e in everything
                ]
                assert len(windowed) == 20 or before is not None
    finally:
        await rt.aclose()
