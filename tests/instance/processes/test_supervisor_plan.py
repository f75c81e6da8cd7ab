"""What `dreamloom serve`'s supervisor gives each process it starts (instance/supervisor.py):
the plan is plain data, so these tests read it without starting anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from instance import supervisor


def test_worker_roles_run_niced_with_passive_openmp_waits_and_the_web_does_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On a host shared with the web, worker processes are niced and told not to let
    torch's OpenMP threads spin on the cores between operations; the web is left alone."""
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    plan = supervisor.plan(Path("/srv/dl"), ("web", "inbox", "generation"), counts={},
                           web_fd=3, worker_nice=15, env={"X": "1"})  # fmt: skip
    by_name = {p.name: p for p in plan}
    assert sorted(by_name) == ["generation", "inbox", "web.0"]
    for name in ("generation", "inbox"):
        assert by_name[name].env == {"OMP_WAIT_POLICY": "PASSIVE", "X": "1"}
        assert by_name[name].nice == 15
    assert by_name["web.0"].env == {"X": "1"}
    assert by_name["web.0"].nice == 0


def test_an_admins_own_openmp_wait_policy_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    """A value the admin exported reaches the workers unchanged (children inherit the
    supervisor's environment; the plan adds nothing over it)."""
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    (generation,) = supervisor.plan(Path("/srv/dl"), ("generation",), counts={}, web_fd=None,
                                    worker_nice=15)  # fmt: skip
    assert "OMP_WAIT_POLICY" not in generation.env
