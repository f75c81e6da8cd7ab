"""Fixtures for the generation tests: one builtin:tiny model cache per session, CPU, one thread.

The tiny model is built once into a session directory, and every test instance's
`data/cache` is a symlink to it, so each test pays only a ~50 ms load from disk. Images are
32x32 with 1-2 steps: tens of milliseconds each.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from instance.settings import Settings
from tests.instance_fixtures import make_settings

GEN = {"model": "builtin:tiny", "device": "cpu", "min_free_disk_mb": 1, "max_queue": 8}
TINY_ENV = {
    "DREAMLOOM_GENERATOR_DEVICE": "cpu",
    "DREAMLOOM_GENERATOR_MIN_FREE_DISK_MB": "1",
}


@pytest.fixture(scope="session")
def tiny_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Dreamloom cache directory holding the saved builtin:tiny pipeline."""
    import torch

    from generator.tiny import ensure_tiny_pipeline

    torch.set_num_threads(1)  # tiny convolutions are ~100x slower across threads
    cache = tmp_path_factory.mktemp("dreamloom-cache")
    ensure_tiny_pipeline(cache / "models")
    return cache


def share_cache(settings: Settings, cache: Path) -> None:
    """Point the instance's cache directory at the session's."""
    settings.data_path.mkdir(parents=True, exist_ok=True)
    link = settings.cache_path
    if not link.exists():
        link.symlink_to(cache, target_is_directory=True)


@pytest.fixture
def gen_settings(tmp_path: Path, tiny_cache: Path) -> Callable[..., Settings]:
    def make(**generator: Any) -> Settings:
        settings = make_settings(tmp_path / "instance", generator={**GEN, **generator})
        share_cache(settings, tiny_cache)
        return settings

    return make


class Clock:
    """A runtime clock that tests move by hand."""

    def __init__(self) -> None:
        self.now = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def run_sync(coro: Any) -> Any:
    return asyncio.run(coro)


async def run_generation(rt: Any) -> None:
    """Run the real generation worker until nothing is left to do."""
    from instance.generation.worker import GenerationWorker

    worker = GenerationWorker(rt)
    try:
        while await worker.run_once():
            pass
    finally:
        await worker.aclose()
