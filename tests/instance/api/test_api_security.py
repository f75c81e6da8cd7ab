"""Attacks on the client API (instance/api/*) in the ways fediverse servers and OAuth servers
have been broken, each stated as the requirement that stops it, over real HTTP."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from instance.accounts import get_local
from instance.api.auth import RATE_LIMIT, ApiError, RateLimits, caller_of, digest
from instance.api.tokens import register_app
from instance.content import actions
from instance.content.posting import Draft, publish
from instance.runtime import Runtime
from instance.storage.models import Account, OAuthCode, OAuthToken
from instance.web.templating import SECURITY_HEADERS
from tests.instance.api.api_helpers import api_token, bearer
from tests.instance.api.test_oauth import REDIRECT, exchange, pkce, register
from tests.instance.cli.conftest import make_cli_instance
from tests.instance.web_helpers import PASSWORD, fast_hasher, login  # noqa: F401

pytestmark = pytest.mark.usefixtures("fast_hasher")


@pytest.fixture
async def alice(new_account) -> Account:
    return await new_account("alice", password=PASSWORD)


@pytest.fixture
async def bob(new_account) -> Account:
    return await new_account("bob", password=PASSWORD)


async def as_alice(client: httpx.AsyncClient) -> None:
    assert (await login(client, "alice")).status_code == 303


async def post_of(rt: Runtime, author: Account, text: str, **draft: Any) -> Any:
    async with rt.session() as s:
        return await publish(s, rt, await s.get_one(Account, author.id), Draft(text, **draft))


def directives(policy: str) -> list[tuple[str, str]]:
    """A CSP as a browser parses it: (name, value) per directive, in order."""
    out = []
    for part in policy.split(";"):
        name, _, value = part.strip().partition(" ")
        if name:
            out.append((name.lower(), value.strip()))
    return out


# -- OAuth --------------------------------------------------------------------------------
async def test_a_redirect_uri_cannot_rewrite_the_consent_pages_policy(client, alice):
    """The consent page names the app's redirect URI in its Content-Security-Policy; no
    redirect URI an app registers may add a directive there (say `frame-ancestors *`, which
    would let any site frame the page and have the user click Authorise). A redirect URI
    with whitespace or control characters is no URI and is refused at registration."""
    for bad in ("https://x.example;frame-ancestors *;/cb", "https://x.example/a\r\nX: y"):
        r = await client.post("/api/v1/apps", data={
            "client_name": "Framer", "redirect_uris[]": bad, "scopes": "read",
        })  # fmt: skip
        assert r.status_code == 422, bad
    await as_alice(client)
    base = [name for name, _ in directives(SECURITY_HEADERS["Content-Security-Policy"])]
    for uri in (
        "https://x.example;sandbox;/cb",
        "https://x.example,frame-ancestors/cb",
        "my.app+x:/callback",
        "https://app.example:8443/cb",
    ):
        r = await client.post("/api/v1/apps", data={
            "client_name": "Framer", "redirect_uris[]": uri, "scopes": "read",
        })  # fmt: skip
        assert r.status_code == 200, r.text
        page = await client.get("/oauth/authorize", params={
            "response_type": "code", "client_id": r.json()["client_id"], "redirect_uri": uri,
        })  # fmt: skip
        assert page.status_code == 200, uri
        policy = page.headers["content-security-policy"]
        assert "," not in policy and [n for n, _ in directives(policy)] == base, policy
        assert ("frame-ancestors", "'none'") in directives(policy)
    # a plain redirect URI is still named, so the browser may follow the form's redirect
    assert "form-action 'self' https://app.example:8443;" in policy


async def test_what_is_granted_is_what_the_consent_page_showed(client, alice):
    """An authorization request naming a parameter twice is refused (RFC 6749 3.1): the
    page shows one value and its form would post the other, so the user would approve one
    app or scope and grant another."""
    app = await register(client, scopes="read write follow")
    await as_alice(client)
    query = [("response_type", "code"), ("client_id", app["client_id"]),
             ("redirect_uri", REDIRECT), ("scope", "read"),
             ("scope", "read write follow")]  # fmt: skip
    page = await client.get("/oauth/authorize", params=query)
    assert page.status_code == 400 and "Multiple" in page.text
    for name in ("client_id", "redirect_uri", "code_challenge"):
        twice = [*query[:-1], (name, "a" * 43), (name, "b" * 43)]
        r = await client.get("/oauth/authorize", params=twice)
        assert r.status_code in (302, 400) and "code=" not in r.headers.get("location", "")


async def test_redirect_uri_lookalikes_are_never_followed(client, alice):
    """Only the exact registered redirect URI receives a code: a case change, a trailing
    slash, a percent-encoded path, another port or a longer path is an error page."""
    app = await register(client)
    await as_alice(client)
    for uri in ("https://APP.example/callback", "https://app.example/callback/",
                "https://app.example/%63allback", "https://app.example:444/callback",
                "https://app.example/callback/../evil", "https://app.example/callbackx",
                "https://app.example.evil/callback", "urn:ietf:wg:oauth:2.0:oob"):  # fmt: skip
        r = await client.get("/oauth/authorize", params={
            "response_type": "code", "client_id": app["client_id"], "redirect_uri": uri,
        })  # fmt: skip
        assert r.status_code == 400 and "location" not in r.headers, uri


async def test_pkce_cannot_be_downgraded(client, alice):
    """A code asked for with an S256 challenge gives a token only with its verifier; the
    `plain` method is refused at the consent page."""
    app = await register(client)
    verifier, challenge = pkce()
    await as_alice(client)
    from tests.instance.api.test_oauth import code_for

    code = await code_for(client, app, code_challenge=challenge, code_challenge_method="S256")
    assert (await exchange(client, app, code)).status_code == 400
    code = await code_for(client, app, code_challenge=challenge, code_challenge_method="S256")
    assert (await exchange(client, app, code, code_verifier=challenge)).status_code == 400
    plain = await client.get("/oauth/authorize", params={
        "response_type": "code", "client_id": app["client_id"], "redirect_uri": REDIRECT,
        "code_challenge": verifier, "code_challenge_method": "plain",
    })  # fmt: skip
    assert plain.status_code in (302, 400) and "code=" not in plain.headers.get("location", "")


async def test_refresh_cannot_widen_scope_or_cross_apps(client, alice):
    """A refresh may narrow the scope it was granted, never widen it; another app's
    credentials cannot use it; another app cannot revoke it."""
    from tests.instance.api.test_oauth import code_for

    app = await register(client, scopes="read write follow")
    other = await register(client, scopes="read write follow")
    await as_alice(client)
    code = await code_for(client, app, scope="read")
    first = (await exchange(client, app, code)).json()
    assert first["scope"] == "read"
    wider = await client.post("/oauth/token", data={
        "grant_type": "refresh_token", "refresh_token": first["refresh_token"],
        "client_id": app["client_id"], "client_secret": app["client_secret"],
        "scope": "read write",
    })  # fmt: skip
    assert wider.status_code == 400 and wider.json()["error"] == "invalid_scope"
    crossed = await client.post("/oauth/token", data={
        "grant_type": "refresh_token", "refresh_token": first["refresh_token"],
        "client_id": other["client_id"], "client_secret": other["client_secret"],
    })  # fmt: skip
    assert crossed.status_code == 400
    await client.post("/oauth/revoke", data={
        "token": first["access_token"], "client_id": other["client_id"],
        "client_secret": other["client_secret"],
    })  # fmt: skip
    me = await client.get("/api/v1/accounts/verify_credentials",
                          headers=bearer(first["access_token"]))  # fmt: skip
    assert me.status_code == 200


async def test_tokens_end_with_a_suspension(client, runtime, alice):
    """A suspended account's token answers 401 and its refresh token gives nothing."""
    token = await api_token(runtime, alice)
    async with runtime.session() as s:
        (await s.get_one(Account, alice.id)).suspended_at = runtime.now()
    r = await client.get("/api/v1/accounts/verify_credentials", headers=bearer(token))
    assert r.status_code == 401


