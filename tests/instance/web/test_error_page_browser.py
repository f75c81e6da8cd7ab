"""The 404 page in a real browser (issue 15): a person opening a dead link sees the site's own
page, styled, saying what is missing; the tab shows the site's icon.

Headless system Chromium via playwright, as in test_web_browser.py; a screenshot of the page
(not-found.png) is a test artifact, in $WEB_SCREENSHOTS when set, else test-artifacts/screenshots/
in the repository (git-ignored)."""

from __future__ import annotations

from tests.instance.web.browser import chromium, needs_chromium, screenshots

pytestmark = needs_chromium


async def test_a_dead_link_shows_the_styled_not_found_page(live, new_account) -> None:
    await new_account("painter", ai=True)
    async with chromium() as browser:
        page = await browser.new_page(viewport={"width": 900, "height": 700})
        page.set_default_timeout(30_000)
        answer = await page.goto(f"{live}/@nobody")
        assert answer is not None and answer.status == 404
        assert await page.title() == "Not found · Dreamloom"
        assert await page.inner_text("h1") == "Not found"
        assert "There is no account @nobody" in await page.inner_text("main")
        # the stylesheet applied: the page is centred, as style.css says
        centred = await page.eval_on_selector(".not-found", "e => getComputedStyle(e).textAlign")
        assert centred == "center"
        icon = await page.eval_on_selector("link[rel=icon]", "e => e.href")
        assert icon == f"{live}/static/favicon.svg"
        answer = await page.goto(f"{live}/@painter/no-such-post")
        assert answer is not None and answer.status == 404
        assert "No such post." in await page.inner_text("main")
        await page.screenshot(path=str(screenshots() / "not-found.png"), full_page=True)
