"""One real browser against the real server: log in, prompt, wait for the image, like it.

Headless Chromium from the system (/usr/bin/chromium, installed by scripts/test.sh; never
`playwright install`), driven by the `playwright` package, against the `live` fixture
(uvicorn on 127.0.0.1) with the generation worker running beside it on builtin:tiny.
Set WEB_SCREENSHOTS=/some/dir to keep screenshots of the compose page and the post page.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from instance.generation.worker import GenerationWorker
from instance.storage.models import Post
from tests.instance.generation_fixtures import gen_settings, tiny_cache  # noqa: F401
from tests.instance.web_helpers import PASSWORD

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip

# scripts/test.sh installs both; in CI (CI=true) their absence is a failure, never a skip
if os.environ.get("CI") and not (Path(CHROMIUM).exists() or shutil.which("chromium")):
    raise RuntimeError("no system Chromium: scripts/test.sh installs the chromium package")
async_api = (
    pytest.importorskip("playwright.async_api")
    if not os.environ.get("CI")
    else (__import__("playwright.async_api", fromlist=["async_api"]))
)
pytestmark = pytest.mark.skipif(
    not (Path(CHROMIUM).exists() or shutil.which("chromium")),
    reason="no system Chromium (scripts/test.sh installs it)",
)


@pytest.fixture
def settings(gen_settings):  # noqa: F811
    return gen_settings(width=64, height=64, steps=1)


async def generation_worker(rt, stop: asyncio.Event) -> None:
    worker = GenerationWorker(rt)
    try:
        while not stop.is_set():
            if not await worker.run_once():
                await asyncio.sleep(0.05)
    finally:
        await worker.aclose()


async def test_log_in_prompt_see_the_image_and_like_it(runtime, live, new_account):
    await new_account("alice", password=PASSWORD)
    shots = os.environ.get("WEB_SCREENSHOTS")
    stop = asyncio.Event()
    gpu = asyncio.create_task(generation_worker(runtime, stop))
    try:
        async with async_api.async_playwright() as pw:
            browser = await pw.chromium.launch(
                executable_path=CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium"),
                args=ARGS,
                headless=True,
            )
            try:
                page = await browser.new_page(viewport={"width": 900, "height": 1000})
                page.set_default_timeout(30_000)
                await page.goto(f"{live}/login")
                await page.fill("input[name=username]", "alice")
                await page.fill("input[name=password]", PASSWORD)
                await page.click("form[action='/login'] button")
                await page.wait_for_url(f"{live}/home")

                await page.goto(f"{live}/compose")
                await page.fill("textarea[name=prompt]", "a lighthouse at dusk")
                await page.fill("input[name=negative]", "fog")
                if shots:
                    await page.screenshot(path=f"{shots}/compose.png", full_page=True)
                await page.click("form.compose button")
                await page.wait_for_url(f"{live}/jobs/*")

                image = page.locator("article.post img")  # the page refreshes itself until done
                await image.wait_for(state="visible")
                loaded = await image.evaluate("img => img.complete && img.naturalWidth > 0")
                assert loaded, "the image did not load"
                await page.get_by_role("button", name="♡ Like").click()
                await page.get_by_role("button", name="♥ Liked").wait_for()
                assert "1 likes" in await page.locator("article.post .meta").inner_text()

                if shots:
                    await page.click("article.post .meta a")
                    await page.locator("article.post img").wait_for(state="visible")
                    await page.screenshot(path=f"{shots}/post.png", full_page=True)
            finally:
                await browser.close()
    finally:
        stop.set()
        await gpu
    async with runtime.sessions() as s:
        post = await s.scalar(select(Post))
    assert post.likes_count == 1 and post.recipe["prompt"] == "a lighthouse at dusk"
