"""OAuth 2 of the client API, driven over HTTP as an app and a browser would.

What is checked, in our own words:
- an app registers and gets its secret once; an unknown scope or a javascript: redirect
  URI is refused;
- the consent page needs a login, shows the app and the scopes, and approving sends a code
  to the registered redirect URI with the client's state; denying sends access_denied;
- a redirect URI the app did not register is shown as an error, never redirected to;
- a code works once, only with its app's secret, only within its PKCE challenge;
- the out-of-band redirect shows the code on the page;
- tokens are kept as digests, never in the clear; scopes are enforced on every endpoint;
- refresh gives a new pair and turns the old one off; revoke turns a token off;
- client credentials give an app-only token that cannot act as a user.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import secrets
from html import unescape
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import select

from instance.storage.models import OAuthToken
from tests.instance.api.api_helpers import bearer
from tests.instance.web_helpers import PASSWORD, csrf_of, fast_hasher, login  # noqa: F401

pytestmark = pytest.mark.usefixtures("fast_hasher")

REDIRECT = "https://app.example/callback"
_HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


async def register(client: httpx.AsyncClient, scopes: str = "read write follow",
                   redirect: str = REDIRECT) -> dict[str, str]:  # fmt: skip
    r = await client.post("/api/v1/apps", data={
        "client_name": "Test app", "redirect_uris": redirect, "scopes": scopes,
        "website": "https://app.example",
    })  # fmt: skip
    assert r.status_code == 200, r.text
    return dict(r.json())


async def approve(client: httpx.AsyncClient, params: dict[str, str],
                  decision: str = "approve") -> httpx.Response:  # fmt: skip
    page = await client.get("/oauth/authorize", params=params)
    assert page.status_code == 200, page.text
    form = {name: unescape(value) for name, value in _HIDDEN.findall(page.text)}
    form["decision"] = decision
    return await client.post("/oauth/authorize", data=form)


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    return verifier, challenge.decode()


@pytest.fixture
async def user(new_account):
    return await new_account("alice", password=PASSWORD)


async def logged_in(client: httpx.AsyncClient) -> None:
    if (await client.get("/login")).status_code != 303:  # not logged in yet
        assert (await login(client, "alice")).status_code == 303


async def code_for(client: httpx.AsyncClient, app: dict[str, str], **extra: str) -> str:
    await logged_in(client)
    r = await approve(client, {"response_type": "code", "client_id": app["client_id"],
                               "redirect_uri": REDIRECT, "scope": "read write",
                               "state": "xyz", **extra})  # fmt: skip
    assert r.status_code == 302, r.text
    query = parse_qs(urlsplit(r.headers["location"]).query)
    assert r.headers["location"].startswith(REDIRECT + "?")
    assert query["state"] == ["xyz"]
    return query["code"][0]


async def exchange(client: httpx.AsyncClient, app: dict[str, str], code: str,
                   **extra: str) -> httpx.Response:  # fmt: skip
    return await client.post("/oauth/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
        "client_id": app["client_id"], "client_secret": app["client_secret"], **extra,
    })  # fmt: skip


async def test_app_registration_answers_credentials_once_and_checks_input(client):
    """POST /api/v1/apps answers Mastodon's Application with client_id and client_secret;
    an unknown scope and a javascript: redirect URI are 422 with Mastodon's error shape."""
    app = await register(client)
    assert app["name"] == "Test app" and app["redirect_uri"] == REDIRECT
    assert app["scopes"] == ["read", "write", "follow"]
    assert len(app["client_secret"]) >= 40
    bad = await client.post("/api/v1/apps", data={"client_name": "x", "redirect_uris": REDIRECT,
                                                  "scopes": "read admin:everything"})  # fmt: skip
    assert bad.status_code == 422 and "scope" in bad.json()["error"]
    js = await client.post("/api/v1/apps",
                           json={"client_name": "x", "redirect_uris": "javascript:alert(1)"})
    assert js.status_code == 422 and "error" in js.json()


