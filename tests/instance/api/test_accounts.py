"""Accounts in the client API: the caller's profile, other accounts and their posts,
following, relationships, follower lists and follow requests."""

from __future__ import annotations

import asyncio
import io
import json

import httpx
import pytest
from mastodon import Mastodon
from PIL import Image
from sqlalchemy import select

from instance.content import actions
from instance.content.posting import Draft, publish
from instance.inbound import resolve
from instance.storage.models import (
    Account,
    Boost,
    Delivery,
    Follow,
    MediaAttachment,
    OutboundActivity,
    Post,
)
from instance.urls import INSTANCE_ACTOR_USERNAME
from tests.instance.api.api_helpers import api_token, bearer


def png(width: int = 64, height: int = 64, color: str = "teal") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, "PNG")
    return out.getvalue()


async def me_and_token(runtime, new_account, scope: str = "read write follow", **kw):
    me = await new_account("alice", **kw)
    return me, await api_token(runtime, me, scope)


async def remote(runtime, username: str = "rem", domain: str = "remote.example") -> Account:
    async with runtime.session() as s:
        row = Account(username=username, username_key=username, domain=domain, local=False,
                      uri=f"https://{domain}/users/{username}",
                      inbox_uri=f"https://{domain}/users/{username}/inbox")  # fmt: skip
        s.add(row)
    return row


async def follow_row(runtime, follower: Account, followee: Account, accepted: bool = True):
    async with runtime.session() as s:
        s.add(Follow(follower_id=follower.id, followee_id=followee.id, accepted=accepted,
                     uri=f"https://x.example/follows/{follower.id}-{followee.id}"))  # fmt: skip


async def post_as(runtime, account: Account, text: str, **draft) -> Post:
    async with runtime.session() as s:
        author = await s.get_one(Account, account.id)
        media = draft.pop("media_file", None)
        if media:
            row = MediaAttachment(account_id=author.id, file_name=media, width=64, height=64)
            s.add(row)
            await s.flush()
            draft["media"] = [row]
        return await publish(s, runtime, author, Draft(text=text, **draft))


async def kinds_sent(runtime, kind: str) -> list[tuple[dict, list[str]]]:
    async with runtime.sessions() as s:
        out = []
        for row in await s.scalars(select(OutboundActivity).where(OutboundActivity.kind == kind)):
            inboxes = list(await s.scalars(
                select(Delivery.inbox_uri).where(Delivery.activity_id == row.id)))  # fmt: skip
            out.append((json.loads(row.body), inboxes))
        return out


# -- the caller's own account --------------------------------------------------------------
async def test_verify_credentials_is_the_account_with_its_source(runtime, client, new_account):
    """verify_credentials answers the caller's Account plus `source`: the note as typed,
    the fields, the default privacy and the number of follow requests waiting."""
    me, token = await me_and_token(runtime, new_account, bio="I paint <b>fog</b>",
                                   manually_approves_followers=True)  # fmt: skip
    await follow_row(runtime, await remote(runtime), me, accepted=False)
    r = await client.get("/api/v1/accounts/verify_credentials", headers=bearer(token))
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["id"] == str(me.id) and doc["username"] == "alice" and doc["acct"] == "alice"
    assert doc["locked"] is True
    assert doc["source"]["note"] == "I paint <b>fog</b>"
    assert doc["source"]["privacy"] == "public" and doc["source"]["sensitive"] is False
    assert doc["source"]["fields"] == [] and doc["source"]["follow_requests_count"] == 1


@pytest.mark.parametrize(("scope", "status"), [
    ("profile", 200), ("read:accounts", 200), ("read", 200), ("read:statuses", 403),
    ("write", 403),
])  # fmt: skip
async def test_verify_credentials_needs_profile_or_read_accounts(
    runtime, client, new_account, scope, status
):
    """The profile scope (Mastodon 4.3) or read:accounts lets a token read its own account;
    a token without either gets 403, no token 401, an app-only token 422."""
    _, token = await me_and_token(runtime, new_account, scope)
    r = await client.get("/api/v1/accounts/verify_credentials", headers=bearer(token))
    assert r.status_code == status
    assert (await client.get("/api/v1/accounts/verify_credentials")).status_code == 401
    app_only = await api_token(runtime, None, "read")
    r = await client.get("/api/v1/accounts/verify_credentials", headers=bearer(app_only))
    assert r.status_code == 422 and "error" in r.json()


