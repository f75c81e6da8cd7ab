"""Explore: public posts, local and federated, ranked by likes, remixes and boosts decayed
by age (instance/content/explore.py), and only those the public timelines may show."""

from __future__ import annotations

from datetime import timedelta

import pytest

from instance.content import explore
from instance.storage.models import Account, DomainBlock, Post


@pytest.fixture(autouse=True)
def _fresh_cache():
    explore.forget_cache()
    yield
    explore.forget_cache()


def test_score_rewards_remixes_twice_and_fades_with_age() -> None:
    """A remix weighs as two likes; the same counts score lower a day later; nothing is
    divided by zero at age 0."""
    assert explore.score(2, 0, 0, 5) == pytest.approx(explore.score(0, 0, 1, 5))
    assert explore.score(3, 1, 1, 1) > explore.score(3, 1, 1, 25)
    assert explore.score(0, 0, 0, 0) == pytest.approx(1 / 2**1.5)


@pytest.fixture
async def world(runtime, new_account):
    """Local and remote posts of known ages and counts, some of them not for Explore."""
    ann = await new_account("ann")
    now = runtime.now()
    async with runtime.session() as s:
        ann = await s.get(Account, ann.id)
        remote = Account(
            username="mo",
            username_key="mo",
            domain="m.example",
            local=False,
            uri="https://m.example/users/mo",
        )
        silenced = Account(
            username="si",
            username_key="si",
            domain="quiet.example",
            local=False,
            uri="https://quiet.example/users/si",
        )
        gone = Account(
            username="su",
            username_key="su",
            domain="s.example",
            local=False,
            uri="https://s.example/users/su",
            suspended_at=now,
        )
        s.add_all([remote, silenced, gone, DomainBlock(domain="quiet.example", severity="silence")])
        await s.flush()

        def post(author, name, hours, likes=0, boosts=0, **kw):
            p = Post(
                uri=f"https://{author.domain or runtime.settings.host}/notes/{name}",
                account_id=author.id,
                local=author.local,
                visibility="public",
                published=now - timedelta(hours=hours),
                likes_count=likes,
                boosts_count=boosts,
                content=name,
                **kw,
            )
            s.add(p)
            return p

        posts = {
            "fresh_plain": post(ann, "fresh_plain", 1),
            "liked_remote": post(remote, "liked_remote", 10, likes=20),
            "old_popular": post(ann, "old_popular", 24 * 8, likes=500),  # outside the window
            "private": post(
                ann,
                "private",
                1,
                likes=50,
            ),
            "silenced": post(silenced, "silenced", 1, likes=50),
            "suspended": post(gone, "suspended", 1, likes=50),
            "remixed": post(ann, "remixed", 10, likes=4),
        }
        posts["private"].visibility = "followers"
        await s.flush()
        for i in range(3):  # three remixes of "remixed": as much as six likes
            post(
                remote, f"remix{i}", 2, quote_id=posts["remixed"].id, quote_uri=posts["remixed"].uri
            )
        post(gone, "hidden_remix", 2, quote_id=posts["remixed"].id)  # by a suspended author
        await s.flush()
        ids = {k: p.id for k, p in posts.items()}
    return ids


async def test_ranking_orders_by_decayed_score_and_hides_what_timelines_hide(runtime, world):
    """Remixes count twice; posts older than the window, non-public ones, and those of a
    suspended account or a silenced domain are not candidates."""
    async with runtime.sessions() as s:
        ranked = await explore.rank(s, now=runtime.now())
    by_id = {r.post_id: r for r in ranked}
    for hidden in ("old_popular", "private", "silenced", "suspended"):
        assert world[hidden] not in by_id
    remixed = by_id[world["remixed"]]
    assert remixed.remixes == 3 and remixed.likes == 4  # the suspended author's remix not counted
    order = [r.post_id for r in ranked]
    # liked_remote: 21/12^1.5 = 0.505; remixed: 11/12^1.5 = 0.265; fresh_plain: 1/3^1.5 = 0.192
    assert order.index(world["liked_remote"]) < order.index(world["remixed"])
    assert order.index(world["remixed"]) < order.index(world["fresh_plain"])
    scores = [r.score for r in ranked]
    assert scores == sorted(scores, reverse=True)


async def test_candidates_are_only_the_newest_n(runtime, world):
    """With a candidate cap of 2, only the two newest posts of the window are ranked."""
    async with runtime.sessions() as s:
        ranked = await explore.rank(s, now=runtime.now(), candidates=2)
    assert len(ranked) == 2 and world["liked_remote"] not in {r.post_id for r in ranked}


async def test_explore_page_is_public_linked_from_the_header_and_shows_cards(client, world):
    """Anyone may open /explore; it lists the ranked posts as cards, best first, and the site
    header links to it."""
    r = await client.get("/explore")
    assert r.status_code == 200
    assert '<a href="/explore">Explore</a>' in r.text
    text = r.text
    assert text.index("liked_remote") < text.index("remixed") < text.index("fresh_plain")
    assert "silenced" not in text.split("<main>")[1] and "old_popular" not in text
    home = await client.get("/local")
    assert '<a href="/explore">Explore</a>' in home.text
