"""The OAuth consent page in a real browser (Debian's Chromium, driven by Playwright), the
way a person authorises an app such as Elk or Ivory:

the app sends the browser to /oauth/authorize; the person logs in, lands back on the consent
page, sees the app and its scopes, clicks Authorise; the browser follows the redirect to the
app's own callback (here a loopback server of the test) with the code and the state. This is
where the page's Content-Security-Policy matters: browsers apply `form-action` to the
redirect after a form, so a policy naming only 'self' would strand the person on our page.
Afterwards she revokes the app on the authorised apps page, and its token stops working.
Screenshots of the consent page and the authorised apps page are test artifacts.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from tests.instance.web.browser import chromium, needs_chromium, screenshots
from tests.instance.web_helpers import PASSWORD, fast_hasher  # noqa: F401
from tests.instance_fixtures import free_port

pytestmark = [needs_chromium, pytest.mark.usefixtures("fast_hasher")]


@pytest.fixture
async def callback() -> AsyncIterator[tuple[str, list[str]]]:
    """A loopback HTTP server standing in for the app: it records each request line."""
    seen: list[str] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        line = (await reader.readline()).decode()
        seen.append(line.split(" ")[1] if " " in line else line)
        while (await reader.readline()) not in (b"\r\n", b""):
            pass
        body = b"<!doctype html><title>app</title><p>signed in</p>"
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (len(body), body))  # fmt: skip
        await writer.drain()
        writer.close()

    port = free_port()
    server = await asyncio.start_server(answer, "127.0.0.1", port)
    try:
        yield f"http://127.0.0.1:{port}/callback", seen
    finally:
        server.close()
        await server.wait_closed()


async def test_a_person_authorises_an_app_in_the_browser(runtime, live, new_account, callback):
    """Log in from the consent page, approve, and the browser arrives at the app's callback
    with a code that the app exchanges for a working token."""
    redirect, seen = callback
    await new_account("alice", password=PASSWORD)
    async with httpx.AsyncClient(base_url=live) as http:
        app = (await http.post("/api/v1/apps", data={
            "client_name": "Browser app", "redirect_uris": redirect,
            "scopes": "read write"})).json()  # fmt: skip
        query = urlencode({"response_type": "code", "client_id": app["client_id"], "state": "s-42",
                           "redirect_uri": redirect, "scope": "read write"})  # fmt: skip
        async with chromium() as browser:
            page = await browser.new_page(viewport={"width": 800, "height": 900})
            page.set_default_timeout(20_000)
            await page.goto(f"{live}/oauth/authorize?{query}")
            await page.wait_for_url(f"{live}/login**")
            await page.fill("input[name=username]", "alice")
            await page.fill("input[name=password]", PASSWORD)
            await page.click("form[action='/login'] button")
            await page.wait_for_url(f"{live}/oauth/authorize**")
            assert "Browser app" in await page.inner_text("main")
            assert "write" in await page.inner_text("ul.scopes")
            await page.screenshot(path=str(screenshots() / "oauth-consent.png"), full_page=True)
            await page.click("button[value=approve]")
            await page.wait_for_url(f"{redirect}**")
            assert "signed in" in await page.inner_text("body")
            arrived = parse_qs(urlsplit(next(p for p in seen if p.startswith("/callback"))).query)
            assert arrived["state"] == ["s-42"]
            token = await http.post("/oauth/token", data={
                "grant_type": "authorization_code", "code": arrived["code"][0],
                "redirect_uri": redirect, "client_id": app["client_id"],
                "client_secret": app["client_secret"]})  # fmt: skip
            assert token.status_code == 200, token.text
            auth = {"Authorization": f"Bearer {token.json()['access_token']}"}
            me = await http.get("/api/v1/apps/verify_credentials", headers=auth)
            assert me.json()["name"] == "Browser app"

            # later, she takes it back on the authorised apps page
            await page.goto(f"{live}/oauth/authorized_applications")
            assert "Browser app" in await page.inner_text("main")
            await page.screenshot(path=str(screenshots() / "oauth-authorized-apps.png"))
            await page.click("ul.authorized-apps button")
            await page.wait_for_url(f"{live}/oauth/authorized_applications")
            assert "No app can use your account" in await page.inner_text("main")
        gone = await http.get("/api/v1/apps/verify_credentials", headers=auth)
        assert gone.status_code == 401