def test_a_new_password_ends_every_api_token(tmp_path: Path) -> None:
    """`dreamloom account password` ends the account's web sessions and its API tokens
    too: an access token issued before the change answers 401 after it, its refresh token
    is revoked, and a code not yet exchanged is gone (it would give a fresh token)."""
    inst = make_cli_instance(tmp_path / "inst")
    inst.ok("account", "create", "painter", "--no-pictures")

    async def token(rt: Runtime) -> str:
        async with rt.session() as s:
            painter = await get_local(s, "painter")
            app = (await register_app(s, "app", REDIRECT, "read", None)).app
            s.add(OAuthCode(code_digest=digest("pending"), app_id=app.id, account_id=painter.id,
                            redirect_uri=REDIRECT, scope="read",
                            expires_at=rt.now() + timedelta(minutes=5)))  # fmt: skip
        return await api_token(rt, painter)

    async def state(rt: Runtime, secret: str) -> tuple[int, int, int]:
        """(the token's HTTP status, its account's live tokens, its codes)."""
        try:
            await caller_of(rt, secret)
            status = 200
        except ApiError as exc:
            status = exc.status
        async with rt.sessions() as s:
            live = await s.scalar(select(func.count()).select_from(OAuthToken)
                                  .where(OAuthToken.revoked_at.is_(None)))  # fmt: skip
            codes = await s.scalar(select(func.count()).select_from(OAuthCode))
        return status, int(live or 0), int(codes or 0)

    secret = inst.db(token)
    assert inst.db(lambda rt: state(rt, secret)) == (200, 1, 1)
    r = inst.ok("account", "password", "painter", input="a brand new password\n")
    assert "app tokens are revoked" in r.stdout
    assert inst.db(lambda rt: state(rt, secret)) == (401, 0, 0)


