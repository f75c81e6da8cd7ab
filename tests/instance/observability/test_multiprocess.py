"""Several processes, one scrape: with PROMETHEUS_MULTIPROC_DIR set, every process's counts
are added up by whichever process answers /metrics (instance/metrics.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from instance import metrics
from tests.instance.observability.scrape import scrape, value

COUNTING_CHILD = """
import os, sys
from instance.metrics import DELIVERY_ATTEMPTS, GPU_MEMORY
DELIVERY_ATTEMPTS.labels("delivered").inc(int(sys.argv[1]))
GPU_MEMORY.labels("0", "allocated").set(1024)
print(os.getpid())
"""


def run_child(directory: Path, count: int) -> int:
    """A separate Python process that counts `count` deliveries and sets a gauge, with the
    multiprocess directory in its environment; returns its pid."""
    env = {**os.environ, metrics.MULTIPROC_ENV: str(directory)}
    done = subprocess.run(
        [sys.executable, "-c", COUNTING_CHILD, str(count)],
        env=env, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return int(done.stdout.strip())


@pytest.fixture
def multiproc_dir(tmp_path, monkeypatch) -> Path:
    directory = tmp_path / "run" / "metrics"
    metrics.prepare_multiprocess_dir(directory)
    monkeypatch.setenv(metrics.MULTIPROC_ENV, str(directory))
    return directory


async def test_counters_of_two_processes_are_added_up(client, multiproc_dir) -> None:
    """Two worker processes count deliveries; /metrics, answered by a third, shows the sum;
    a process that exited keeps its counts but its gauge goes once it is marked dead."""
    first = run_child(multiproc_dir, 3)
    second = run_child(multiproc_dir, 4)
    assert first != second
    text = await scrape(client)
    assert value(text, "dreamloom_delivery_attempts_total", outcome="delivered") == 7
    gauge = "dreamloom_gpu_memory_bytes"
    assert value(text, gauge, device="0", kind="allocated", pid=str(first)) == 1024
    metrics.process_exited(first)
    text = await scrape(client)
    assert value(text, "dreamloom_delivery_attempts_total", outcome="delivered") == 7
    assert value(text, gauge, device="0", kind="allocated", pid=str(first)) == 0
    assert value(text, gauge, device="0", kind="allocated", pid=str(second)) == 1024
    assert value(text, "dreamloom_database_up") == 1  # the database part is still there


async def test_prepare_empties_what_a_previous_run_left(client, multiproc_dir) -> None:
    """The supervisor's preparation deletes a previous run's values, so they are not added
    to this run's."""
    run_child(multiproc_dir, 5)
    metrics.prepare_multiprocess_dir(multiproc_dir)
    assert list(multiproc_dir.glob("*.db")) == []
    text = await scrape(client)
    assert value(text, "dreamloom_delivery_attempts_total", outcome="delivered") == 0
