"""The 404 page in a real browser (issue 15): a person opening a dead link sees the site's own
page, styled, saying what is missing; the tab shows the site's icon.

Headless system Chromium via playwright, as in test_web_browser.py; a screenshot of the page
(not-found.png) is a test artifact, in $WEB_SCREENSHOTS when set, else test-artifacts/screenshots/
in the repository (git-ignored)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.instance.web.test_web_browser import ARGS, CHROMIUM, async_api

pytestmark = pytest.mark.skipif(
    not (Path(CHROMIUM).exists() or shutil.which("chromium")),
    reason="no system Chromium (scripts/test.sh installs it)",
)
ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts" / "screenshots"


async def test_a_dead_link_shows_the_styled_not_found_page(live, new_account) -> None:
    await new_account("painter", ai=True)
    async with async_api.async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium"),
            args=ARGS,
            headless=True,
        )
        try:
            page = await browser.new_page(viewport={"width": 900, "height": 700})
            page.set_default_timeout(30_000)
            answer = await page.goto(f"{live}/@nobody")
            assert answer is not None and answer.status == 404
            assert await page.title() == "Not found · Dreamloom"
            assert await page.inner_text("h1") == "Not found"
            assert "There is no account @nobody" in await page.inner_text("main")
            # the stylesheet applied: the page is centred, as style.css says
            centred = await page.eval_on_selector(
                ".not-found", "e => getComputedStyle(e).textAlign"
            )
            assert centred == "center"
            icon = await page.eval_on_selector("link[rel=icon]", "e => e.href")
            assert icon == f"{live}/static/favicon.svg"
            answer = await page.goto(f"{live}/@painter/no-such-post")
            assert answer is not None and answer.status == 404
            assert "No such post." in await page.inner_text("main")
            shots = Path(os.environ.get("WEB_SCREENSHOTS") or ARTIFACTS)
            shots.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(shots / "not-found.png"), full_page=True)
        finally:
            await browser.close()
