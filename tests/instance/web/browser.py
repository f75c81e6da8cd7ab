"""What the browser tests share: the system Chromium (/usr/bin/chromium, installed by
scripts/test.sh; never `playwright install`), the flags it needs on a machine with a closed
network, and where screenshots go: $WEB_SCREENSHOTS when set, else test-artifacts/screenshots/
in the repository (git-ignored), kept as test artifacts."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts" / "screenshots"


def _executable() -> str | None:
    return CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")


# scripts/test.sh installs both; in CI (CI=true) their absence is a failure, never a skip
if os.environ.get("CI") and _executable() is None:
    raise RuntimeError("no system Chromium: scripts/test.sh installs the chromium package")
async_api = (
    pytest.importorskip("playwright.async_api")
    if not os.environ.get("CI")
    else (__import__("playwright.async_api", fromlist=["async_api"]))
)
needs_chromium = pytest.mark.skipif(
    _executable() is None, reason="no system Chromium (scripts/test.sh installs it)"
)


def screenshots() -> Path:
    where = Path(os.environ.get("WEB_SCREENSHOTS") or ARTIFACTS)
    where.mkdir(parents=True, exist_ok=True)
    return where


@asynccontextmanager
async def chromium() -> AsyncIterator[Any]:
    """A headless system Chromium, closed afterwards."""
    async with async_api.async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=_executable(), args=ARGS, headless=True)
        try:
            yield browser
        finally:
            await browser.close()
