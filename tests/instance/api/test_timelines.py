"""GET /api/v1/timelines/home, /public and /tag/:hashtag: what each lists, who may read it,
and Mastodon's id pagination with the Link header."""

from __future__ import annotations

import pytest

from instance.content import actions
from instance.content.posting import Draft, publish
from instance.storage.models import Account, MediaAttachment, Post
from tests.instance.api.api_helpers import api_token, bearer

AS_PUBLIC = "https://www.w3.org/ns/activitystreams#Public"


async def post(runtime, who: Account, text: str, **kw) -> Post:
    async with runtime.session() as s:
        return await publish(s, runtime, await s.get(Account, who.id), Draft(text=text, **kw))


async def remote_post(runtime, text: str) -> Post:
    """A public post of mo@m.example, stored as the inbox would store it."""
    async with runtime.session() as s:
        mo = Account(username="mo", username_key="mo", domain="m.example", local=False,
                     uri="https://m.example/users/mo")  # fmt: skip
        s.add(mo)
        await s.flush()
        row = Post(uri="https://m.example/notes/1", url="https://m.example/@mo/1",
                   account_id=mo.id, content=f"<p>{text}</p>", visibility="public",
                   to=[AS_PUBLIC])  # fmt: skip
        s.add(row)
    return row


@pytest.fixture
async def world(runtime, new_account):
    """alice follows bob; carol is followed by nobody; bob boosts one of carol's posts."""
    alice, bob, carol = [await new_account(n) for n in ("alice", "bob", "carol")]
    async with runtime.session() as s:
        await actions.follow(
            s, runtime, await s.get(Account, alice.id), await s.get(Account, bob.id)
        )
    posts = {
        "a1": await post(runtime, alice, "alice's own"),
        "b1": await post(runtime, bob, "bob public"),
        "b2": await post(runtime, bob, "bob followers only", visibility="followers"),
        "b3": await post(runtime, bob, "bob unlisted", visibility="unlisted"),
        "c1": await post(runtime, carol, "carol public #Cats"),
        "c2": await post(runtime, carol, "carol followers only", visibility="followers"),
    }
    async with runtime.session() as s:
        c1 = await s.get(Post, posts["c1"].id)
        boost = await actions.boost(s, runtime, await s.get(Account, bob.id), c1)
    return alice, bob, carol, posts, boost


def texts(statuses: list[dict]) -> list[str]:
    return [s["content"] for s in statuses]


async def test_home_lists_followed_and_own_posts_and_followed_boosts(runtime, client, world):
    """Home holds the caller's posts and those of the accounts it follows (followers-only
    included), and their boosts as reblogs (the reblog's id is the boost's, its `reblog`
    the boosted post), newest first; posts of accounts it does not follow are not there."""
    alice, bob, _, posts, boost = world
    r = await client.get("/api/v1/timelines/home",
                         headers=bearer(await api_token(runtime, alice)))  # fmt: skip
    assert r.status_code == 200, r.text
    got = r.json()
    ids = [s["id"] for s in got]
    assert ids == sorted(ids, reverse=True)
    assert ids[0] == boost.public_id
    reblog = got[0]
    assert reblog["account"]["id"] == str(bob.id)
    assert reblog["reblog"]["id"] == posts["c1"].public_id
    plain = {s["id"] for s in got[1:]}
    assert plain == {posts[k].public_id for k in ("a1", "b1", "b2", "b3")}
    assert posts["c2"].public_id not in ids


async def test_home_needs_a_user_token_with_read_statuses(runtime, client, world):
    """Home needs a token: none is 401, one without read:statuses 403, app-only 422."""
    alice = world[0]
    assert (await client.get("/api/v1/timelines/home")).status_code == 401
    other = bearer(await api_token(runtime, alice, "read:accounts"))
    assert (await client.get("/api/v1/timelines/home", headers=other)).status_code == 403
    granular = bearer(await api_token(runtime, alice, "read:statuses"))
    assert (await client.get("/api/v1/timelines/home", headers=granular)).status_code == 200
    app = bearer(await api_token(runtime, None, "read"))
    assert (await client.get("/api/v1/timelines/home", headers=app)).status_code == 422