# -- API: other people's things, private posts ----------------------------------------------
async def test_nobody_changes_another_users_status_or_media(client, runtime, alice, bob):
    """Editing, deleting or reading the source of bob's status with alice's token is 404."""
    post = await post_of(runtime, bob, "mine")
    auth = bearer(await api_token(runtime, alice))
    assert (await client.put(f"/api/v1/statuses/{post.public_id}", headers=auth,
                             json={"status": "owned"})).status_code == 404  # fmt: skip
    assert (await client.delete(f"/api/v1/statuses/{post.public_id}",
                                headers=auth)).status_code == 404  # fmt: skip
    assert (await client.get(f"/api/v1/statuses/{post.public_id}/source",
                             headers=auth)).status_code == 404  # fmt: skip


async def test_followers_only_and_direct_posts_stay_hidden(client, runtime, alice, bob):
    """Bob's followers-only and direct posts are 404 to alice (not a follower, not
    addressed) everywhere a status can be reached, and cannot be boosted or quoted."""
    private = await post_of(runtime, bob, "secret", visibility="followers")
    auth = bearer(await api_token(runtime, alice))
    for path in ("", "/context", "/favourited_by", "/reblogged_by"):
        r = await client.get(f"/api/v1/statuses/{private.public_id}{path}", headers=auth)
        assert r.status_code == 404, path
    for path in ("/reblog", "/favourite"):
        r = await client.post(f"/api/v1/statuses/{private.public_id}{path}", headers=auth)
        assert r.status_code == 404, path
    r = await client.get(f"/api/v1/accounts/{bob.id}/statuses", headers=auth)
    assert r.status_code == 200 and r.json() == []
    quote = await client.post("/api/v1/statuses", headers=auth, json={
        "status": "q", "quoted_status_id": private.public_id})  # fmt: skip
    assert quote.status_code in (404, 422)
    reply = await client.post("/api/v1/statuses", headers=auth, json={
        "status": "r", "in_reply_to_id": private.public_id})  # fmt: skip
    assert reply.status_code in (404, 422)


async def test_a_follower_cannot_boost_or_quote_a_followers_only_post(client, runtime, alice,
                                                                     bob):  # fmt: skip
    """Even a follower who may read bob's followers-only post cannot reblog or quote it."""
    async with runtime.session() as s:
        await actions.follow(s, runtime, await s.get_one(Account, alice.id),
                             await s.get_one(Account, bob.id))  # fmt: skip
    private = await post_of(runtime, bob, "for friends", visibility="followers")
    auth = bearer(await api_token(runtime, alice))
    assert (await client.get(f"/api/v1/statuses/{private.public_id}",
                             headers=auth)).status_code == 200  # fmt: skip
    r = await client.post(f"/api/v1/statuses/{private.public_id}/reblog", headers=auth)
    assert r.status_code == 422
    q = await client.post("/api/v1/statuses", headers=auth, json={
        "status": "q", "quoted_status_id": private.public_id})  # fmt: skip
    assert q.status_code == 422


async def test_idempotency_keys_belong_to_one_account(client, runtime, alice, bob):
    """The same Idempotency-Key from two accounts makes two statuses, each its author's."""
    a = bearer(await api_token(runtime, alice))
    b = bearer(await api_token(runtime, bob))
    ra = await client.post("/api/v1/statuses", headers={**a, "Idempotency-Key": "k1"},
                           json={"status": "from alice"})  # fmt: skip
    rb = await client.post("/api/v1/statuses", headers={**b, "Idempotency-Key": "k1"},
                           json={"status": "from bob"})  # fmt: skip
    assert ra.status_code == rb.status_code == 200
    assert ra.json()["id"] != rb.json()["id"] and "from bob" in rb.json()["content"]