async def test_consent_needs_login_and_shows_the_app_and_scopes(client, user):
    """The consent page sends an anonymous visitor to the login page and back; logged in,
    it names the app and each scope asked for, with a CSRF-protected form."""
    app = await register(client)
    params = {"response_type": "code", "client_id": app["client_id"], "redirect_uri": REDIRECT,
              "scope": "read write"}  # fmt: skip
    r = await client.get("/oauth/authorize", params=params)
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")
    await logged_in(client)
    page = await client.get("/oauth/authorize", params=params)
    assert page.status_code == 200
    assert "Test app" in page.text and "<code>read</code>" in page.text
    assert "<code>write</code>" in page.text and csrf_of(page.text)
    # the browser may follow the form's redirect to the app, and only there
    assert "form-action 'self' https://app.example" in page.headers["content-security-policy"]


async def test_code_flow_with_pkce_gives_a_working_token_kept_as_a_digest(client, user, runtime):
    """Approving sends a code to the redirect URI; with the right verifier and secret it
    becomes a token that works on the API; the database holds only its digest."""
    app = await register(client)
    verifier, challenge = pkce()
    code = await code_for(client, app, code_challenge=challenge, code_challenge_method="S256")
    wrong = await exchange(client, app, code, code_verifier=pkce()[0])
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    code = await code_for(client, app, code_challenge=challenge, code_challenge_method="S256")
    r = await exchange(client, app, code, code_verifier=verifier)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "Bearer" and body["scope"] == "read write"
    assert isinstance(body["created_at"], int) and body["refresh_token"]
    me = await client.get("/api/v1/apps/verify_credentials",
                          headers={"Authorization": f"Bearer {body['access_token']}"})  # fmt: skip
    assert me.status_code == 200 and me.json()["name"] == "Test app"
    assert "client_secret" not in me.json()
    async with runtime.session() as session:
        rows = (await session.execute(select(OAuthToken))).scalars().all()
    assert rows and all(body["access_token"] not in (t.access_digest, t.refresh_digest)
                        for t in rows)  # fmt: skip


async def test_a_code_works_once_and_only_for_its_app(client, user):
    """A code exchanged twice, or by another app, or with a wrong secret, gives no token."""
    app, other = await register(client), await register(client)
    code = await code_for(client, app)
    stolen = await exchange(client, other, code)
    assert stolen.status_code in (400, 401)
    bad_secret = await exchange(client, {**app, "client_secret": "nope"}, code)
    assert bad_secret.status_code == 401 and bad_secret.json()["error"] == "invalid_client"
    first = await exchange(client, app, code)
    assert first.status_code == 200, first.text
    again = await exchange(client, app, code)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


async def test_two_requests_racing_with_one_code_get_one_token(client, user):
    """The code is claimed with a conditional DELETE: of two concurrent exchanges, one wins."""
    app = await register(client)
    code = await code_for(client, app)
    answers = await asyncio.gather(exchange(client, app, code), exchange(client, app, code))
    assert sorted(r.status_code for r in answers) == [200, 400]


async def test_unregistered_redirect_uri_is_shown_not_followed(client, user):
    """A redirect URI the app did not register gets an error page (400), no redirect."""
    app = await register(client)
    await logged_in(client)
    r = await client.get("/oauth/authorize", params={
        "response_type": "code", "client_id": app["client_id"],
        "redirect_uri": "https://evil.example/steal"})  # fmt: skip
    assert r.status_code == 400 and "location" not in r.headers
    unknown = await client.get("/oauth/authorize", params={"response_type": "code",
                               "client_id": "nobody", "redirect_uri": REDIRECT})  # fmt: skip
    assert unknown.status_code == 400


async def test_denying_redirects_with_access_denied(client, user):
    """Deny sends the user back to the app with error=access_denied and no code."""
    app = await register(client)
    await logged_in(client)
    params = {"response_type": "code", "client_id": app["client_id"],
              "redirect_uri": REDIRECT, "state": "s1"}  # fmt: skip
    r = await approve(client, params, decision="deny")
    query = parse_qs(urlsplit(r.headers["location"]).query)
    assert r.status_code == 302 and query["error"] == ["access_denied"] and "code" not in query


async def test_scopes_beyond_the_app_registration_are_refused(client, user):
    """An app registered for `read` cannot be authorised for `write`."""
    app = await register(client, scopes="read")
    await logged_in(client)
    r = await client.get("/oauth/authorize", params={
        "response_type": "code", "client_id": app["client_id"], "redirect_uri": REDIRECT,
        "scope": "read write"})  # fmt: skip
    assert r.status_code == 302 and "error=invalid_scope" in r.headers["location"]


