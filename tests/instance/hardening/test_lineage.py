"""Review finding 2 (docs/security.md): private remixes do not leak through the lineage.

A followers-only or direct remix (ours or a remote one) answers 404 on its own URL; the
lineage of its parent, as JSON (anonymous) or on the parent's HTML page, must not list it
or its prompt either, unless the viewer may see it. A parent the viewer may not see ends the
chain as a bare URI.
"""

from __future__ import annotations

import pytest

from instance.content.lineage import lineage_of
from instance.content.posting import Draft, publish
from instance.storage.models import Account, Post
from tests.instance.web_helpers import PASSWORD, fast_hasher, logged_in  # noqa: F401


@pytest.fixture
async def family(runtime, new_account):
    """A public parent with a public, a followers-only and a direct remix; a remote private
    remix of it; and a public remix of a private remote post."""
    painter = await new_account("painter", ai=True)
    bob = await new_account("bob", password=PASSWORD)
    async with runtime.session() as s:
        painter, bob = await s.get(Account, painter.id), await s.get(Account, bob.id)
        parent = await publish(s, runtime, painter, Draft(text="a lighthouse"))
        out = {"parent": parent}
        for vis in ("public", "followers", "direct"):
            out[vis] = await publish(
                s, runtime, bob,
                Draft(text=f"{vis} remix", visibility=vis, quote=parent, quote_state="accepted",
                      recipe={"prompt": f"{vis} prompt"}),
            )  # fmt: skip
        mo = Account(username="mo", username_key="mo", domain="m.example", local=False,
                     uri="https://m.example/users/mo")  # fmt: skip
        s.add(mo)
        await s.flush()
        hidden = Post(uri="https://m.example/notes/hidden", account_id=mo.id, local=False,
                      visibility="followers", recipe={"prompt": "mo's hidden prompt"})  # fmt: skip
        s.add(hidden)
        s.add(Post(uri="https://m.example/notes/r1", account_id=mo.id, local=False,
                   visibility="direct", quote_uri=parent.uri, quote_id=parent.id,
                   recipe={"prompt": "mo's direct remix prompt"}))  # fmt: skip
        await s.flush()
        out["of_hidden"] = await publish(
            s, runtime, bob, Draft(text="remix of a hidden post", quote=hidden,
                                   quote_state="link"),
        )  # fmt: skip
    return out


async def test_anonymous_lineage_json_lists_only_public_remixes(client, family) -> None:
    doc = (await client.get(f"{family['parent'].uri}/lineage")).json()
    assert [r["uri"] for r in doc["remixes"]] == [family["public"].uri]
    assert "followers prompt" not in str(doc) and "direct prompt" not in str(doc)
    assert "mo's" not in str(doc)


@pytest.mark.usefixtures("fast_hasher")
async def test_the_parents_page_shows_a_signed_in_author_their_own_private_remixes(
    runtime, client, family
) -> None:
    page = (await client.get(family["parent"].url)).text
    assert "public remix" in page or family["public"].url in page
    assert "followers prompt" not in page and "direct prompt" not in page
    await logged_in(client, "bob")
    page = (await client.get(family["parent"].url)).text
    assert "followers prompt" in page and "direct prompt" in page
    assert "mo's direct remix prompt" not in page


async def test_a_parent_the_viewer_may_not_see_ends_the_chain_as_a_bare_uri(
    runtime, family
) -> None:
    async with runtime.sessions() as s:
        doc = await lineage_of(s, await s.get(Post, family["of_hidden"].id), runtime.urls, None)
    (parent,) = doc["parents"]
    assert parent == {"uri": "https://m.example/notes/hidden", "url": "https://m.example/notes/hidden",
                      "author": None, "prompt": None, "deleted": False,
                      "local": False}  # fmt: skip
