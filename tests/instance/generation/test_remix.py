"""Remixes on one instance: the three kinds, the local quote stamp, lineage, the Note shape
(what each reader of quotes needs), and remixes of remote posts waiting for approval."""

from __future__ import annotations

import json

import httpx
import pytest
from sqlalchemy import Select, select

from instance.content import quotes
from instance.content.lineage import lineage_of
from instance.errors import RemixError
from instance.generation.remix import remix
from instance.generation.requests import enqueue
from instance.outbound.delivery import DeliveryWorker
from instance.storage.models import Account, Delivery, GenerationJob, OutboundActivity, Post
from tests.instance.generation_fixtures import gen_settings, run_generation, tiny_cache  # noqa: F401
from tests.instance_fixtures import AP_ACCEPT

AS_PUBLIC = "https://www.w3.org/ns/activitystreams#Public"


@pytest.fixture
def settings(gen_settings):  # noqa: F811
    return gen_settings()


# A Mastodon 4.5 Note says who may quote it (app/serializers/activitypub/note_serializer.rb,
# interaction_policy); a GoToSocial 0.20 Note has an interactionPolicy without canQuote, and
# its server answers a QuoteRequest with 500.
MASTODON_POLICY = {"canQuote": {"automaticApproval": [AS_PUBLIC], "manualApproval": []}}
GOTOSOCIAL_POLICY = {
    name: {"always": [AS_PUBLIC], "approvalRequired": []}
    for name in ("canLike", "canReply", "canAnnounce")
}


def remote_post(remote: Account, uri: str, policy: dict, content: str = "<p>owl</p>") -> Post:
    raw = {"id": uri, "type": "Note", "attributedTo": remote.uri, "content": content,
           "to": [AS_PUBLIC], "interactionPolicy": policy}  # fmt: skip
    return Post(uri=uri, url=uri, account_id=remote.id, content=content, visibility="public",
                to=[AS_PUBLIC], raw=raw)  # fmt: skip


def created(post: Post) -> Select:
    """The Create we sent of `post`."""
    ours = (OutboundActivity.kind == "Create", OutboundActivity.object_uri == post.uri)
    return select(OutboundActivity).where(*ours)


async def remote_parent(
    runtime, uri: str, policy: dict, content: str = "<p>owl</p>"
) -> tuple[Account, Post]:
    """mo's post on m.example (its Note's interactionPolicy as given), stored as received."""
    async with runtime.session() as s:
        remote = remote_account()
        s.add(remote)
        await s.flush()
        rpost = remote_post(remote, uri, policy, content)
        s.add(rpost)
    return remote, rpost


def remote_account() -> Account:
    return Account(
        username="mo", username_key="mo", domain="m.example", local=False,
        uri="https://m.example/users/mo", inbox_uri="https://m.example/users/mo/inbox",
    )  # fmt: skip


@pytest.fixture
async def parent(runtime, new_account):
    painter = await new_account("painter", ai=True)
    async with runtime.session() as s:
        painter = await s.get(Account, painter.id)
        job = await enqueue(s, runtime, painter, "a lighthouse", seed=11, size=(32, 32),
                            then={"post": {}})  # fmt: skip
    await run_generation(runtime)
    async with runtime.sessions() as s:
        job = await s.get(GenerationJob, job.id)
        assert job.status == "done", job.last_error
        return await s.get(Post, job.post_id)


async def do_remix(runtime, who, parent, **kw) -> Post:
    async with runtime.session() as s:
        me = await s.get(Account, who.id)
        job = await remix(s, runtime, me, await s.get(Post, parent.id), **kw)
    await run_generation(runtime)
    async with runtime.sessions() as s:
        job = await s.get(GenerationJob, job.id)
        assert job.status == "done", job.last_error
        return await s.get(Post, job.post_id)


async def test_three_kinds_of_remix(runtime, new_account, parent) -> None:
    bob = await new_account("bob")
    same = await do_remix(runtime, bob, parent, seed=99)
    assert same.recipe["prompt"] == parent.recipe["prompt"]
    assert same.recipe["seed"] == 99 and parent.recipe["seed"] == 11
    edited = await do_remix(runtime, bob, parent, prompt="a lighthouse in snow")
    assert edited.recipe["prompt"] == "a lighthouse in snow"
    img = await do_remix(runtime, bob, parent, from_image=True)
    assert img.recipe["parent"].endswith(".png") and img.recipe["strength"] == 0.6
    for p in (same, edited, img):
        assert p.quote_id == parent.id and p.quote_state == "accepted"