async def test_out_of_band_shows_the_code(client, user):
    """With urn:ietf:wg:oauth:2.0:oob the code is shown on the page, ready to paste."""
    app = await register(client, redirect="urn:ietf:wg:oauth:2.0:oob")
    await logged_in(client)
    r = await approve(client, {"response_type": "code", "client_id": app["client_id"],
                               "redirect_uri": "urn:ietf:wg:oauth:2.0:oob"})  # fmt: skip
    assert r.status_code == 200
    code = re.search(r'<code class="oauth-code">([^<]+)</code>', r.text)
    assert code
    token = await client.post("/oauth/token", data={
        "grant_type": "authorization_code", "code": unescape(code.group(1)),
        "redirect_uri": "urn:ietf:wg:oauth:2.0:oob", "client_id": app["client_id"],
        "client_secret": app["client_secret"]})  # fmt: skip
    assert token.status_code == 200, token.text


async def test_refresh_turns_the_old_pair_off_and_revoke_turns_a_token_off(client, user):
    """A refresh answers a new access token; the old access and refresh tokens stop
    working; a revoked token answers 401."""
    app = await register(client)
    first = (await exchange(client, app, await code_for(client, app))).json()
    refreshed = await client.post("/oauth/token", data={
        "grant_type": "refresh_token", "refresh_token": first["refresh_token"],
        "client_id": app["client_id"], "client_secret": app["client_secret"]})  # fmt: skip
    assert refreshed.status_code == 200, refreshed.text
    new = refreshed.json()
    old = await client.get("/api/v1/apps/verify_credentials", headers=bearer(first["access_token"]))
    assert old.status_code == 401 and old.json() == {"error": "The access token is invalid"}
    assert "Bearer" in old.headers["www-authenticate"]
    reuse = await client.post("/oauth/token", data={
        "grant_type": "refresh_token", "refresh_token": first["refresh_token"],
        "client_id": app["client_id"], "client_secret": app["client_secret"]})  # fmt: skip
    assert reuse.status_code == 400
    auth = {"Authorization": f"Bearer {new['access_token']}"}
    assert (await client.get("/api/v1/apps/verify_credentials", headers=auth)).status_code == 200
    r = await client.post("/oauth/revoke", data={
        "token": new["access_token"], "client_id": app["client_id"],
        "client_secret": app["client_secret"]})  # fmt: skip
    assert r.status_code == 200 and r.json() == {}
    assert (await client.get("/api/v1/apps/verify_credentials", headers=auth)).status_code == 401


async def test_client_credentials_give_an_app_only_token(client):
    """client_credentials answers a token without a user: it can verify its app but gets
    422 where a user is needed, and 403 outside its scopes."""
    app = await register(client)
    r = await client.post("/oauth/token", data={
        "grant_type": "client_credentials", "scope": "read",
        "client_id": app["client_id"], "client_secret": app["client_secret"]})  # fmt: skip
    assert r.status_code == 200, r.text
    assert "refresh_token" not in r.json()
    auth = {"Authorization": f"Bearer {r.json()['access_token']}"}
    assert (await client.get("/api/v1/apps/verify_credentials", headers=auth)).status_code == 200
    too_much = await client.post("/oauth/token", data={
        "grant_type": "client_credentials", "scope": "admin:read",
        "client_id": app["client_id"], "client_secret": app["client_secret"]})  # fmt: skip
    assert too_much.status_code == 400 and too_much.json()["error"] == "invalid_scope"


async def test_metadata_names_the_endpoints(client):
    """RFC 8414 metadata names our endpoints, S256 and the scopes we know."""
    r = await client.get("/.well-known/oauth-authorization-server")
    doc = r.json()
    assert doc["token_endpoint"].endswith("/oauth/token")
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert "write:media" in doc["scopes_supported"]


async def test_every_api_answer_carries_rate_limit_headers(client, user):
    """X-RateLimit-Limit/Remaining/Reset on API answers; Remaining counts down."""
    app = await register(client)
    token = (await exchange(client, app, await code_for(client, app))).json()["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    one = await client.get("/api/v1/apps/verify_credentials", headers=auth)
    two = await client.get("/api/v1/apps/verify_credentials", headers=auth)
    assert one.headers["x-ratelimit-limit"] == "300"
    remaining = [int(r.headers["x-ratelimit-remaining"]) for r in (one, two)]
    assert remaining[1] == remaining[0] - 1
