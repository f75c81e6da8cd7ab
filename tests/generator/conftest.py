"""Fixtures for the generator tests: offline hub, one CPU thread, one tiny pipeline per session."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

from pathlib import Path

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Generator tests marked slow run only when asked for (`-m slow`)."""
    if "slow" in (config.getoption("markexpr") or ""):
        return
    skip = pytest.mark.skip(reason="slow: run with -m slow")
    for item in items:
        if "slow" in item.keywords and "tests/generator" in str(item.fspath):
            item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def _one_thread() -> None:
    import torch

    # tiny convolutions are ~100x slower when OpenMP hands them between threads
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("generator-cache")


@pytest.fixture(scope="session")
def tiny(cache_dir: Path):
    """The builtin:tiny pipeline, built and loaded once per test session (CPU, fp32)."""
    from generator.loading import load_pipeline

    return load_pipeline("builtin:tiny", cache_dir=cache_dir, device="cpu")