async def test_update_credentials_changes_the_profile_and_tells_followers(
    runtime, client, new_account
):
    """update_credentials changes the display name, note, fields, locked and discoverable;
    the answer shows them, and the followers' servers are sent an actor Update that carries
    them (as the CLI's profile change does)."""
    me, token = await me_and_token(runtime, new_account)
    await follow_row(runtime, await remote(runtime), me)
    r = await client.patch("/api/v1/accounts/update_credentials", headers=bearer(token), data={
        "display_name": "Alice Fog", "note": "Harbours & fog", "locked": "true",
        "discoverable": "0",
        "fields_attributes[0][name]": "Site", "fields_attributes[0][value]": "https://a.example",
        "fields_attributes[1][name]": "Medium", "fields_attributes[1][value]": "diffusion",
    })  # fmt: skip
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["display_name"] == "Alice Fog" and doc["locked"] is True
    assert doc["discoverable"] is False
    assert doc["source"]["note"] == "Harbours & fog"
    assert [(f["name"], f["value"]) for f in doc["source"]["fields"]] == [
        ("Site", "https://a.example"), ("Medium", "diffusion")]  # fmt: skip
    assert [f["name"] for f in doc["fields"]] == ["Site", "Medium"]
    assert 'href="https://a.example"' in doc["fields"][0]["value"]
    ((update, inboxes),) = await kinds_sent(runtime, "Update")
    actor = update["object"]
    assert actor["name"] == "Alice Fog" and actor["manuallyApprovesFollowers"] is True
    assert [a["name"] for a in actor["attachment"]] == ["Site", "Medium"]
    assert inboxes == ["https://remote.example/users/rem/inbox"]
    again = await client.get("/api/v1/accounts/verify_credentials", headers=bearer(token))
    assert again.json()["display_name"] == "Alice Fog"


async def test_update_credentials_takes_json_and_leaves_out_what_is_not_sent(
    runtime, client, new_account
):
    """A JSON body works too (fields as a list); what is not sent stays as it was, and a
    change that leaves the actor as it was sends no Update."""
    _me, token = await me_and_token(runtime, new_account, bio="keep me")
    r = await client.patch(
        "/api/v1/accounts/update_credentials",
        headers=bearer(token),
        json={"fields_attributes": [{"name": "Style", "value": "ink"}]},
    )
    assert r.status_code == 200, r.text
    assert r.json()["source"]["note"] == "keep me"
    assert [f["name"] for f in r.json()["source"]["fields"]] == ["Style"]
    r = await client.patch(
        "/api/v1/accounts/update_credentials", headers=bearer(token), json={"note": "keep me"}
    )
    assert r.status_code == 200
    assert len(await kinds_sent(runtime, "Update")) == 1


async def test_avatar_and_header_uploads_are_reshaped(runtime, client, new_account):
    """An avatar and a header sent as files become the account's pictures, cropped and
    scaled as instance/content/pictures.py says (a square avatar, a 3:1 header)."""
    me, token = await me_and_token(runtime, new_account)
    r = await client.patch(
        "/api/v1/accounts/update_credentials", headers=bearer(token),
        files={"avatar": ("a.png", png(300, 200), "image/png"),
               "header": ("h.png", png(900, 900, "navy"), "image/png")},
    )  # fmt: skip
    assert r.status_code == 200, r.text
    doc = r.json()
    for key, size in (("avatar", (400, 400)), ("header", (1500, 500))):
        assert "/media/" in doc[key]
        served = await client.get(doc[key])
        assert served.status_code == 200
        assert Image.open(io.BytesIO(served.content)).size == size
    async with runtime.sessions() as s:
        row = await s.get_one(Account, me.id)
    assert row.avatar_url == doc["avatar"] and row.header_url == doc["header"]


