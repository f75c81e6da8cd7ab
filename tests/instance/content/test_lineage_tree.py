"""The lineage as a tree: a post's remixes nested (remixes of remixes) down to a depth limit,
with a count where it is cut; the same visibility and moderation rule at every level; the
post page draws it as nested lists, root first, this post highlighted, remote remixes linked."""

from __future__ import annotations

import re

import pytest

from instance.content import lineage
from instance.content.posting import Draft, publish
from instance.storage.models import Account, Post


@pytest.fixture
async def tree(runtime, new_account):
    """root <- child <- grandchild <- great; child <- private (followers-only) grandchild;
    child <- remote grandchild by mo (m.example); root <- second child."""
    painter = await new_account("painter", ai=True)
    bob = await new_account("bob")
    async with runtime.session() as s:
        painter, bob = await s.get(Account, painter.id), await s.get(Account, bob.id)

        async def remix(of, name, who=bob, vis="public"):
            return await publish(
                s,
                runtime,
                who,
                Draft(
                    text=name,
                    visibility=vis,
                    quote=of,
                    quote_state="accepted",
                    recipe={"prompt": f"{name} prompt"},
                ),
            )

        root = await publish(
            s, runtime, painter, Draft(text="root", recipe={"prompt": "root prompt"})
        )
        child = await remix(root, "child")
        grandchild = await remix(child, "grandchild")
        great = await remix(grandchild, "great")
        private = await remix(child, "private", vis="followers")
        second = await remix(root, "second")
        mo = Account(
            username="mo",
            username_key="mo",
            domain="m.example",
            local=False,
            uri="https://m.example/users/mo",
        )
        s.add(mo)
        await s.flush()
        remote = Post(
            uri="https://m.example/notes/r1",
            url="https://m.example/@mo/r1",
            account_id=mo.id,
            local=False,
            visibility="public",
            quote_id=child.id,
            quote_uri=child.uri,
            recipe={"prompt": "remote prompt"},
        )
        s.add(remote)
        await s.flush()
        return {k: v.id for k, v in locals().items() if isinstance(v, Post)}


def _shape(entries):
    return [(e["prompt"], _shape(e["remixes"]), e["more"]) for e in entries]


async def test_remixes_nest_and_hide_what_the_viewer_may_not_see(runtime, tree) -> None:
    """Remixes of remixes are nested under their parent; the followers-only one is not listed
    for an anonymous visitor (nor counted); the remote remix is listed with its own URL."""
    async with runtime.sessions() as s:
        root = await s.get(Post, tree["root"])
        found = await lineage.lineage_of(s, root, runtime.urls, None)
    assert _shape(found["remixes"]) == [
        (
            "child prompt",
            [
                ("grandchild prompt", [("great prompt", [], 0)], 0),
                ("remote prompt", [], 0),
            ],
            0,
        ),
        ("second prompt", [], 0),
    ]
    remote = found["remixes"][0]["remixes"][1]
    assert remote["url"] == "https://m.example/@mo/r1" and remote["local"] is False


async def test_depth_and_width_limits_leave_a_count(runtime, tree) -> None:
    """Cut at depth 2, the grandchild says it has 1 more remix; cut at 1 per post, the child
    says 1 more (the remote one) and the root 1 more (the second child)."""
    async with runtime.sessions() as s:
        root = await s.get(Post, tree["root"])
        shallow = await lineage.remixes(s, root, runtime.urls, None, depth=2)
        narrow = await lineage.remixes(s, root, runtime.urls, None, limit=1)
    assert _shape(shallow)[0][1][0] == ("grandchild prompt", [], 1)
    # the root itself has no entry to carry a count; its first child is listed
    assert [e["prompt"] for e in narrow] == ["child prompt"]
    assert narrow[0]["more"] == 1 and [e["prompt"] for e in narrow[0]["remixes"]] == [
        "grandchild prompt"
    ]


async def test_suspended_remixer_disappears_from_every_level(runtime, tree) -> None:
    """A suspended account's remix is not listed, however deep (the rule of lineage.py)."""
    async with runtime.session() as s:
        great = await s.get(Post, tree["great"])
        author = await s.get(Account, great.account_id)
        author.suspended_at = runtime.now()
    async with runtime.sessions() as s:
        root = await s.get(Post, tree["root"])
        found = await lineage.remixes(s, root, runtime.urls, None)
    assert "great prompt" not in str(found) and "child prompt" not in str(found)


async def test_post_page_draws_the_tree_root_first_with_this_post_highlighted(
    runtime, client, tree
) -> None:
    """The grandchild's page: root, then child, then this post (highlighted), then its remix,
    as nested lists; the child's page lists the remote remix as a link to its server."""
    async with runtime.sessions() as s:
        grandchild = await s.get(Post, tree["grandchild"])
        child = await s.get(Post, tree["child"])
    page = (await client.get(grandchild.url, headers={"Accept": "text/html"})).text
    section = page.split('<section class="lineage">', 1)[1].split("</section>", 1)[0]
    assert (
        section.index("root prompt")
        < section.index("child prompt")
        < section.index('class="current"')
        < section.index("great prompt")
    )
    current = re.search(r'<li class="current"[^>]*>(.*)', section, re.S).group(1)
    assert "grandchild prompt" in current.split("<ul>")[0]
    assert section.count("<ul") >= 4  # root > child > this post > its remix
    child_page = (await client.get(child.url, headers={"Accept": "text/html"})).text
    assert 'href="https://m.example/@mo/r1" class="remote"' in child_page
    assert "private prompt" not in child_page
