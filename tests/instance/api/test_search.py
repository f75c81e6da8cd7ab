"""GET /api/v2/search: local rows by prefix, exact URLs, and (resolve=true) remote accounts
and posts looked up through WebFinger and the safe fetcher, never past its guards."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, time
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import func, select

from instance.accounts import NewAccount, create_account
from instance.content import actions
from instance.content.posting import Draft, publish
from instance.moderation import domains
from instance.runtime import Runtime
from instance.storage.models import Account, Post
from tests.instance.api.api_helpers import api_token, bearer
from tests.instance.fediverse import ACTIVITY_JSON, FakeFediverse
from tests.instance_fixtures import asgi_client, instance_runtime, make_settings

SEARCH = "/api/v2/search"


async def post_as(rt: Runtime, account: Account, text: str, visibility: Any = "public") -> Post:
    async with rt.session() as s:
        author = await s.get_one(Account, account.id)
        return await publish(s, rt, author, Draft(text=text, visibility=visibility))


async def count(rt: Runtime, model: Any, *where: Any) -> int:
    async with rt.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def serve_webfinger(fedi: FakeFediverse, actor: Any) -> str:
    """Serve the actor's WebFinger document at the URL webfinger/client.py asks for (the
    resource percent-encoded; http, as resolve.account asks where private addresses are
    allowed, which the test instances allow); the URL."""
    resource = quote(f"acct:{actor.username}@{actor.host}", safe="")
    url = f"http://{actor.host}/.well-known/webfinger?resource={resource}"
    link = {"rel": "self", "type": ACTIVITY_JSON, "href": actor.uri}
    fedi.serve(url, {"subject": f"acct:{actor.username}@{actor.host}", "links": [link]})
    return url


async def me_and_token(rt: Runtime, new_account: Any, name: str = "reader") -> tuple[Any, str]:
    me = await new_account(name)
    return me, await api_token(rt, me)


# -- local search --------------------------------------------------------------------------
async def test_accounts_by_username_or_display_name_prefix(runtime, client, new_account):
    """Without resolve, accounts are found among the rows we hold by the start of their
    username or display name, case-insensitively; the exact name comes first; suspended
    accounts and the instance actor are never listed; `limit` and (with `type`) `offset`
    page the list."""
    await new_account("alina")
    alice = await new_account("alice")
    await new_account("bob", display_name="Alfred the Painter")
    await new_account("carol", display_name="Carol")
    hidden = await new_account("alix")
    async with runtime.session() as s:
        (await s.get_one(Account, hidden.id)).suspended_at = runtime.now()

    r = await client.get(SEARCH, params={"q": "AL"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"accounts", "statuses", "hashtags"}
    assert sorted(a["username"] for a in body["accounts"]) == ["alice", "alina", "bob"]
    assert body["statuses"] == []

    r = await client.get(SEARCH, params={"q": "alice", "type": "accounts"})
    found = r.json()["accounts"]
    assert [a["id"] for a in found] == [str(alice.id)]
    assert found[0]["acct"] == "alice" and found[0]["url"]

    r = await client.get(SEARCH, params={"q": "ali"})  # "alice" and "alina", not "alix"
    assert [a["username"] for a in r.json()["accounts"]] == ["alice", "alina"]
    _, token = await me_and_token(runtime, new_account)
    r = await client.get(SEARCH, params={"q": "ali", "type": "accounts", "limit": "1",
                                         "offset": "1"}, headers=bearer(token))  # fmt: skip
    assert [a["username"] for a in r.json()["accounts"]] == ["alina"]
    r = await client.get(SEARCH, params={"q": f"@alice@{runtime.settings.host}"})
    assert [a["username"] for a in r.json()["accounts"]] == ["alice"]


async def test_following_narrows_accounts_to_those_the_caller_follows(runtime, client,
                                                                      new_account):  # fmt: skip
    """`following=true` lists only accounts the caller follows."""
    me, token = await me_and_token(runtime, new_account)
    await new_account("painter")
    followed = await new_account("painterly")
    async with runtime.session() as s:
        await actions.follow(s, runtime, await s.get_one(Account, me.id),
                             await s.get_one(Account, followed.id))  # fmt: skip
    r = await client.get(SEARCH, params={"q": "paint", "following": "true"},
                         headers=bearer(token))  # fmt: skip
    assert [a["username"] for a in r.json()["accounts"]] == ["painterly"]


async def test_hashtags_by_name_prefix_with_history(runtime, client, new_account):
    """Hashtags are found by the start of their name (with or without '#') among the tags of
    posts the caller may see: the exact name first, then the most used; each is Mastodon's
    Tag with our tag page as its URL and a week of daily use, today first. A tag used only
    in a followers-only post is not listed to a stranger."""
    painter = await new_account("painter")
    other = await new_account("other")
    await post_as(runtime, painter, "evening #Sunset")
    await post_as(runtime, other, "again #sunset and #sunflowers")
    await post_as(runtime, painter, "dawn #Sun")
    await post_as(runtime, painter, "secret #sundial", visibility="followers")

    r = await client.get(SEARCH, params={"q": "#sun"})
    assert r.status_code == 200, r.text
    tags = r.json()["hashtags"]
    assert [t["name"] for t in tags] == ["sun", "sunset", "sunflowers"]
    sunset = tags[1]
    assert sunset["url"] == runtime.urls.tag("sunset")
    assert len(sunset["history"]) == 7
    today = datetime.combine(runtime.now().astimezone(UTC).date(), time.min, UTC)
    assert sunset["history"][0] == {"day": str(int(today.timestamp())), "uses": "2",
                                    "accounts": "2"}  # fmt: skip
    assert {h["uses"] for h in sunset["history"][1:]} == {"0"}
    assert "following" not in sunset  # only for a signed-in caller, as Mastodon

    _, token = await me_and_token(runtime, new_account)
    r = await client.get(SEARCH, params={"q": "sund", "type": "hashtags"}, headers=bearer(token))
    assert r.json()["hashtags"] == []
    r = await client.get(SEARCH, params={"q": "sunf"}, headers=bearer(token))
    assert r.json()["hashtags"][0]["following"] is False
    r = await client.get(SEARCH, params={"q": "sun", "type": "hashtags", "limit": "1",
                                         "offset": "1"}, headers=bearer(token))  # fmt: skip
    assert [t["name"] for t in r.json()["hashtags"]] == ["sunset"]


async def test_statuses_only_by_exact_url_and_visibility(runtime, client, new_account):
    """Statuses are found only by the exact id or page URL of a post we hold (words find
    none: there is no full-text index), and only when the caller may see the post: a
    followers-only post is found by its author and an accepted follower, never by a
    stranger or an anonymous caller; `account_id` narrows to one author."""
    painter = await new_account("painter")
    fan, fan_token = await me_and_token(runtime, new_account, "fan")
    _, stranger_token = await me_and_token(runtime, new_account, "stranger")
    painter_token = await api_token(runtime, painter)
    async with runtime.session() as s:
        await actions.follow(s, runtime, await s.get_one(Account, fan.id),
                             await s.get_one(Account, painter.id))  # fmt: skip
    public = await post_as(runtime, painter, "a public picture")
    private = await post_as(runtime, painter, "for followers", visibility="followers")

    for q in (public.uri, public.url):
        r = await client.get(SEARCH, params={"q": q})
        assert [s["id"] for s in r.json()["statuses"]] == [public.public_id], q
    assert (await client.get(SEARCH, params={"q": "public picture"})).json()["statuses"] == []
    r = await client.get(SEARCH, params={"q": public.uri, "account_id": str(fan.id)})
    assert r.json()["statuses"] == []

    def ids(r: httpx.Response) -> list[str]:
        assert r.status_code == 200, r.text
        return [s["id"] for s in r.json()["statuses"]]

    q = {"q": private.uri}
    assert ids(await client.get(SEARCH, params=q)) == []
    assert ids(await client.get(SEARCH, params=q, headers=bearer(stranger_token))) == []
    assert ids(await client.get(SEARCH, params=q, headers=bearer(fan_token))) == [private.public_id]
    assert ids(await client.get(SEARCH, params=q, headers=bearer(painter_token))) == [
        private.public_id
    ]
    # resolving does not get round it: the post is held, and the same rule applies
    q_resolve = {**q, "resolve": "true"}
    assert ids(await client.get(SEARCH, params=q_resolve, headers=bearer(stranger_token))) == []


async def test_the_url_of_an_account_finds_it(runtime, client, new_account):
    """A URL query finds the account with that actor id or profile URL."""
    painter = await new_account("painter")
    for q in (painter.uri, painter.url):
        r = await client.get(SEARCH, params={"q": q})
        assert [a["id"] for a in r.json()["accounts"]] == [str(painter.id)], q


# -- the rules of the endpoint -------------------------------------------------------------
async def test_mastodons_answers_to_bad_or_anonymous_requests(runtime, client, new_account,
                                                              fedi):  # fmt: skip
    """`q` is required (400); negative limits are 400; an anonymous caller or an app-only
    token may not resolve or page (401, Mastodon's words) and nothing is fetched; a token
    needs read:search (403 without it), and a bad token is 401."""
    serve_webfinger(fedi, fedi.actor("zoe", "remote.example"))
    assert (await client.get(SEARCH)).status_code == 400
    assert (await client.get(SEARCH, params={"q": " "})).json() == {
        "error": "param is missing or the value is empty: q"
    }
    r = await client.get(SEARCH, params={"q": "@zoe@remote.example", "resolve": "true"})
    assert r.status_code == 401
    assert r.json()["error"] == (
        "Search queries that resolve remote resources are not supported without authentication"
    )
    app_only = await api_token(runtime, None)
    r = await client.get(SEARCH, params={"q": "@zoe@remote.example", "resolve": "1"},
                         headers=bearer(app_only))  # fmt: skip
    assert r.status_code == 401
    r = await client.get(SEARCH, params={"q": "zoe", "type": "accounts", "offset": "1"})
    assert r.status_code == 401 and "pagination" in r.json()["error"]
    assert fedi.requests == []

    me = await new_account("reader")
    r = await client.get(SEARCH, params={"q": "zoe", "limit": "-1"},
                         headers=bearer(await api_token(runtime, me)))  # fmt: skip
    assert r.status_code == 400
    r = await client.get(SEARCH, params={"q": "zoe"},
                         headers=bearer(await api_token(runtime, me, "write")))  # fmt: skip
    assert r.status_code == 403
    r = await client.get(SEARCH, params={"q": "zoe"},
                         headers=bearer(await api_token(runtime, me, "read:search")))  # fmt: skip
    assert r.status_code == 200
    r = await client.get(SEARCH, params={"q": "zoe"}, headers=bearer("not-a-token"))
    assert r.status_code == 401


# -- resolve -------------------------------------------------------------------------------
async def test_resolve_finds_a_remote_account_by_handle(runtime, client, new_account, fedi):
    """resolve=true looks an unknown `@user@host` up through WebFinger and fetches its actor,
    storing it as the follow page does; without resolve an unknown handle is not looked up,
    and once held the account is found from the database with no request at all."""
    zoe = fedi.actor("zoe", "remote.example")
    webfinger = serve_webfinger(fedi, zoe)
    _, token = await me_and_token(runtime, new_account)

    r = await client.get(SEARCH, params={"q": "@zoe@remote.example"}, headers=bearer(token))
    assert r.json()["accounts"] == [] and fedi.requests == []

    r = await client.get(SEARCH, params={"q": "@zoe@remote.example", "resolve": "true"},
                         headers=bearer(token))  # fmt: skip
    assert r.status_code == 200, r.text
    found = r.json()["accounts"]
    assert [a["acct"] for a in found] == ["zoe@remote.example"]
    assert found[0]["display_name"] == "Zoe"
    assert fedi.gets() == [webfinger, zoe.uri]
    assert await count(runtime, Account, Account.uri == zoe.uri, Account.local.is_(False)) == 1

    fedi.requests.clear()
    r = await client.get(SEARCH, params={"q": "zoe@remote.example", "resolve": "true"},
                         headers=bearer(token))  # fmt: skip
    assert [a["acct"] for a in r.json()["accounts"]] == ["zoe@remote.example"]
    for q in ("@zo", "zoe@remote"):  # prefixes of the name and of the domain
        r = await client.get(SEARCH, params={"q": q}, headers=bearer(token))
        assert [a["acct"] for a in r.json()["accounts"]] == ["zoe@remote.example"], q
    assert fedi.requests == []


async def test_resolve_finds_a_remote_post_and_actor_by_url(runtime, client, new_account,
                                                            fedi):  # fmt: skip
    """resolve=true fetches an unknown https URL once through the safe fetcher: a Note is
    stored as an inbox post would be (its author fetched too) and answered as a Status; an
    actor URL is stored as an account; a type that does not match finds nothing."""
    zoe = fedi.actor("zoe", "remote.example")
    note = zoe.note("<p>a remote painting #remote</p>")
    fedi.serve(note["id"], note)
    _, token = await me_and_token(runtime, new_account)

    r = await client.get(SEARCH, params={"q": note["id"], "resolve": "true"},
                         headers=bearer(token))  # fmt: skip
    assert r.status_code == 200, r.text
    statuses = r.json()["statuses"]
    assert [s["uri"] for s in statuses] == [note["id"]]
    assert statuses[0]["account"]["acct"] == "zoe@remote.example"
    assert "a remote painting" in statuses[0]["content"]
    assert fedi.gets() == [note["id"], zoe.uri]
    assert await count(runtime, Post, Post.uri == note["id"]) == 1

    fedi.requests.clear()
    r = await client.get(SEARCH, params={"q": note["id"]})  # held now: anyone finds it
    assert [s["uri"] for s in r.json()["statuses"]] == [note["id"]] and fedi.requests == []

    other = fedi.actor("yan", "elsewhere.example")
    r = await client.get(SEARCH, params={"q": other.uri, "resolve": "true", "type": "statuses"},
                         headers=bearer(token))  # fmt: skip
    assert r.json() == {"accounts": [], "statuses": [], "hashtags": []}
    r = await client.get(SEARCH, params={"q": other.uri, "resolve": "true"},
                         headers=bearer(token))  # fmt: skip
    assert [a["acct"] for a in r.json()["accounts"]] == ["yan@elsewhere.example"]
    assert await count(runtime, Account, Account.uri == other.uri) == 1


async def test_resolve_never_shows_a_fetched_post_the_caller_may_not_see(
    runtime, client, new_account, fedi
):
    """A followers-only post fetched by resolve is stored, but not shown to a caller who
    does not follow its author."""
    zoe = fedi.actor("zoe", "remote.example")
    note = zoe.note("<p>only for my followers</p>", to=[f"{zoe.uri}/followers"], cc=[])
    fedi.serve(note["id"], note)
    _, token = await me_and_token(runtime, new_account)
    r = await client.get(SEARCH, params={"q": note["id"], "resolve": "true"},
                         headers=bearer(token))  # fmt: skip
    assert r.status_code == 200 and r.json()["statuses"] == []
    assert await count(runtime, Post, Post.uri == note["id"], Post.visibility == "followers") == 1


async def test_resolve_never_asks_a_blocked_domain(runtime, client, new_account, fedi):
    """A suspended domain is never asked: neither WebFinger for a handle on it nor a URL on
    it (or under it) is fetched, and its accounts we hold are not listed."""
    eve = fedi.actor("eve", "blocked.example")
    note = eve.note()
    fedi.serve(note["id"], note)
    sub = fedi.actor("sam", "sub.blocked.example")
    serve_webfinger(fedi, eve)
    serve_webfinger(fedi, sub)
    await domains.block_domain(runtime, "blocked.example")
    _, token = await me_and_token(runtime, new_account)
    for q in ("@eve@blocked.example", eve.uri, note["id"], sub.uri, "@sam@sub.blocked.example"):
        r = await client.get(SEARCH, params={"q": q, "resolve": "true"}, headers=bearer(token))
        assert r.status_code == 200, r.text
        assert r.json() == {"accounts": [], "statuses": [], "hashtags": []}, q
    assert fedi.requests == []


# -- the SSRF guard ------------------------------------------------------------------------
class Trap:
    """The event loop's resolver replaced by a table, and `socket.connect` by a refusal that
    records the address: no packet leaves the machine (tests/activitypub/test_ap_netguard.py)."""

    def __init__(self) -> None:
        self.dns: dict[str, list[str]] = {}
        self.lookups: list[str] = []
        self.connects: list[Any] = []


@pytest.fixture
async def trap(monkeypatch) -> Trap:
    state = Trap()
    loop = asyncio.get_running_loop()

    async def fake_getaddrinfo(host, port, *, family=0, type=0, proto=0, flags=0):
        state.lookups.append(host)
        if host not in state.dns:
            raise socket.gaierror(socket.EAI_NONAME, "unknown host in the test table")
        out = []
        for address in state.dns[host]:
            six = ipaddress.ip_address(address).version == 6
            out.append((socket.AF_INET6 if six else socket.AF_INET, socket.SOCK_STREAM, 6, "",
                        (address, port, 0, 0) if six else (address, port)))  # fmt: skip
        return out

    def fake_connect(sock, address):
        state.connects.append(address)
        raise ConnectionRefusedError("test trap: nothing sent")

    monkeypatch.setattr(loop, "getaddrinfo", fake_getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", fake_connect)
    return state


@pytest.fixture
async def guarded(tmp_path) -> AsyncIterator[Runtime]:
    """An instance as deployed: private addresses refused by its HTTP clients."""
    settings = make_settings(tmp_path / "guarded", federation={"allow_private_addresses": False})
    async with instance_runtime(settings) as rt:
        yield rt


async def test_resolve_goes_through_the_ssrf_guard(guarded, trap):
    """Resolving a URL or a handle whose host is a private address (by its DNS answer or as
    an IP literal) is refused by the guarded clients before any connection is made: the
    search answers 200 with nothing found, and no socket ever connects."""
    trap.dns["evil.example"] = ["10.0.0.7"]
    trap.dns["metadata.example"] = ["169.254.169.254"]
    async with guarded.session() as s:
        me = await create_account(s, guarded.urls, NewAccount("reader"))
    token = await api_token(guarded, me)
    async with asgi_client(guarded) as client:
        private = (
            "https://evil.example/users/x",
            "@x@metadata.example",
            "https://169.254.169.254/latest/meta-data/",
            "https://[::1]/users/x",
        )
        for q in private:
            r = await client.get(SEARCH, params={"q": q, "resolve": "true"},
                                 headers=bearer(token))  # fmt: skip
            assert r.status_code == 200, r.text
            assert r.json() == {"accounts": [], "statuses": [], "hashtags": []}, q
    assert trap.connects == []
    assert trap.lookups == ["evil.example", "metadata.example"]  # literals are not resolved