# -- API: hostile parameters -----------------------------------------------------------------
async def test_out_of_range_ids_and_limits_are_client_errors(client, runtime, alice, bob):
    """Ids and limits too big for the database, negative or not numbers answer 4xx (or an
    empty page), never a 500."""
    post = await post_of(runtime, bob, "public")
    auth = bearer(await api_token(runtime, alice))
    huge = "9" * 30
    paths = [
        f"/api/v1/accounts/{huge}", f"/api/v1/accounts/{huge}/statuses",
        f"/api/v1/accounts/{huge}/followers", f"/api/v1/notifications/{huge}",
        f"/api/v1/accounts/{bob.id}/followers?max_id={huge}",
        f"/api/v1/accounts/{bob.id}/following?since_id=-{huge}",
        f"/api/v1/statuses/{post.public_id}/favourited_by?max_id={huge}",
        f"/api/v1/statuses/{post.public_id}/reblogged_by?min_id={huge}",
        f"/api/v1/notifications?max_id={huge}", f"/api/v1/notifications?account_id={huge}",
        f"/api/v1/accounts/relationships?id[]={huge}",
        f"/api/v1/timelines/public?limit={huge}", "/api/v1/timelines/public?limit=-5",
        "/api/v1/timelines/public?limit=abc", "/api/v1/timelines/home?max_id=%00",
        f"/api/v1/follow_requests?max_id={huge}",
        f"/api/v2/search?q=bob&limit={huge}&offset={huge}",
        f"/api/v2/search?q=bob&offset=-{huge}", "/api/v2/search?q=bob&type=accounts&offset=x",
    ]  # fmt: skip
    for path in paths:
        r = await client.get(path, headers=auth)
        assert r.status_code < 500, (path, r.status_code, r.text[:200])
    for path in (f"/api/v1/accounts/{huge}/follow", f"/api/v1/follow_requests/{huge}/authorize",
                 f"/api/v1/notifications/{huge}/dismiss"):  # fmt: skip
        r = await client.post(path, headers=auth)
        assert r.status_code < 500, (path, r.status_code, r.text[:200])


async def test_json_of_the_wrong_types_is_a_client_error(client, runtime, alice):
    """JSON bodies with lists, objects or numbers where text, ids or flags are expected
    answer 4xx, never a 500."""
    auth = bearer(await api_token(runtime, alice))
    bodies = [
        {"status": ["a", "b"]}, {"status": "x", "media_ids": {"a": 1}},
        {"status": "x", "in_reply_to_id": ["1"]}, {"status": "x", "visibility": ["public"]},
        {"status": "x", "spoiler_text": {"a": 1}}, {"status": "x", "sensitive": {"a": 1}},
        {"status": "x", "language": 7}, {"status": "x", "quoted_status_id": {"x": 1}},
        {"status": "x", "in_reply_to_id": 99999999999999999999999999},
        {"status": "x", "media_ids": [None, {"x": 1}]}, {"status": 12},
        {"status": "x", "poll": "nope"}, {"status": "x", "scheduled_at": ["x"]},
    ]  # fmt: skip
    for body in bodies:
        r = await client.post("/api/v1/statuses", headers=auth, json=body)
        assert r.status_code < 500, (body, r.status_code, r.text[:200])
    for body in ({"display_name": ["x"]}, {"note": {"a": 1}}, {"locked": ["1"]},
                 {"fields_attributes": "x"}, {"fields_attributes": [1, 2]},
                 {"fields_attributes": {"0": "x"}}, {"fields_attributes": {"0": {"name": [1]}}},
                 {"discoverable": {"x": 1}}, {"bot": [True]}, {"avatar": "http://127.0.0.1/"},
                 {"source": {"privacy": ["x"]}}):  # fmt: skip
        r = await client.patch("/api/v1/accounts/update_credentials", headers=auth, json=body)
        assert r.status_code < 500, (body, r.status_code, r.text[:200])
    for body in ({"client_name": ["x"], "redirect_uris": REDIRECT},
                 {"client_name": "x", "redirect_uris": [REDIRECT, 5]},
                 {"client_name": "x", "redirect_uris": REDIRECT, "scopes": ["read"]},
                 {"client_name": "x", "redirect_uris": {"a": 1}}):  # fmt: skip
        r = await client.post("/api/v1/apps", json=body)
        assert r.status_code < 500, (body, r.status_code, r.text[:200])
    for body in ({"grant_type": ["authorization_code"]}, {"grant_type": "refresh_token",
                 "refresh_token": {"a": 1}}, {"grant_type": "client_credentials",
                 "client_id": 5, "client_secret": None}):  # fmt: skip
        r = await client.post("/oauth/token", json=body)
        assert r.status_code < 500, (body, r.status_code, r.text[:200])
    r = await client.put("/api/v1/media/x", headers=auth, json={"description": ["x"]})
    assert r.status_code < 500
    r = await client.post("/api/v2/media", headers=auth, json={"prompt": ["x"], "seed": "abc"})
    assert r.status_code < 500, r.text


