"""CSRF: every state-changing route outside the ActivityPub inboxes and the client API
checks the form's token and the Origin; refused requests change nothing; GET never mutates.
The client API (instance/api) never reads the session cookie, so a cross-site form cannot act
through it: its routes carry the `cookieless` mark instead, and a logged-in browser's cookie
alone gets 401 there."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select
from starlette.routing import Mount, Route

from instance.app import create_app
from instance.routes import inbox as inbox_routes
from instance.storage.models import Account, GenerationJob, Like, Post
from tests.instance.web_helpers import (
    PASSWORD,
    fast_hasher,  # noqa: F401
    logged_in,
)

pytestmark = pytest.mark.usefixtures("fast_hasher")

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
# Server-to-server endpoints: authenticated by HTTP signatures, never by a browser cookie.
S2S = {r.path for r in inbox_routes.routes}


def unsafe_routes(settings) -> list[tuple[str, str, Route]]:
    found = []

    def walk(routes, prefix=""):
        for r in routes:
            if isinstance(r, Mount):
                walk(r.routes, prefix + r.path)
            elif isinstance(r, Route):
                for method in sorted((r.methods or set()) & UNSAFE):
                    found.append((method, prefix + r.path, r))

    walk(create_app(settings, run_workers=False).routes)
    return found


def cookieless(route: Route) -> bool:
    return bool(getattr(route.endpoint, "cookieless", False))


def test_every_unsafe_route_outside_the_inboxes_is_csrf_checked(settings):
    routes = unsafe_routes(settings)
    assert {p for _, p, _ in routes} >= {"/login", "/logout", "/compose", "/follow"}
    unchecked = [(m, p) for m, p, r in routes
                 if p not in S2S and not cookieless(r)
                 and not getattr(r.endpoint, "csrf_checked", False)]  # fmt: skip
    assert unchecked == [], f"state-changing routes without the CSRF check: {unchecked}"


async def test_every_unsafe_route_refuses_without_token(settings, client, new_account):  # fmt: skip
    """Not only marked: each one answers 403 with no token, a wrong one, or a foreign Origin."""
    await new_account("alice", password=PASSWORD)
    token = await logged_in(client, "alice")
    for method, path, route in unsafe_routes(settings):
        if path in S2S:
            continue
        url = re.sub(r"\{[^}]+\}", "x", path)
        if cookieless(route):  # the API: the browser's cookie alone is no credential
            r = await client.request(method, url, data={"csrf": token})
            assert r.status_code in (400, 401, 404, 415, 422), (method, url, r.status_code)
            continue
        for data, headers in (
            ({}, {}),
            ({"csrf": "wrong"}, {}),
            ({"csrf": token}, {"Origin": "https://evil.example"}),
            ({"csrf": token}, {"Referer": "https://evil.example/page"}),
        ):
            r = await client.request(method, url, data=data, headers=headers)
            assert r.status_code == 403, (method, url, data, headers, r.status_code)


@pytest.fixture
async def post(runtime, new_account):
    from instance.content.posting import Draft, publish

    bob = await new_account("bob")
    async with runtime.session() as s:
        bob = await s.get(Account, bob.id)
        return await publish(s, runtime, bob, Draft(text="hello"))


async def count(runtime, model) -> int:
    async with runtime.sessions() as s:
        return await s.scalar(select(func.count()).select_from(model))


@pytest.mark.parametrize(
    "data, headers",
    [
        ({}, {}),
        ({"csrf": "wrong"}, {}),
        (None, {"Origin": "https://evil.example"}),
        (None, {"Origin": "null"}),
    ],
    ids=["no-token", "wrong-token", "foreign-origin", "null-origin"],
)
async def test_refused_forms_change_nothing(runtime, client, new_account, post,
                                            data, headers):  # fmt: skip
    await new_account("alice", password=PASSWORD)
    token = await logged_in(client, "alice")
    form = {"csrf": token} if data is None else data
    like = await client.post(f"/posts/{post.public_id}/like", data={**form, "back": "/local"},
                             headers=headers)  # fmt: skip
    made = await client.post("/compose", data={**form, "prompt": "a cat"}, headers=headers)
    assert like.status_code == made.status_code == 403
    assert await count(runtime, Like) == 0 and await count(runtime, GenerationJob) == 0
    async with runtime.sessions() as s:
        assert (await s.get(Post, post.id)).likes_count == 0


async def test_same_origin_with_token_passes(client, new_account, post, settings):
    await new_account("alice", password=PASSWORD)
    token = await logged_in(client, "alice")
    r = await client.post(f"/posts/{post.public_id}/like", data={"csrf": token, "back": "/local"},
                          headers={"Origin": settings.base_url})  # fmt: skip
    assert r.status_code == 303 and r.headers["location"] == "/local"


async def test_get_never_mutates(client, new_account, post, runtime):
    await new_account("alice", password=PASSWORD)
    await logged_in(client, "alice")
    for path in (f"/posts/{post.public_id}/like", "/compose?prompt=x", "/follow?handle=bob",
                 "/logout"):  # fmt: skip
        r = await client.get(path)
        assert r.status_code in (200, 404, 405)
    assert await count(runtime, Like) == 0 and await count(runtime, GenerationJob) == 0
    assert (await client.get("/home")).status_code == 200  # still logged in