async def test_remix_note_carries_every_quote_field_readers_use(
    runtime, client, new_account, parent
) -> None:
    bob = await new_account("bob")
    child = await do_remix(runtime, bob, parent)
    note = (await client.get(child.uri, headers=AP_ACCEPT)).json()
    # every field a reader looks for the quoted post in, all = the parent's id
    for field in ("quote", "_misskey_quote", "quoteUrl", "quoteUri"):
        assert note[field] == parent.uri
    # a stamp on the parent author's (our) host, served
    stamp = note["quoteAuthorization"]
    assert stamp.startswith(f"{runtime.urls.base}/users/painter/quote_authorizations/")
    doc = (await client.get(stamp, headers=AP_ACCEPT)).json()
    assert doc["interactingObject"] == child.uri and doc["interactionTarget"] == parent.uri
    # the FEP-e232 Link tag (Misskey's quote marker)
    assert {
        "type": "Link",
        "mediaType": 'application/ld+json; profile="https://www.w3.org/ns/activitystreams"',
        "rel": "https://misskey-hub.net/ns#_misskey_quote",
        "href": parent.uri,
    } in note["tag"]
    # a Mention of the parent's author, in cc (how the author is notified)
    painter_uri = runtime.urls.actor("painter")
    assert any(t["type"] == "Mention" and t["href"] == painter_uri for t in note["tag"])
    assert painter_uri in note["cc"]
    # the visible fallback, for readers that show no quotes
    assert "🎨 Remix of" in note["content"] and 'class="quote-inline"' in note["content"]
    # our namespace: the parent and the recipe, for other Dreamlooms
    assert note["remixOf"] == parent.uri and note["recipe"]["prompt"]
    ctx = note["@context"][1]
    assert ctx["quote"] == {"@id": "https://w3id.org/fep/044f#quote", "@type": "@id"}
    assert ctx["_misskey_quote"] == "https://misskey-hub.net/ns#_misskey_quote"
    assert ctx["quoteUri"] == "http://fedibird.com/ns#quoteUri"
    assert ctx["quoteUrl"] == "as:quoteUrl"


async def test_lineage_both_ways(runtime, client, new_account, parent) -> None:
    bob = await new_account("bob")
    child = await do_remix(runtime, bob, parent)
    grandchild = await do_remix(runtime, bob, child, prompt="again")
    async with runtime.sessions() as s:
        up = await lineage_of(s, await s.get(Post, grandchild.id), runtime.urls, None)
        down = await lineage_of(s, await s.get(Post, parent.id), runtime.urls, None)
    assert [p["uri"] for p in up["parents"]] == [child.uri, parent.uri]
    assert [r["uri"] for r in down["remixes"]] == [child.uri]
    page = await client.get(grandchild.url, headers={"Accept": "text/html"})
    assert "Remixed from" in page.text and parent.url in page.text
    api = (await client.get(f"{parent.uri}/lineage")).json()  # the same, as JSON
    assert [r["uri"] for r in api["remixes"]] == [child.uri] and api["parents"] == []


def mastodon_would_accept(request: dict, quoted_uri: str) -> bool:
    """Mastodon's QuoteRequest handler (app/lib/activitypub/activity/quote_request.rb) imports
    the inlined `instrument` as a status, on the requester's host, and accepts only when that
    status quotes the requested post (`status.quote.quoted_status`) and is the requester's.
    Its status parser takes the quoted post from the first of `quote`, `_misskey_quote`,
    `quoteUrl`, `quoteUri` that is set; without any, `status.quote` is nil and it never
    answers."""
    instrument = request["instrument"]
    if not isinstance(instrument, dict):
        return False
    actor_host = request["actor"].split("/")[2]
    if instrument["id"].split("/")[2] != actor_host:
        return False
    quoted = next((instrument[k] for k in ("quote", "_misskey_quote", "quoteUrl", "quoteUri")
                   if instrument.get(k)), None)  # fmt: skip
    return quoted == quoted_uri and instrument["attributedTo"] == request["actor"]


