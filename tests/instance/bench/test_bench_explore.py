"""`dreamloom bench explore` on a tiny instance: the shape of its output, no timings."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from instance.cli import app


def test_bench_explore_small_run() -> None:
    """It seeds posts with remixes, ranks them and reports ordered percentiles; the candidate
    cap (1,000) binds once more posts than that fall in the window."""
    answer = CliRunner().invoke(
        app, ["bench", "explore", "--posts", "2000", "--repeats", "3", "--json"]
    )
    assert answer.exit_code == 0, answer.output
    result = json.loads(answer.output)
    assert (result["backend"], result["posts"], result["repeats"]) == ("sqlite", 2000, 3)
    assert result["remixes"] > 0 and result["candidates"] == 1000 and result["shown"] == 60
    rank = result["rank"]
    assert 0 < rank["p50_ms"] <= rank["p95_ms"] <= rank["p99_ms"]


def test_bench_explore_refuses_a_database_that_is_not_empty(tmp_path) -> None:
    """A --database-url with tables in it is refused with one error line (nothing dropped)."""
    import sqlite3

    db = tmp_path / "full.db"
    sqlite3.connect(db).execute("CREATE TABLE keep (x)").connection.commit()
    answer = CliRunner().invoke(
        app, ["bench", "explore", "--posts", "10", "--database-url", f"sqlite+aiosqlite:///{db}"]
    )
    assert (
        answer.exit_code == 1 and "error: --database-url must be an empty database" in answer.output
    )
    assert sqlite3.connect(db).execute("SELECT name FROM sqlite_master").fetchall() == [("keep",)]
