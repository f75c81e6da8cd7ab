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


def test_bench_inbox_names_an_unknown_deployment():
    with pytest.raises(UserError, match="unknown deployment 'gpu'"):
        bench(1, 1, deployments=["gpu"])