async def test_remix_of_remote_post_waits_for_approval(runtime, new_account) -> None:
    """Remixing a Mastodon post asks its author with a QuoteRequest that Mastodon can answer:
    the inlined remix already names the post it quotes."""
    bob = await new_account("bob")
    remote, rpost = await remote_parent(
        runtime, "https://m.example/notes/1", MASTODON_POLICY, "<p>fox</p>"
    )
    child = await do_remix(runtime, bob, rpost, prompt="a red fox, linocut")
    assert child.quote_state == "pending"
    async with runtime.sessions() as s:
        kinds = [r.kind for r in await s.scalars(select(OutboundActivity))]
        (request,) = [json.loads(r.body) for r in await s.scalars(
            select(OutboundActivity).where(OutboundActivity.kind == "QuoteRequest"))]  # fmt: skip
    assert "Create" not in kinds  # no Create before the answer: no "pending" placeholder
    assert request["object"] == rpost.uri and request["instrument"]["id"] == child.uri
    assert mastodon_would_accept(request, rpost.uri)
    assert "quoteAuthorization" not in request["instrument"]  # not approved yet
    accept = {"type": "Accept", "actor": remote.uri, "object": request["id"],
              "result": "https://m.example/users/mo/stamps/1"}  # fmt: skip
    async with runtime.session() as s:
        assert await quotes.on_accept(s, runtime, accept, await s.get(Account, remote.id))
    async with runtime.sessions() as s:
        create = await s.scalar(select(OutboundActivity).where(OutboundActivity.kind == "Create",
                                OutboundActivity.object_uri == child.uri))  # fmt: skip
    note = json.loads(create.body)["object"]
    assert note["quote"] == rpost.uri
    assert note["quoteAuthorization"] == "https://m.example/users/mo/stamps/1"


async def test_stamp_from_another_host_is_refused(runtime, new_account) -> None:
    """A stamp must be on the same host as the actor of the Accept: a stamp elsewhere proves
    nothing about the approver."""
    bob = await new_account("bob")
    remote, rpost = await remote_parent(runtime, "https://m.example/notes/2", MASTODON_POLICY)
    child = await do_remix(runtime, bob, rpost, prompt="an owl")
    accept = {"type": "Accept", "actor": remote.uri, "object": f"{child.uri}/quote_request",
              "result": "https://evil.example/stamps/1"}  # fmt: skip
    async with runtime.session() as s:
        assert not await quotes.on_accept(s, runtime, accept, await s.get(Account, remote.id))


async def test_a_remix_of_a_post_whose_server_cannot_approve_is_published_at_once(
    runtime, new_account
) -> None:
    """GoToSocial 0.20 cannot answer a QuoteRequest (its Notes say nothing of canQuote): the
    remix goes out at once, quoting by quoteUrl and the FEP-e232 Link, without FEP-044f's
    `quote` (which would ask Mastodon readers to wait for an approval that never comes)."""
    bob = await new_account("bob")
    _, rpost = await remote_parent(runtime, "https://m.example/notes/3", GOTOSOCIAL_POLICY)
    child = await do_remix(runtime, bob, rpost, prompt="an owl")
    assert child.quote_state == "unapproved"
    async with runtime.sessions() as s:
        kinds = [r.kind for r in await s.scalars(select(OutboundActivity))]
        create = await s.scalar(created(child))
    assert "QuoteRequest" not in kinds
    note = json.loads(create.body)["object"]
    assert note["quoteUrl"] == rpost.uri and note["remixOf"] == rpost.uri
    assert "quote" not in note and "quoteAuthorization" not in note
    assert any(t["type"] == "Link" and t["href"] == rpost.uri for t in note["tag"])


async def test_a_quote_request_answered_with_an_error_is_not_retried(
    runtime, new_account
) -> None:
    """A server that answers our QuoteRequest with 500 will not understand it later either:
    the delivery fails at once, and the remix is published (as an unapproved quote) by the
    next sweep instead of waiting ten minutes and retrying for days."""
    bob = await new_account("bob")
    _, rpost = await remote_parent(runtime, "https://m.example/notes/4", MASTODON_POLICY)
    child = await do_remix(runtime, bob, rpost, prompt="an owl")
    assert child.quote_state == "pending"
    await runtime.use_http(httpx.AsyncClient(transport=httpx.MockTransport(
        lambda request: httpx.Response(500))))  # fmt: skip
    await DeliveryWorker(runtime).run_once()
    async with runtime.sessions() as s:
        (row,) = list(await s.scalars(select(Delivery)))
    assert (row.status, row.attempts, row.last_status) == ("failed", 1, 500)
    async with runtime.session() as s:
        assert await quotes.expire_pending(s, runtime) == 1
    async with runtime.sessions() as s:
        assert (await s.get(Post, child.id)).quote_state == "unapproved"
        assert await s.scalar(created(child))


async def test_remix_needs_a_starting_point(runtime, new_account) -> None:
    bob = await new_account("bob")
    async with runtime.session() as s:
        me = await s.get(Account, bob.id)
        empty = Post(uri="urn:x", account_id=me.id, content="", visibility="public")
        s.add(empty)
        await s.flush()
        with pytest.raises(RemixError, match="give a prompt"):
            await remix(s, runtime, me, empty)
        empty.visibility = "followers"
        with pytest.raises(RemixError, match="only public"):
            await remix(s, runtime, me, empty, prompt="x")
