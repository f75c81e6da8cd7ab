"""The Prometheus metrics every process counts, and how a scrape reads them.

Defined here, at the bottom of the instance's layers (this module imports nothing from
instance), so the inbox route, the delivery worker and the generation worker can all count
without importing one another. What they count:

    dreamloom_inbox_accepted_total{result}        POSTs answered 202: stored | dropped
    dreamloom_inbox_refused_total{reason,code}    POSTs refused, by a fixed reason vocabulary
    dreamloom_delivery_attempts_total{outcome}    delivered | retry | gone | permanent
    dreamloom_generation_batch_seconds            one batch, claim to last image written
    dreamloom_generation_batch_size               jobs per batch
    dreamloom_generation_job_seconds              one job, queued to image written
    dreamloom_gpu_memory_bytes{device,kind}       allocated | reserved, generation process

What is read from the database at scrape time (queue depths, delivery outcomes per domain)
is the /metrics route's (instance/routes/metrics.py), not a counter here.

**Several processes.** When PROMETHEUS_MULTIPROC_DIR is set in a process's environment
before this module is first imported, prometheus_client keeps every value in a file of that
directory (one per process and kind), and a scrape of any web process adds up all of them
(`exposition()`). The supervisor sets it to `<data_dir>/run/metrics` for every child, calls
`prepare_multiprocess_dir()` before starting them (values of a previous run would be added
in) and `process_exited(pid)` when a child ends (its gauges stop being reported; its counts
stay in the totals). Without the variable, one process: the default registry.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST

disable_created_metrics()  # type: ignore[no-untyped-call]  # no `_created` series: multiprocess mode has none either

INBOX_ACCEPTED = Counter(
    "dreamloom_inbox_accepted", "Inbox POSTs answered 202: stored, or dropped unhandled.",
    ["result"],
)  # fmt: skip
INBOX_REFUSED = Counter(
    "dreamloom_inbox_refused", "Inbox POSTs refused, by reason and HTTP status.",
    ["reason", "code"],
)  # fmt: skip
DELIVERY_ATTEMPTS = Counter(
    "dreamloom_delivery_attempts", "Delivery POSTs by outcome (this process and its peers).",
    ["outcome"],
)  # fmt: skip
GENERATION_BATCH_SECONDS = Histogram(
    "dreamloom_generation_batch_seconds", "Seconds one generation batch took, claim to images.",
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600),
)  # fmt: skip
GENERATION_BATCH_SIZE = Histogram(
    "dreamloom_generation_batch_size", "Jobs in one generation batch.",
    buckets=(1, 2, 4, 8, 16, 32, 64),
)  # fmt: skip
GENERATION_JOB_SECONDS = Histogram(
    "dreamloom_generation_job_seconds", "Seconds from a job's queueing to its image written.",
    buckets=(0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600),
)  # fmt: skip
GPU_MEMORY = Gauge(
    "dreamloom_gpu_memory_bytes", "CUDA memory held by the generation process's PyTorch.",
    ["device", "kind"], multiprocess_mode="liveall",
)  # fmt: skip


def multiprocess_dir() -> Path | None:
    """The shared metrics directory when this process counts for several, else None."""
    value = os.environ.get(MULTIPROC_ENV, "")
    return Path(value) if value else None


def prepare_multiprocess_dir(path: Path) -> None:
    """Create `path` and delete the value files a previous run left there (the supervisor,
    before it starts the children)."""
    path.mkdir(parents=True, exist_ok=True)
    for old in path.glob("*.db"):
        if old.is_file():
            old.unlink(missing_ok=True)


def process_exited(pid: int) -> None:
    """A child process ended: its live gauges are no longer reported (the supervisor)."""
    directory = multiprocess_dir()
    if directory is not None:
        multiprocess.mark_process_dead(pid, str(directory))  # type: ignore[no-untyped-call]


def exposition() -> bytes:
    """This process's metrics in the text format, or every process's when there are several."""
    directory = multiprocess_dir()
    if directory is None:
        return generate_latest(REGISTRY)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(directory))  # type: ignore[no-untyped-call]
    return generate_latest(registry)


def report_gpu_memory() -> None:
    """Set the GPU memory gauge, when this process has PyTorch with CUDA in use (the
    generation process, after a batch); torch is never imported just for this."""
    torch = sys.modules.get("torch")
    if torch is None:
        return
    try:
        if not torch.cuda.is_available() or not torch.cuda.is_initialized():
            return
        for index in range(torch.cuda.device_count()):
            device = str(index)
            GPU_MEMORY.labels(device, "allocated").set(torch.cuda.memory_allocated(index))
            GPU_MEMORY.labels(device, "reserved").set(torch.cuda.memory_reserved(index))
    except (RuntimeError, AttributeError):
        return  # a broken CUDA setup shows in the generation logs, not in a scrape