@pytest.mark.parametrize(("data", "files", "said"), [
    ({}, {"avatar": ("a.png", b"not an image", "image/png")}, "avatar"),
    ({"bot": "true"}, {}, "bot"),
    ({f"fields_attributes[{i}][name]": f"n{i}" for i in range(5)}, {}, "at most 4"),
    ({"display_name": "x" * 101}, {}, "display name too long"),
    ({"locked": "maybe"}, {}, "locked"),
])  # fmt: skip
async def test_update_credentials_refuses_what_it_cannot_keep(
    runtime, client, new_account, data, files, said
):
    """A file that is not an image, a bot flag a person's account cannot take, more fields
    than allowed, a name too long or a flag that is not a boolean: 422 saying why, and
    nothing changes."""
    _, token = await me_and_token(runtime, new_account)
    r = await client.patch("/api/v1/accounts/update_credentials", headers=bearer(token),
                           data=data, files=files or None)  # fmt: skip
    assert r.status_code == 422, r.text
    assert said in r.json()["error"]
    doc = (await client.get("/api/v1/accounts/verify_credentials", headers=bearer(token))).json()
    assert doc["display_name"] == "alice" and doc["source"]["fields"] == []


async def test_an_ai_account_stays_a_bot(runtime, client, new_account):
    """An AI account is a bot: saying so again is fine, taking it back is refused."""
    painter = await new_account("painter", ai=True)
    token = await api_token(runtime, painter)
    ok = await client.patch(
        "/api/v1/accounts/update_credentials",
        headers=bearer(token),
        data={"bot": "1", "display_name": "Painter"},
    )
    assert ok.status_code == 200 and ok.json()["bot"] is True
    no = await client.patch(
        "/api/v1/accounts/update_credentials", headers=bearer(token), data={"bot": "0"}
    )
    assert no.status_code == 422


async def test_update_credentials_needs_write_accounts(runtime, client, new_account):
    """Changing the profile needs write:accounts: a read token gets 403."""
    _, token = await me_and_token(runtime, new_account, "read")
    r = await client.patch(
        "/api/v1/accounts/update_credentials", headers=bearer(token), data={"display_name": "nope"}
    )
    assert r.status_code == 403


# -- other accounts ------------------------------------------------------------------------
async def test_show_and_lookup_find_known_accounts(runtime, client, new_account):
    """An account by its id, and by `user`, `@user`, `user@ourhost` or a remote
    `user@host` we know, without a token; one we do not know is 404 (lookup never fetches)."""
    bob = await new_account("bob")
    rem = await remote(runtime)
    r = await client.get(f"/api/v1/accounts/{bob.id}")
    assert r.status_code == 200 and r.json()["acct"] == "bob"
    for acct in ("bob", "@bob", f"bob@{runtime.settings.host}"):
        r = await client.get("/api/v1/accounts/lookup", params={"acct": acct})
        assert r.status_code == 200 and r.json()["id"] == str(bob.id)
    r = await client.get("/api/v1/accounts/lookup", params={"acct": "rem@remote.example"})
    assert r.status_code == 200 and r.json()["id"] == str(rem.id)
    assert r.json()["acct"] == "rem@remote.example"
    for acct in ("nobody", "nobody@remote.example"):
        r = await client.get("/api/v1/accounts/lookup", params={"acct": acct})
        assert r.status_code == 404 and r.json() == {"error": "Record not found"}
    assert (await client.get("/api/v1/accounts/999999")).status_code == 404


