"""docs/interop.md changes only when results do: the same outcomes on another day leave the
tracked file, and so a CI checkout, untouched (it used to be rewritten for its date)."""

from __future__ import annotations

from tests.interop.conftest import undated


def test_the_run_date_alone_is_not_a_change() -> None:
    before = "Last full run: 2026-11-30 — 80 of 80 capability checks pass.\n| a | ✅ pass |\n"
    same = "Last full run: 2026-12-02 — 80 of 80 capability checks pass.\n| a | ✅ pass |\n"
    worse = "Last full run: 2026-12-02 — 79 of 80 capability checks pass.\n| a | ❌ FAIL |\n"
    assert undated(before) == undated(same)
    assert undated(before) != undated(worse)
