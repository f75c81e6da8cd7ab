"""Explore and a post's lineage tree in a real browser (issue 15), screenshotted.

Headless system Chromium via playwright, as in test_web_browser.py, against the `live` server.
The screenshots (explore.png, lineage.png) are test artifacts: they are written to
$WEB_SCREENSHOTS when set, else to test-artifacts/screenshots/ in the repository (git-ignored).
"""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from PIL import Image

from instance.content import explore
from instance.content.posting import Draft, publish
from instance.storage.models import Account, MediaAttachment, Post
from tests.instance.web.browser import chromium, needs_chromium, screenshots

pytestmark = needs_chromium


def _png(hue: int) -> bytes:
    """A 256x256 gradient picture, a different colour per post."""
    img = Image.new("RGB", (256, 256))
    img.putdata(
        [
            ((x + hue) % 256, (y * 2 + hue) % 256, (x + y + 3 * hue) % 256)
            for y in range(256)
            for x in range(256)
        ]
    )
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


async def _picture(s, runtime, author: Account, hue: int) -> MediaAttachment:
    name = f"screenshot{hue:012d}.png"  # the shape of our generated names
    runtime.settings.media_path.mkdir(parents=True, exist_ok=True)
    (runtime.settings.media_path / name).write_bytes(_png(hue))
    media = MediaAttachment(
        account_id=author.id, file_name=name, width=256, height=256, description=f"a picture {hue}"
    )
    s.add(media)
    await s.flush()
    return media


@pytest.fixture
async def gallery(runtime, new_account):
    """A root picture, a remix of it, remixes of the remix (one remote), and a popular
    older post: Explore has something to rank and the remix has a tree."""
    explore.forget_cache()
    painter = await new_account("painter", ai=True)
    bob = await new_account("bob")
    async with runtime.session() as s:
        painter, bob = await s.get(Account, painter.id), await s.get(Account, bob.id)

        async def make(who, prompt, hue, of=None, hours=0.0, likes=0):
            post = await publish(
                s,
                runtime,
                who,
                Draft(
                    text=prompt,
                    media=[await _picture(s, runtime, who, hue)],
                    recipe={"prompt": prompt},
                    quote=of,
                    quote_state="accepted" if of else None,
                ),
            )
            post.published = runtime.now() - timedelta(hours=hours)
            post.likes_count = likes
            return post

        root = await make(painter, "a lighthouse at dusk", 10, hours=20, likes=30)
        remix = await make(bob, "the lighthouse in a snowstorm", 90, of=root, hours=5, likes=4)
        await make(painter, "the snowstorm, in watercolour", 160, of=remix, hours=2)
        for i in range(4):
            await make(bob, f"quiet harbour {i}", 200 + 13 * i, hours=1 + i)
        mo = Account(
            username="mo",
            username_key="mo",
            domain="m.example",
            local=False,
            uri="https://m.example/users/mo",
        )
        s.add(mo)
        await s.flush()
        s.add(
            Post(
                uri="https://m.example/notes/r1",
                url="https://m.example/@mo/r1",
                account_id=mo.id,
                local=False,
                visibility="public",
                quote_id=remix.id,
                quote_uri=remix.uri,
                content="<p>mo's remix</p>",
                recipe={"prompt": "the snowstorm at night, from m.example"},
            )
        )
        await s.flush()
        return {"remix_url": remix.url}


async def test_explore_and_a_lineage_tree_in_a_browser(live, gallery) -> None:
    """Explore shows the ranked pictures (the liked root first) with the header link; the
    remix's page shows root -> this post (highlighted) -> its remixes, the remote one a link."""
    async with chromium() as browser:
        page = await browser.new_page(viewport={"width": 1000, "height": 800})
        page.set_default_timeout(30_000)
        await page.goto(f"{live}/local")
        await page.click("header >> text=Explore")
        assert page.url == f"{live}/explore"
        assert await page.inner_text("h1") == "Explore"
        # a grid of pictures: the order is read from the tiles' alt text; the much liked
        # lighthouse ("a picture 10") ranks above the unliked, newer harbour 3 ("... 239")
        alts = await page.eval_on_selector_all("main .tile img", "imgs => imgs.map(i => i.alt)")
        assert alts.index("a picture 10") < alts.index("a picture 239")
        for _ in range(20):  # scroll through, so lazily loaded pictures load too
            await page.mouse.wheel(0, 600)
            await page.wait_for_timeout(50)
        await page.wait_for_load_state("networkidle")
        loaded = await page.eval_on_selector_all(
            "main img", "imgs => imgs.filter(i => i.complete && i.naturalWidth > 0).length"
        )
        assert loaded >= 7  # every picture arrived
        await page.screenshot(path=str(screenshots() / "explore.png"), full_page=True)

        await page.goto(gallery["remix_url"])
        tree = page.locator("section.lineage")
        text = await tree.inner_text()
        assert text.index("a lighthouse at dusk") < text.index("This post")
        assert text.index("This post") < text.index("the snowstorm, in watercolour")
        current = page.locator(".lineage-tree li.current > strong")
        background = await current.evaluate("e => getComputedStyle(e).backgroundColor")
        assert background not in ("rgba(0, 0, 0, 0)", "transparent")  # highlighted
        remote = page.locator('.lineage-tree a[href="https://m.example/@mo/r1"]')
        assert await remote.count() == 1
        await page.screenshot(path=str(screenshots() / "lineage.png"), full_page=True)
