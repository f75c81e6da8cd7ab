"""One 404/410 page for browsers (issue 15): a person who follows a dead link sees the site's
own page saying what is missing, with the right status; servers asking for activity JSON
keep getting JSON; and the site has an icon. Over real HTTP on loopback."""

from __future__ import annotations

import httpx
import pytest

from instance.content.posting import Draft, delete, publish
from instance.storage.models import Account, Post

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
ACTIVITY = {"Accept": "application/activity+json"}


@pytest.fixture
async def painter(new_account) -> Account:
    return await new_account("painter", ai=True)


async def a_post(runtime, painter: Account, *, deleted: bool = False) -> Post:
    async with runtime.session() as session:
        author = await session.get(Account, painter.id)
        post = await publish(session, runtime, author, Draft("a lighthouse"), federate=False)
        if deleted:
            await delete(session, runtime, author, post)
    return post


def assert_site_page(r: httpx.Response, status: int, says: str) -> None:
    """The site's own page: the status, HTML, the stylesheet and header, the message."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("text/html")
    assert '<link rel="stylesheet" href="/static/style.css">' in r.text
    assert 'class="brand"' in r.text and 'class="not-found"' in r.text
    assert says in r.text, r.text


async def test_a_missing_account_says_it_does_not_exist(live: str, painter: Account) -> None:
    """/@nobody: 404, "There is no account @nobody", never the home page's "No accounts yet"
    (there is an account)."""
    async with httpx.AsyncClient() as http:
        r = await http.get(f"{live}/@nobody", headers=BROWSER)
    assert_site_page(r, 404, "There is no account @nobody on this instance.")
    assert "No accounts yet" not in r.text


async def test_a_missing_post_is_a_page_for_browsers_json_for_servers(
    live: str, painter: Account
) -> None:
    """A post id that does not exist: the 404 page for a browser, JSON for activity Accept."""
    url = f"{live}/@painter/doesnotexist"
    async with httpx.AsyncClient() as http:
        page = await http.get(url, headers=BROWSER)
        activity = await http.get(url, headers=ACTIVITY)
    assert_site_page(page, 404, "No such post.")
    assert activity.status_code == 404
    assert activity.headers["content-type"].startswith("application/")
    assert activity.json() == {"error": "no such post"}


async def test_a_deleted_post_is_the_same_page_with_410(runtime, live, painter) -> None:
    """A deleted post: 410 and the same page style for browsers; the Tombstone for servers."""
    post = await a_post(runtime, painter, deleted=True)
    async with httpx.AsyncClient() as http:
        page = await http.get(post.url, headers=BROWSER)
        activity = await http.get(post.url, headers=ACTIVITY)
    assert_site_page(page, 410, "Gone")
    assert activity.status_code == 410 and activity.json()["type"] == "Tombstone"


async def test_an_unknown_address_gets_the_same_page(live: str) -> None:
    """Any unknown URL: the same page for a browser; a non-browser keeps the plain answer."""
    async with httpx.AsyncClient() as http:
        page = await http.get(f"{live}/no/such/thing", headers=BROWSER)
        plain = await http.get(f"{live}/no/such/thing", headers={"Accept": "*/*"})
    assert_site_page(page, 404, "There is nothing at this address.")
    assert plain.status_code == 404 and "not-found" not in plain.text


async def test_existing_pages_are_untouched(runtime, live: str, painter: Account) -> None:
    """A post and a profile that exist are served as before (200, their own content)."""
    post = await a_post(runtime, painter)
    async with httpx.AsyncClient() as http:
        shown = await http.get(post.url, headers=BROWSER)
        profile = await http.get(f"{live}/@painter", headers=BROWSER)
    assert shown.status_code == 200 and "a lighthouse" in shown.text
    assert profile.status_code == 200 and "not-found" not in profile.text


async def test_the_site_has_an_icon(live: str, painter: Account) -> None:
    """/favicon.ico is an SVG, and every page links it."""
    async with httpx.AsyncClient() as http:
        icon = await http.get(f"{live}/favicon.ico")
        linked = await http.get(f"{live}/static/favicon.svg")
        home = await http.get(f"{live}/", headers=BROWSER)
    assert icon.status_code == 200 and icon.headers["content-type"] == "image/svg+xml"
    assert icon.content.startswith(b"<svg") and icon.content == linked.content
    assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in home.text