async def test_suspended_deleted_and_instance_accounts_are_not_found(runtime, client, new_account):
    """A suspended or deleted account, the instance actor, and an account of a suspended
    domain answer 404 by id and by lookup, and cannot be followed."""
    sus, gone = await new_account("sus"), await new_account("gone")
    blocked = await remote(runtime, "evil", "bad.example")
    _me, token = await me_and_token(runtime, new_account)
    from instance.moderation.domains import block_domain

    await block_domain(runtime, "bad.example")
    async with runtime.session() as s:
        (await s.get_one(Account, sus.id)).suspended_at = runtime.now()
        (await s.get_one(Account, gone.id)).deleted_at = runtime.now()
        actor = await s.scalar(select(Account).where(Account.username == INSTANCE_ACTOR_USERNAME))
    for target in (sus, gone, actor, blocked):
        assert (await client.get(f"/api/v1/accounts/{target.id}")).status_code == 404
        r = await client.post(f"/api/v1/accounts/{target.id}/follow", headers=bearer(token))
        assert r.status_code == 404
    for acct in ("sus", "gone", "evil@bad.example"):
        r = await client.get("/api/v1/accounts/lookup", params={"acct": acct})
        assert r.status_code == 404


async def test_a_token_without_read_scope_cannot_read_accounts(runtime, client, new_account):
    """Anyone may read an account, but a token that is sent must allow reading it, as
    Mastodon asks of a token it is given."""
    bob = await new_account("bob")
    _, token = await me_and_token(runtime, new_account, "write")
    r = await client.get(f"/api/v1/accounts/{bob.id}", headers=bearer(token))
    assert r.status_code == 403
    r = await client.get(f"/api/v1/accounts/{bob.id}/statuses", headers=bearer(token))
    assert r.status_code == 403


# -- an account's statuses -----------------------------------------------------------------
async def test_account_statuses_respect_visibility(runtime, client, new_account):
    """An account's statuses are those the caller may see (instance/content/visibility.py):
    without a token public posts, a signed-in account also unlisted ones, an accepted
    follower also followers-only ones; nobody sees deleted posts."""
    bob = await new_account("bob")
    posts = {v: await post_as(runtime, bob, v, visibility=v)
             for v in ("public", "unlisted", "followers")}  # fmt: skip
    follower, fan_token = await me_and_token(runtime, new_account)
    await follow_row(runtime, follower, bob)
    stranger = await new_account("carol")
    stranger_token = await api_token(runtime, stranger)
    gone = await post_as(runtime, bob, "deleted later")
    async with runtime.session() as s:
        (await s.get_one(Post, gone.id)).deleted_at = runtime.now()

    def ids(r: httpx.Response) -> set[str]:
        assert r.status_code == 200, r.text
        return {d["id"] for d in r.json()}

    path = f"/api/v1/accounts/{bob.id}/statuses"
    shared = {posts["public"].public_id, posts["unlisted"].public_id}
    assert ids(await client.get(path)) == {posts["public"].public_id}
    assert ids(await client.get(path, headers=bearer(stranger_token))) == shared
    fan = ids(await client.get(path, headers=bearer(fan_token)))
    assert fan == shared | {posts["followers"].public_id}
    r = await client.get(path, headers=bearer(fan_token))
    assert {d["visibility"] for d in r.json()} == {"public", "unlisted", "private"}


async def test_account_statuses_filters(runtime, client, new_account):
    """only_media lists posts with images, exclude_replies leaves out replies to others but
    keeps replies to itself, pinned lists pinned posts, tagged those with the hashtag."""
    bob = await new_account("bob")
    other = await new_account("dora")
    theirs = await post_as(runtime, other, "elsewhere")
    plain = await post_as(runtime, bob, "plain #fog")
    image = await post_as(runtime, bob, "image", media_file="0" * 26 + ".png")
    own_reply = await post_as(runtime, bob, "more", in_reply_to=plain)
    reply = await post_as(runtime, bob, "reply", in_reply_to=theirs)
    async with runtime.session() as s:
        (await s.get_one(Post, image.id)).pinned_at = runtime.now()
    path = f"/api/v1/accounts/{bob.id}/statuses"

    async def ids(**params: str) -> set[str]:
        r = await client.get(path, params=params)
        assert r.status_code == 200, r.text
        return {d["id"] for d in r.json()}

    assert await ids(only_media="true") == {image.public_id}
    assert reply.public_id not in await ids(exclude_replies="true")
    assert own_reply.public_id in await ids(exclude_replies="true")
    assert reply.public_id in await ids()
    assert await ids(pinned="true") == {image.public_id}
    assert await ids(tagged="fog") == {plain.public_id}
    assert await ids(tagged="FOG") == {plain.public_id}


