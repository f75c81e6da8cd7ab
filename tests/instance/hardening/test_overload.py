"""Overload: ten times what the default deployment sustains, and nothing accepted is lost.

`dreamloom bench overload` (instance/bench/overload.py) runs the default `dreamloom serve`
(every role, default allowances, SQLite) in a child process, measures the rate its inbox
sustains, then sends a burst open loop at ten times that rate. Whatever the
machine's speed, the inbox must stay an honest queue: it answers 202, or 503/429 with a
Retry-After that tells the sender when to come back (every server retries on those); every
activity it accepted has its row and gets handled; none it refused is half-stored.
"""

from __future__ import annotations

from instance.bench.overload import bench


def test_ten_times_the_sustained_rate_is_refused_with_retry_after_and_loses_nothing() -> None:
    r = bench(factor=10, calibrate=300, burst=3000, actors=10)

    assert r["calibration"] == {"202": 300}
    assert set(r["codes"]) <= {"202", "429", "503"}, r["codes"]
    refused = r["codes"].get("503", 0) + r["codes"].get("429", 0)
    assert refused > 0, f"the burst never overloaded: {r}"
    assert r["accepted"] > 0
    assert r["refusals_without_retry_after"] == 0
    assert (r["lost"], r["stored_refused"]) == (0, 0)
    assert r["handled_within_s"] is not None
    assert r["accepted_by_status"] == {"done": r["accepted"]}
