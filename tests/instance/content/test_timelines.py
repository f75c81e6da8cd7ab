"""Timelines: home, local, federated and account pages, with visibility rules and boosts."""

from __future__ import annotations

from datetime import timedelta

import pytest

from instance.content import timelines
from instance.content.posting import Draft, publish
from instance.content.text import plain_text
from instance.storage.models import Account, Boost, Follow


@pytest.fixture
async def world(runtime, new_account):
    alice = await new_account("alice")
    bob = await new_account("bob")
    carol = await new_account("carol")
    async with runtime.session() as s:
        alice, bob, carol = [await s.get(Account, a.id) for a in (alice, bob, carol)]
        s.add(Follow(follower_id=bob.id, followee_id=alice.id, uri="urn:f1", accepted=True))
        s.add(Follow(follower_id=bob.id, followee_id=carol.id, uri="urn:f2", accepted=True))
        posts = {}
        for vis in ("public", "unlisted", "followers"):
            posts[vis] = await publish(
                s, runtime, alice, Draft(text=f"{vis} post", visibility=vis)
            )
        carols = await publish(s, runtime, carol, Draft(text="carol's own"))
        s.add(
            Boost(
                account_id=carol.id,
                post_id=posts["public"].id,
                uri="urn:b1",
                published=posts["public"].published + timedelta(seconds=5),
            )
        )
    return alice, bob, carol, posts, carols


async def texts(runtime, kind, **kw):
    async with runtime.sessions() as s:
        return [
            (plain_text(e.post.content), e.boosted_by.username if e.boosted_by else None)
            for e in await timelines.read(s, kind, now=runtime.now(), **kw)
        ]


async def test_home_shows_followed_posts_and_their_boosts(runtime, world) -> None:
    _, bob, *_ = world
    got = await texts(runtime, "home", viewer=bob)
    assert ("public post", "carol") in got  # boosted by a followed account
    assert {"public post", "unlisted post", "followers post", "carol's own"} <= {t for t, _ in got}


async def test_local_and_federated_are_public_only(runtime, world) -> None:
    for kind in ("local", "federated"):
        got = {t for t, _ in await texts(runtime, kind)}
        assert got == {"public post", "carol's own"}


async def test_account_page_respects_followers_only(runtime, world) -> None:
    alice, bob, carol, *_ = world
    as_carol = {t for t, _ in await texts(runtime, "account", author=alice, viewer=carol)}
    assert as_carol == {"public post", "unlisted post"}
    as_bob = {t for t, _ in await texts(runtime, "account", author=alice, viewer=bob)}
    assert "followers post" in as_bob


async def test_paging_with_before(runtime, world) -> None:
    _, bob, *_ = world
    async with runtime.sessions() as s:
        first = await timelines.read(s, "home", viewer=bob, limit=2, now=runtime.now())
        rest = await timelines.read(
            s, "home", viewer=bob, before=first[-1].at, limit=10, now=runtime.now()
        )
    assert len(first) == 2
    assert not {e.post.id for e in first if not e.boosted_by} & {
        e.post.id for e in rest if not e.boosted_by
    }
    assert all(e.at < first[-1].at for e in rest)


async def test_unknown_kind(runtime) -> None:
    async with runtime.sessions() as s:
        with pytest.raises(ValueError, match="unknown timeline 'nope'"):
            await timelines.read(s, "nope", now=runtime.now())