async def test_account_statuses_list_boosts_unless_excluded(runtime, client, new_account):
    """The account's boosts are in its statuses as reblogs (as Mastodon lists them), and
    exclude_reblogs leaves them out."""
    bob, dora = await new_account("bob"), await new_account("dora")
    theirs = await post_as(runtime, dora, "boost me")
    own = await post_as(runtime, bob, "mine")
    async with runtime.session() as s:
        await actions.boost(s, runtime, await s.get_one(Account, bob.id),
                            await s.get_one(Post, theirs.id))  # fmt: skip
    async with runtime.sessions() as s:
        boost = await s.scalar(select(Boost))
    path = f"/api/v1/accounts/{bob.id}/statuses"
    doc = (await client.get(path)).json()
    assert [d["id"] for d in doc] == [boost.public_id, own.public_id]
    assert doc[0]["reblog"]["id"] == theirs.public_id and doc[0]["account"]["id"] == str(bob.id)
    doc = (await client.get(path, params={"exclude_reblogs": "true"})).json()
    assert [d["id"] for d in doc] == [own.public_id]


async def test_account_statuses_paginate_with_link_headers(runtime, client, new_account):
    """Statuses come newest first, `limit` at a time, with a Link header whose next page
    (max_id) and previous page (min_id) continue without gaps or repeats."""
    bob = await new_account("bob")
    made = [await post_as(runtime, bob, f"post {n}") for n in range(5)]
    newest_first = [p.public_id for p in reversed(made)]
    path = f"/api/v1/accounts/{bob.id}/statuses"
    first = await client.get(path, params={"limit": "2"})
    assert [d["id"] for d in first.json()] == newest_first[:2]
    links = httpx.Response(200, headers={"Link": first.headers["Link"]}).links
    second = await client.get(links["next"]["url"])
    assert [d["id"] for d in second.json()] == newest_first[2:4]
    back = httpx.Response(200, headers={"Link": second.headers["Link"]}).links
    again = await client.get(back["prev"]["url"])
    assert [d["id"] for d in again.json()] == newest_first[:2]
    assert "limit=2" in links["next"]["url"]


# -- following -----------------------------------------------------------------------------
async def test_follow_local_accounts_answers_the_relationship(runtime, client, new_account):
    """Following an unlocked local account is at once (following); a locked one is a
    request (requested) until it is approved; following twice changes nothing; unfollow
    takes either back."""
    _me, token = await me_and_token(runtime, new_account)
    open_, shy = (
        await new_account("bob"),
        await new_account("shy", manually_approves_followers=True),
    )
    r = await client.post(f"/api/v1/accounts/{open_.id}/follow", headers=bearer(token))
    assert r.status_code == 200, r.text
    rel = r.json()
    assert rel["id"] == str(open_.id) and rel["following"] is True and rel["requested"] is False
    assert rel["showing_reblogs"] is True and rel["blocking"] is False and rel["note"] == ""
    again = await client.post(f"/api/v1/accounts/{open_.id}/follow", headers=bearer(token))
    assert again.json() == rel
    r = await client.post(f"/api/v1/accounts/{shy.id}/follow", headers=bearer(token))
    assert r.json()["following"] is False and r.json()["requested"] is True
    for target in (open_, shy):
        r = await client.post(f"/api/v1/accounts/{target.id}/unfollow", headers=bearer(token))
        assert r.status_code == 200
        assert r.json()["following"] is False and r.json()["requested"] is False
    async with runtime.sessions() as s:
        assert list(await s.scalars(select(Follow))) == []


