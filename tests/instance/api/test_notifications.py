"""GET /api/v1/notifications (types, exclude_types, paging), one notification, dismiss and
clear, as Mastodon's clients call them; the notifications come from the content wing's own
actions (follow, like, boost, a mention)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from instance.content import actions
from instance.content.posting import Draft, publish
from instance.storage.models import Account, Notification, Post
from tests.instance.api.api_helpers import api_token, bearer


@pytest.fixture
async def world(runtime, new_account):
    """bob follows alice, likes and boosts her post, and mentions her: four notifications
    of alice's, oldest first; carol likes the post too (a fifth)."""
    alice, bob, carol = [await new_account(n) for n in ("alice", "bob", "carol")]
    async with runtime.session() as s:
        a, b = await s.get(Account, alice.id), await s.get(Account, bob.id)
        art = await publish(s, runtime, a, Draft(text="my picture"))
        await actions.follow(s, runtime, b, a)
        await actions.like(s, runtime, b, art)
        await actions.boost(s, runtime, b, art)
        await publish(s, runtime, b, Draft(text="hello @alice", mentions=[a]))
        await actions.like(s, runtime, await s.get(Account, carol.id), art)
    auth = bearer(await api_token(runtime, alice))
    return alice, bob, carol, art, auth


def kinds(r) -> list[str]:
    return [n["type"] for n in r.json()]


async def test_lists_the_callers_notifications_newest_first(client, world):
    """Every notification of the caller, newest first, in Mastodon's type names, with the
    account that caused it and (for a like, boost or mention) the status."""
    _, bob, carol, art, auth = world
    r = await client.get("/api/v1/notifications", headers=auth)
    assert r.status_code == 200, r.text
    got = r.json()
    assert kinds(r) == ["favourite", "mention", "reblog", "favourite", "follow"]
    assert [n["account"]["id"] for n in got] == [str(carol.id)] + [str(bob.id)] * 4
    assert got[0]["status"]["id"] == art.public_id and "status" not in got[-1]
    ids = [int(n["id"]) for n in got]
    assert ids == sorted(ids, reverse=True)


async def test_types_and_exclude_types_filter_by_mastodon_names(client, world):
    """`types[]` keeps only those types, `exclude_types[]` leaves them out, both in
    Mastodon's names (favourite = a like, reblog = a boost); an unknown name matches none."""
    auth = world[-1]
    r = await client.get("/api/v1/notifications?types[]=favourite&types[]=follow", headers=auth)
    assert kinds(r) == ["favourite", "favourite", "follow"]
    r = await client.get("/api/v1/notifications",
                         params=[("exclude_types[]", "favourite"), ("exclude_types[]", "mention")],
                         headers=auth)  # fmt: skip
    assert kinds(r) == ["reblog", "follow"]
    r = await client.get("/api/v1/notifications?types[]=poll", headers=auth)
    assert r.json() == []
    r = await client.get("/api/v1/notifications?exclude_types[]=poll", headers=auth)
    assert len(r.json()) == 5
    bob = world[1]
    r = await client.get(f"/api/v1/notifications?account_id={bob.id}", headers=auth)
    assert len(r.json()) == 4


async def test_paging_with_the_link_header(client, world):
    """`limit` and the Link header's next page walk all notifications without repeats."""
    auth = world[-1]
    seen: list[str] = []
    url = "/api/v1/notifications?limit=2&exclude_types[]=follow"
    while url:
        r = await client.get(url, headers=auth)
        page = [n["id"] for n in r.json()]
        assert len(page) <= 2
        seen += page
        url = r.links.get("next", {}).get("url") if page else None
    assert len(seen) == 4 == len(set(seen))
    every = await client.get("/api/v1/notifications?exclude_types[]=follow", headers=auth)
    assert seen == [n["id"] for n in every.json()]
    newer = await client.get(f"/api/v1/notifications?min_id={seen[-1]}&limit=2", headers=auth)
    assert [n["id"] for n in newer.json()] == seen[-3:-1]


async def test_one_notification_and_only_ones_own(runtime, client, world):
    """GET /notifications/:id answers the caller's own; someone else's, or a malformed id,
    is 404."""
    _, bob, _, _, auth = world
    first = (await client.get("/api/v1/notifications", headers=auth)).json()[0]
    r = await client.get(f"/api/v1/notifications/{first['id']}", headers=auth)
    assert r.status_code == 200 and r.json() == first
    bobs = bearer(await api_token(runtime, bob))
    assert (
        await client.get(f"/api/v1/notifications/{first['id']}", headers=bobs)
    ).status_code == 404
    assert (await client.get("/api/v1/notifications/abc", headers=auth)).status_code == 404


async def test_dismiss_and_clear(runtime, client, world):
    """Dismiss removes one notification (404 for one that is not the caller's), clear
    removes all of the caller's and no one else's; both need write:notifications."""
    alice, bob, _, _, auth = world
    async with runtime.session() as s:  # bob gets one too, from alice
        bobs_post = await publish(s, runtime, await s.get(Account, bob.id), Draft(text="b"))
        await actions.like(s, runtime, await s.get(Account, alice.id), bobs_post)
    first = (await client.get("/api/v1/notifications", headers=auth)).json()[0]
    read_only = bearer(await api_token(runtime, alice, "read"))
    url = f"/api/v1/notifications/{first['id']}/dismiss"
    assert (await client.post(url, headers=read_only)).status_code == 403
    r = await client.post(url, headers=auth)
    assert r.status_code == 200 and r.json() == {}
    assert (
        await client.get(f"/api/v1/notifications/{first['id']}", headers=auth)
    ).status_code == 404
    assert (await client.post(url, headers=auth)).status_code == 404
    assert len((await client.get("/api/v1/notifications", headers=auth)).json()) == 4
    r = await client.post("/api/v1/notifications/clear", headers=auth)
    assert r.status_code == 200 and r.json() == {}
    assert (await client.get("/api/v1/notifications", headers=auth)).json() == []
    async with runtime.sessions() as s:
        left = await s.scalar(select(func.count()).select_from(Notification))
    assert left == 1  # bob's


async def test_notifications_need_a_user_token_and_hide_suspended_senders(runtime, client, world):
    """No token is 401, a token without read:notifications 403; a suspended sender's
    notifications are not listed (the content wing's rule), and come back when lifted."""
    alice, bob, _, _, auth = world
    assert (await client.get("/api/v1/notifications")).status_code == 401
    statuses_only = bearer(await api_token(runtime, alice, "read:statuses"))
    assert (await client.get("/api/v1/notifications", headers=statuses_only)).status_code == 403
    async with runtime.session() as s:
        (await s.get(Account, bob.id)).suspended_at = runtime.now()
    assert kinds(await client.get("/api/v1/notifications", headers=auth)) == ["favourite"]
    async with runtime.session() as s:
        (await s.get(Account, bob.id)).suspended_at = None
    assert len((await client.get("/api/v1/notifications", headers=auth)).json()) == 5


async def test_a_notification_whose_status_is_gone_is_left_out(runtime, client, world):
    """When the post a notification is about is deleted, the notification is not shown."""
    _, _, _, art, auth = world
    async with runtime.session() as s:
        (await s.get(Post, art.id)).deleted_at = runtime.now()
    assert kinds(await client.get("/api/v1/notifications", headers=auth)) == ["mention", "follow"]