async def test_pagination_follows_the_link_header_without_gaps(runtime, client, new_account):
    """`limit` pages the timeline newest first; the Link header's next (max_id) and prev
    (min_id) pages continue it without gaps or repeats; `since_id` gives the newest after
    an id, `min_id` the oldest after it, both answered newest first."""
    dora = await new_account("dora")
    made = [(await post(runtime, dora, f"number {i}")).public_id for i in range(7)]
    newest_first = list(reversed(made))
    auth = bearer(await api_token(runtime, dora))
    seen: list[str] = []
    url = "/api/v1/timelines/home?limit=3"
    while url:
        r = await client.get(url, headers=auth)
        page = [s["id"] for s in r.json()]
        seen += page
        url = r.links.get("next", {}).get("url") if page else None
    assert seen == newest_first
    first = await client.get("/api/v1/timelines/home?limit=3", headers=auth)
    prev = await client.get(first.links["prev"]["url"], headers=auth)
    assert prev.json() == []  # nothing newer than the newest
    assert "limit=3" in first.links["next"]["url"]
    since = await client.get(f"/api/v1/timelines/home?since_id={made[2]}&limit=2", headers=auth)
    assert [s["id"] for s in since.json()] == [made[6], made[5]]
    after = await client.get(f"/api/v1/timelines/home?min_id={made[2]}&limit=2", headers=auth)
    assert [s["id"] for s in after.json()] == [made[4], made[3]]
    bad = await client.get("/api/v1/timelines/home?limit=x", headers=auth)
    assert bad.status_code == 422 and "error" in bad.json()


async def test_public_timeline_local_remote_and_only_media(runtime, client, world):
    """The public timeline is public posts only, readable without a token; `local=true`
    keeps ours, `remote=true` others', `only_media=true` those with an attachment; a bad
    token is still 401."""
    _, _, carol, posts, _ = world
    theirs = await remote_post(runtime, "from afar")
    async with runtime.session() as s:
        picture = MediaAttachment(account_id=carol.id, file_name=f"{'a' * 26}.png",
                                  width=64, height=64)  # fmt: skip
        s.add(picture)
        draft = Draft(text="with a picture", media=[picture])
        with_media = await publish(s, runtime, await s.get(Account, carol.id), draft)
    r = await client.get("/api/v1/timelines/public")
    assert r.status_code == 200, r.text
    every = {s["id"] for s in r.json()}
    public = {posts[k].public_id for k in ("a1", "b1", "c1")}
    assert every == public | {theirs.public_id, with_media.public_id}
    local = {s["id"] for s in (await client.get("/api/v1/timelines/public?local=true")).json()}
    assert local == public | {with_media.public_id}
    remote = (await client.get("/api/v1/timelines/public?remote=true")).json()
    assert [s["id"] for s in remote] == [theirs.public_id]
    media = (await client.get("/api/v1/timelines/public?only_media=true")).json()
    assert [s["id"] for s in media] == [with_media.public_id]
    assert media[0]["media_attachments"][0]["url"].endswith(".png")
    both = await client.get("/api/v1/timelines/public?local=true&remote=true")
    assert {s["id"] for s in both.json()} == every
    bad = await client.get("/api/v1/timelines/public", headers=bearer("not-a-token"))
    assert bad.status_code == 401


async def test_public_timeline_with_a_token_says_what_the_caller_did(runtime, client, world):
    """With a token the statuses carry the caller's own state (here: favourited)."""
    alice, _, _, posts, _ = world
    async with runtime.session() as s:
        await actions.like(s, runtime, await s.get(Account, alice.id),
                           await s.get(Post, posts["b1"].id))  # fmt: skip
    auth = bearer(await api_token(runtime, alice, "read"))
    got = {s["id"]: s for s in (await client.get("/api/v1/timelines/public", headers=auth)).json()}
    assert got[posts["b1"].public_id]["favourited"] is True
    assert got[posts["c1"].public_id]["favourited"] is False


async def test_tag_timeline(runtime, client, world):
    """The tag timeline lists public posts with the hashtag, whatever its case or a
    leading '#'; other posts and other tags are not there."""
    posts = world[3]
    for name in ("cats", "Cats", "%23cats"):
        r = await client.get(f"/api/v1/timelines/tag/{name}")
        assert r.status_code == 200, r.text
        assert [s["id"] for s in r.json()] == [posts["c1"].public_id], name
    assert (await client.get("/api/v1/timelines/tag/dogs")).json() == []
    local = await client.get("/api/v1/timelines/tag/cats?remote=true")
    assert local.json() == []
