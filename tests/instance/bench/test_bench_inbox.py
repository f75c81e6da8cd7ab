"""`dreamloom bench inbox` end to end on a small load: every request accepted and stored."""

from __future__ import annotations

import pytest

from instance.bench.inbox import bench


@pytest.mark.parametrize("generator", ["raw", "httpx"])
def test_bench_inbox_small_run(generator):
    result = bench(20, 4, generator)
    assert result["codes"] == {"202": 20}
    assert (result["stored_rows"], result["lost"], result["key_fetches"]) == (20, 0, 1)
    assert result["accepted_per_s"] > 0
    assert result["p50_ms"] <= result["p95_ms"] <= result["p99_ms"]