async def test_follow_a_remote_account_queues_the_follow(runtime, client, new_account, fedi):
    """Following a remote account (fetched by its actor URL) is a request until its server
    accepts, and a Follow is queued for its inbox; unfollowing queues the Undo."""
    actor = fedi.actor("zoe", "remote.example")
    me, token = await me_and_token(runtime, new_account)
    zoe = await resolve.account(runtime, actor.uri)
    r = await client.post(f"/api/v1/accounts/{zoe.id}/follow", headers=bearer(token))
    assert r.status_code == 200, r.text
    assert r.json()["requested"] is True and r.json()["following"] is False
    ((follow, inboxes),) = await kinds_sent(runtime, "Follow")
    assert follow["actor"] == me.uri and follow["object"] == actor.uri
    assert inboxes in ([actor.inbox], [actor.shared_inbox])
    r = await client.post(f"/api/v1/accounts/{zoe.id}/unfollow", headers=bearer(token))
    assert r.json()["requested"] is False
    ((undo, _),) = await kinds_sent(runtime, "Undo")
    assert undo["object"]["id"] == follow["id"]


async def test_following_needs_write_follows(runtime, client, new_account):
    """Follow and unfollow need write:follows (or follow): a read token gets 403 and
    nothing is followed; an account cannot follow itself (422)."""
    me, read_token = await me_and_token(runtime, new_account, "read")
    bob = await new_account("bob")
    r = await client.post(f"/api/v1/accounts/{bob.id}/follow", headers=bearer(read_token))
    assert r.status_code == 403
    follow_token = await api_token(runtime, me, "follow")
    r = await client.post(f"/api/v1/accounts/{bob.id}/follow", headers=bearer(follow_token))
    assert r.status_code == 200
    r = await client.post(f"/api/v1/accounts/{me.id}/follow", headers=bearer(follow_token))
    assert r.status_code == 422


async def test_relationships_of_several_accounts(runtime, client, new_account):
    """relationships?id[]= answers one Relationship per known id, in the order asked:
    following, followed_by, requested and requested_by as the follows are."""
    me, token = await me_and_token(runtime, new_account)
    a, b, c, d = [await new_account(n) for n in ("amy", "ben", "cat", "dov")]
    await follow_row(runtime, me, a)
    await follow_row(runtime, b, me)
    await follow_row(runtime, me, c, accepted=False)
    await follow_row(runtime, d, me, accepted=False)
    r = await client.get(
        "/api/v1/accounts/relationships",
        headers=bearer(token),
        params=[("id[]", str(x.id)) for x in (d, c, b, a)] + [("id[]", "999")],
    )
    assert r.status_code == 200, r.text
    got = {x["id"]: x for x in r.json()}
    assert [x["id"] for x in r.json()] == [str(x.id) for x in (d, c, b, a)]
    assert got[str(a.id)]["following"] and not got[str(a.id)]["followed_by"]
    assert got[str(b.id)]["followed_by"] and not got[str(b.id)]["following"]
    assert got[str(c.id)]["requested"] and not got[str(c.id)]["following"]
    assert got[str(d.id)]["requested_by"] and not got[str(d.id)]["followed_by"]
    assert (await client.get("/api/v1/accounts/relationships")).status_code == 401


async def test_followers_and_following_lists_paginate(runtime, client, new_account):
    """followers and following list accepted follows only, newest first, with Link paging
    (at most 80 a page); suspended accounts are left out."""
    star = await new_account("star")
    fans = [await new_account(f"fan{n}") for n in range(4)]
    for fan in fans:
        await follow_row(runtime, fan, star)
    await follow_row(runtime, await new_account("asking"), star, accepted=False)
    async with runtime.session() as s:
        (await s.get_one(Account, fans[0].id)).suspended_at = runtime.now()
    await follow_row(runtime, star, fans[1])
    path = f"/api/v1/accounts/{star.id}/followers"
    first = await client.get(path, params={"limit": "2"})
    assert first.status_code == 200, first.text
    assert [d["acct"] for d in first.json()] == ["fan3", "fan2"]
    nxt = httpx.Response(200, headers={"Link": first.headers["Link"]}).links["next"]["url"]
    assert [d["acct"] for d in (await client.get(nxt)).json()] == ["fan1"]
    r = await client.get(f"/api/v1/accounts/{star.id}/following")
    assert [d["acct"] for d in r.json()] == ["fan1"]
    big = await client.get(path, params={"limit": "500"})
    assert len(big.json()) == 3


