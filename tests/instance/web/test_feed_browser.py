"""The front page grid and a profile in a real browser (issue 15), screenshotted.

Headless system Chromium via playwright (as test_web_browser.py). The browser must lay the
tiles out several to a row, load every picture, pick a rendition from the srcset (not the
full image) for a small tile, and show the AI label on each. The screenshots (feed-home.png,
feed-profile.png) are test artifacts: written to $WEB_SCREENSHOTS when set, else to
test-artifacts/screenshots/ in the repository (git-ignored).
"""

from __future__ import annotations

import io

import pytest
from PIL import Image

from instance.content.posting import Draft, publish
from instance.storage.models import Account, MediaAttachment
from tests.instance.web.browser import chromium, needs_chromium, screenshots

pytestmark = needs_chromium
SIZE = 768  # wider than both renditions


def _png(hue: int) -> bytes:
    """A SIZE x SIZE picture of soft colour bands, a different colour per post."""
    small = Image.new("RGB", (64, 64))
    small.putdata([((x * 4 + hue) % 256, (y * 3 + hue // 2) % 256, (x + y + 3 * hue) % 256)
                   for y in range(64) for x in range(64)])  # fmt: skip
    out = io.BytesIO()
    small.resize((SIZE, SIZE), Image.Resampling.BICUBIC).save(out, "PNG")
    return out.getvalue()


@pytest.fixture
async def posts(runtime, new_account):
    painter = await new_account("painter", ai=True, display_name="The Painter")
    async with runtime.session() as s:
        painter = await s.get(Account, painter.id)
        runtime.settings.media_path.mkdir(parents=True, exist_ok=True)
        for i, prompt in enumerate(["a lighthouse at dusk", "a harbour in fog", "red kites",
                                    "a snowy orchard", "a desert at noon", "tide pools",
                                    "a night market", "an old bridge"]):  # fmt: skip
            name = f"feedshot{i:014d}.png"
            (runtime.settings.media_path / name).write_bytes(_png(37 * i))
            alt = f"AI-generated image: {prompt}"
            media = MediaAttachment(account_id=painter.id, file_name=name, width=SIZE,
                                    height=SIZE, description=alt)  # fmt: skip
            s.add(media)
            await s.flush()
            post = await publish(s, runtime, painter, Draft(text=prompt, media=[media],
                                                            recipe={"prompt": prompt}))  # fmt: skip
            post.likes_count = i
    return 8


async def test_the_front_page_grid_and_a_profile_in_a_browser(live, posts) -> None:
    async with chromium() as browser:
        page = await browser.new_page(viewport={"width": 900, "height": 1100})
        page.set_default_timeout(30_000)
        for path, shot in (("/", "feed-home.png"), ("/@painter", "feed-profile.png")):
            answer = await page.goto(f"{live}{path}")
            assert answer is not None and answer.status == 200
            tiles = page.locator("article.tile")
            assert await tiles.count() == posts
            # several tiles to a row: the first three share a top edge
            tops = await page.eval_on_selector_all(
                "article.tile", "els => els.slice(0, 3).map(e => e.getBoundingClientRect().top)"
            )
            assert len(set(tops)) == 1, tops
            # scroll through so the lazy ones load too, then every picture is loaded
            await page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
            await page.wait_for_function(
                "[...document.querySelectorAll('article.tile img')]"
                ".every(i => i.complete && i.naturalWidth > 0)"
            )
            await page.evaluate("window.scrollTo(0, 0)")
            chosen = await page.eval_on_selector_all(
                "article.tile img", "els => els.map(e => e.currentSrc)"
            )
            # a ~14rem tile at 1x takes the 320 px rendition, not the 768 px original
            assert all(src.endswith(".w320.webp") for src in chosen), chosen
            labels = await page.eval_on_selector_all(
                "article.tile .badge", "els => els.map(e => e.textContent)"
            )
            assert labels == ["AI-generated"] * posts
            square = await page.eval_on_selector(
                "article.tile .pic",
                "e => Math.abs(e.clientWidth - e.clientHeight) <= 1",
            )
            assert square
            # the author's name is shown whole on each tile, not cut to an ellipsis
            whole = await page.eval_on_selector_all(
                "article.tile .who", "els => els.map(e => e.scrollWidth <= e.clientWidth)"
            )
            assert whole == [True] * posts
            assert await page.inner_text("article.tile .who") == "The Painter"
            await page.screenshot(path=str(screenshots() / shot), full_page=True)
