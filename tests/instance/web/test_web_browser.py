"""One real browser against the real server: log in, prompt, wait for the image, like it.

Headless Chromium from the system (/usr/bin/chromium, installed by scripts/test.sh; never
`playwright install`), driven by the `playwright` package, against the `live` fixture
(uvicorn on 127.0.0.1) with the generation worker running beside it on builtin:tiny.
Screenshots of the compose and post pages are test artifacts (tests/instance/web/browser.py).
"""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from instance.generation.worker import GenerationWorker
from instance.storage.models import Post
from tests.instance.generation_fixtures import gen_settings, tiny_cache  # noqa: F401
from tests.instance.web.browser import chromium, needs_chromium, screenshots
from tests.instance.web_helpers import PASSWORD

pytestmark = needs_chromium


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
    stop = asyncio.Event()
    gpu = asyncio.create_task(generation_worker(runtime, stop))
    try:
        async with chromium() as browser:
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
            await page.screenshot(path=str(screenshots() / "compose.png"), full_page=True)
            await page.click("form.compose button")
            await page.wait_for_url(f"{live}/jobs/*")

            image = page.locator("article.post img")  # the page refreshes itself until done
            await image.wait_for(state="visible")
            loaded = await image.evaluate("img => img.complete && img.naturalWidth > 0")
            assert loaded, "the image did not load"
            await page.get_by_role("button", name="♡ Like").click()
            await page.get_by_role("button", name="♥ Liked").wait_for()
            assert "1 likes" in await page.locator("article.post .meta").inner_text()

            await page.click("article.post .meta a")
            await page.locator("article.post img").wait_for(state="visible")
            await page.screenshot(path=str(screenshots() / "post.png"), full_page=True)
    finally:
        stop.set()
        await gpu
    async with runtime.sessions() as s:
        post = await s.scalar(select(Post))
    assert post.likes_count == 1 and post.recipe["prompt"] == "a lighthouse at dusk"