async def test_app_tokens_never_act_as_a_user(client, runtime, alice, bob):
    """A client-credentials token (no user) is refused wherever a user acts or is read as
    'me'."""
    auth = bearer(await api_token(runtime, None))
    post = await post_of(runtime, bob, "public")
    for method, path in (
        ("POST", "/api/v1/statuses"), ("POST", f"/api/v1/statuses/{post.public_id}/favourite"),
        ("POST", f"/api/v1/accounts/{bob.id}/follow"), ("GET", "/api/v1/timelines/home"),
        ("GET", "/api/v1/notifications"), ("GET", "/api/v1/accounts/verify_credentials"),
        ("PATCH", "/api/v1/accounts/update_credentials"), ("POST", "/api/v2/media"),
        ("GET", "/api/v1/follow_requests"), ("GET", "/api/v1/accounts/relationships?id=1"),
    ):  # fmt: skip
        r = await client.request(method, path, headers=auth, json={"status": "x"})
        assert r.status_code in (401, 403, 422), (path, r.status_code)


async def test_markup_in_a_bio_is_text_in_the_api_and_the_actor(client, runtime, alice):
    """A bio is text its owner typed. Mastodon's `note` and an actor's `summary` are HTML
    that clients and servers show as such, so markup typed into a bio (a script, an image
    with an onerror handler) reaches them escaped, never as markup; the same holds for a
    profile field's value, a status's text and our own pages."""
    evil = "<script>alert(1)</script>\n<img src=x onerror=alert(2)>\n\n<b>bold</b>"
    auth = bearer(await api_token(runtime, alice))
    r = await client.patch("/api/v1/accounts/update_credentials", headers=auth, json={
        "note": evil, "fields_attributes": {"0": {"name": "site", "value": evil}},
    })  # fmt: skip
    assert r.status_code == 200, r.text
    me = r.json()
    assert me["source"]["note"] == evil  # what was typed, for editing
    assert me["note"] == ("<p>&lt;script&gt;alert(1)&lt;/script&gt;<br>&lt;img src=x "
                          "onerror=alert(2)&gt;</p><p>&lt;b&gt;bold&lt;/b&gt;</p>")  # fmt: skip
    shown = await client.get(f"/api/v1/accounts/{alice.id}")
    assert shown.json()["note"] == me["note"]
    actor = (await client.get("/users/alice", headers={
        "Accept": "application/activity+json"})).json()  # fmt: skip
    assert actor["summary"] == me["note"]
    s = await client.post("/api/v1/statuses", headers=auth, json={"status": evil})
    page = await client.get(f"/@alice/{s.json()['id']}")
    for html_text in (me["fields"][0]["value"], s.json()["content"], page.text,
                      (await client.get("/@alice")).text):  # fmt: skip
        assert "<script>alert" not in html_text and "<img src=x" not in html_text


async def test_minting_tokens_buys_no_extra_requests(client, runtime, alice):
    """The request budget is the account's (or, for an app-only token or none, the client
    address's), not the token's: anyone can register an app and mint tokens, so a second
    token of the same account, or any number of app tokens, draws on the same budget, and
    registering apps counts against the address too."""
    first, second = await api_token(runtime, alice), await api_token(runtime, alice)
    r1 = await client.get("/api/v1/timelines/home", headers=bearer(first))
    r2 = await client.get("/api/v1/timelines/home", headers=bearer(second))
    assert int(r2.headers["x-ratelimit-remaining"]) == int(r1.headers["x-ratelimit-remaining"]) - 1
    anonymous = await client.get("/api/v1/timelines/public")
    assert anonymous.status_code == 200
    limits = runtime.service(RateLimits)
    (ip_key,) = [k for k in limits.windows if k.startswith("ip:")]
    start, _ = limits.windows[ip_key]
    limits.windows[ip_key] = (start, RATE_LIMIT)  # the address has used its budget
    app_token = await api_token(runtime, None)
    r = await client.get("/api/v1/timelines/public", headers=bearer(app_token))
    assert r.status_code == 429
    r = await client.post("/api/v1/apps", data={"client_name": "more", "redirect_uris": REDIRECT})
    assert r.status_code == 429 and r.json()["error"]
    mine = await client.get("/api/v1/timelines/home", headers=bearer(first))
    assert mine.status_code == 200  # a signed-in user's budget is their own
