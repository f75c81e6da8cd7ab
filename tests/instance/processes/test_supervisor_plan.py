"""What `dreamloom serve`'s supervisor gives each process it starts (instance/supervisor.py):
the plan is plain data, so most of these tests read it without starting anything; the
autogroup test starts two sleeping children and reads their priorities from /proc."""

from __future__ import annotations

import os
import sys
import time
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


def test_a_worker_role_is_niced_in_its_own_autogroup_too(tmp_path: Path) -> None:
    """Each process runs in a session of its own, and with autogroups on, the kernel shares
    the CPU between sessions before it looks at a process's nice value: a worker started by
    the supervisor has its autogroup niced as well, or it would compete level with the web."""
    if not supervisor.AUTOGROUP.exists():
        pytest.skip("this kernel has no autogroups: the process's own nice value is enough")
    worker = supervisor.Process("inbox", [sys.executable, "-c", "import time; time.sleep(30)"],
                                nice=15)  # fmt: skip
    web = supervisor.Process("web.0", [sys.executable, "-c", "import time; time.sleep(30)"])
    running = supervisor.Supervisor([worker, web], grace_s=5)
    for process in (worker, web):
        running._start(process)
    try:
        assert worker.popen is not None and web.popen is not None
        worker_group = Path(f"/proc/{worker.popen.pid}/autogroup")
        web_group = Path(f"/proc/{web.popen.pid}/autogroup")
        for _ in range(100):  # the child sets it between fork and exec: wait for the exec
            if "sleep(30)" in Path(f"/proc/{worker.popen.pid}/cmdline").read_text("latin-1"):
                break
            time.sleep(0.05)
        assert worker_group.read_text().split()[-2:] == ["nice", "15"]
        assert web_group.read_text().split()[-2:] == ["nice", "0"]
        assert os.getpriority(os.PRIO_PROCESS, worker.popen.pid) == 15
    finally:
        running._stop_all()


def test_the_kernels_rate_limit_on_autogroup_changes_is_waited_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without privileges the kernel refuses a second autogroup change within 100 ms
    (EAGAIN) for the whole machine; roles started together each get theirs a little later."""
    tries: list[str] = []

    class Busy:
        def write_text(self, text: str) -> None:
            tries.append(text)
            if len(tries) < 3:
                raise BlockingIOError("try again")

    monkeypatch.setattr(supervisor, "AUTOGROUP_RETRY_S", 0.0)
    assert supervisor.set_autogroup_nice(15, Busy())  # type: ignore[arg-type]
    assert tries == ["15", "15", "15"]


def test_no_autogroup_file_is_no_error(tmp_path: Path) -> None:
    assert not supervisor.set_autogroup_nice(15, tmp_path / "missing" / "autogroup")