async def test_follow_requests_are_listed_authorized_and_rejected(
    runtime, client, new_account, fedi
):
    """A locked account lists who asks to follow it; authorizing makes the follow accepted
    (followed_by) and sends a remote follower's server the Accept; rejecting removes the
    request and sends the Reject; answering a request that is not there is 404."""
    me, token = await me_and_token(runtime, new_account, manually_approves_followers=True)
    local = await new_account("bob")
    actor = fedi.actor("zoe", "remote.example")
    zoe = await resolve.account(runtime, actor.uri)
    await follow_row(runtime, local, me, accepted=False)
    await follow_row(runtime, zoe, me, accepted=False)
    r = await client.get("/api/v1/follow_requests", headers=bearer(token))
    assert r.status_code == 200, r.text
    assert [d["id"] for d in r.json()] == [str(zoe.id), str(local.id)]
    r = await client.post(f"/api/v1/follow_requests/{zoe.id}/authorize", headers=bearer(token))
    assert r.status_code == 200 and r.json()["followed_by"] is True
    assert r.json()["requested_by"] is False
    ((accept, _inboxes),) = await kinds_sent(runtime, "Accept")
    assert accept["object"]["actor"] == zoe.uri
    r = await client.post(f"/api/v1/follow_requests/{local.id}/reject", headers=bearer(token))
    assert r.status_code == 200 and r.json()["followed_by"] is False
    r = await client.get("/api/v1/follow_requests", headers=bearer(token))
    assert r.json() == []
    r = await client.post(f"/api/v1/follow_requests/{local.id}/authorize", headers=bearer(token))
    assert r.status_code == 404
    verify = await client.get("/api/v1/accounts/verify_credentials", headers=bearer(token))
    assert verify.json()["source"]["follow_requests_count"] == 0


# -- an independent client -----------------------------------------------------------------
async def test_mastodon_py_drives_accounts(runtime, live, new_account, fedi):
    """Mastodon.py, an independent client, reads its account, changes its profile (fields
    and an avatar file), looks up and follows a remote account (a Follow is queued), reads
    the relationship and pages an account's statuses."""
    me, token = await me_and_token(runtime, new_account)
    bob = await new_account("bob")
    for n in range(3):
        await post_as(runtime, bob, f"post {n}")
    actor = fedi.actor("zoe", "remote.example")
    zoe = await resolve.account(runtime, actor.uri)

    def drive() -> dict:
        api = Mastodon(access_token=token, api_base_url=live, version_check_mode="created")
        out: dict = {"me": api.account_verify_credentials()}
        out["updated"] = api.account_update_credentials(
            display_name="Alice",
            note="hi",
            fields=[("Site", "https://a.example")],
            avatar=png(),
            avatar_mime_type="image/png",
            locked=False,
        )
        out["zoe"] = api.account_lookup("zoe@remote.example")
        out["follow"] = api.account_follow(out["zoe"]["id"])
        out["rels"] = api.account_relationships([out["zoe"]["id"], bob.id])
        page = api.account_statuses(bob.id, limit=2)
        out["pages"] = [[s["id"] for s in page]]
        out["pages"].append([s["id"] for s in api.fetch_next(page)])
        return out

    out = await asyncio.wait_for(asyncio.to_thread(drive), timeout=60)
    assert str(out["me"]["id"]) == str(me.id)
    assert out["updated"]["display_name"] == "Alice"
    assert out["updated"]["source"]["fields"][0]["name"] == "Site"
    assert "/media/" in out["updated"]["avatar"]
    assert str(out["zoe"]["id"]) == str(zoe.id)
    assert out["follow"]["requested"] is True
    assert [str(r["id"]) for r in out["rels"]] == [str(zoe.id), str(bob.id)]
    assert len(out["pages"][0]) == 2 and len(out["pages"][1]) == 1
    assert len(await kinds_sent(runtime, "Follow")) == 1
