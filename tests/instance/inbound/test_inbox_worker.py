"""The inbox worker end to end: signed POST -> 202 -> one `run_once()` -> storage, outbox.

Every activity goes through the real HTTP inbox first; the worker is advanced step by step.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select

from instance.inbound.worker import InboxWorker
from instance.storage.models import (
    Account,
    Boost,
    Delivery,
    Follow,
    InboxItem,
    Like,
    MediaAttachment,
    Mention,
    Notification,
    OutboundActivity,
    Post,
    PostTag,
    RemoteKey,
)
from tests.instance.fediverse import PUBLIC
from tests.instance.inbox_helpers import count, post


@pytest.fixture
async def bob(new_account):
    return await new_account("bob", ai=True)


@pytest.fixture
def alice(fedi):
    return fedi.actor("alice")


@pytest.fixture
def mallory(fedi):
    return fedi.actor("mallory", key=1)  # same host as alice, another account


@pytest.fixture
def deliver(client, runtime):
    """POST an activity signed by `actor` (202 expected), then run the worker once."""

    async def send(actor, activity, *, path="/inbox", **sign):
        r = await post(client, runtime, actor, activity, path, **sign)
        assert r.status_code == 202, r.text
        await InboxWorker(runtime).run_once()
        return activity

    return send


async def local_post(runtime, account, text="<p>a picture</p>"):
    async with runtime.session() as s:
        p = Post(uri=f"{account.uri}/posts/{text.__hash__() & 0xFFFF}", account_id=account.id,
                 local=True, content=text, visibility="public")  # fmt: skip
        s.add(p)
    return p


async def get(runtime, model, *where):
    async with runtime.sessions() as s:
        return list(await s.scalars(select(model).where(*where)))


async def one(runtime, model, *where):
    [row] = await get(runtime, model, *where)
    return row


async def notifications(runtime, kind=None):
    rows = await get(runtime, Notification)
    return [n.kind for n in rows if kind is None or n.kind == kind]


# -- Follow ------------------------------------------------------------------------------------
async def test_follow_is_accepted_with_an_accept_delivery(runtime, deliver, alice, bob):
    """Accept{object: the Follow embedded} to the follower's inbox, by the followee."""
    follow = await deliver(alice, alice.activity("Follow", bob.uri))
    row = await one(runtime, Follow)
    assert (row.uri, row.accepted) == (follow["id"], True)
    assert await notifications(runtime) == ["follow"]
    activity = await one(runtime, OutboundActivity, OutboundActivity.kind == "Accept")
    accept = json.loads(activity.body)
    assert accept["actor"] == bob.uri
    assert accept["id"].startswith(bob.uri + "/")
    assert accept["object"] == {
        "id": follow["id"], "type": "Follow", "actor": alice.uri, "object": bob.uri,
    }  # fmt: skip
    assert activity.account_id == bob.id  # signed by the followee when delivered
    delivery = await one(runtime, Delivery)
    assert (delivery.inbox_uri, delivery.status) == (alice.inbox, "queued")
    item = await one(runtime, InboxItem)
    assert item.status == "done"


async def test_follow_of_a_locked_account_stays_pending(runtime, deliver, alice, new_account):
    carol = await new_account("carol", manually_approves_followers=True)
    await deliver(alice, alice.activity("Follow", carol.uri))
    assert (await one(runtime, Follow)).accepted is False
    assert await notifications(runtime) == ["follow_request"]
    assert await count(runtime, OutboundActivity) == 0


async def test_repeated_follows_are_idempotent(runtime, deliver, alice, bob):
    """A re-sent Follow (new id) makes no new row or notification, and is
    Accepted again under its new id; the very same Follow twice is one inbox row."""
    first = alice.activity("Follow", bob.uri)
    await deliver(alice, first)
    await deliver(alice, first)
    again = await deliver(alice, alice.activity("Follow", bob.uri))
    row = await one(runtime, Follow)
    assert row.uri == again["id"]
    assert await notifications(runtime) == ["follow"]
    accepts = await get(runtime, OutboundActivity, OutboundActivity.kind == "Accept")
    assert [json.loads(a.body)["object"]["id"] for a in accepts] == [first["id"], again["id"]]


async def test_follow_of_unknown_account_is_ignored(runtime, deliver, alice):
    await deliver(alice, alice.activity("Follow", runtime.urls.actor("nobody")))
    assert await count(runtime, Follow) == 0
    assert (await one(runtime, InboxItem)).status == "done"


@pytest.mark.parametrize("embedded_id", [True, False])
async def test_undo_follow(runtime, deliver, alice, bob, embedded_id):
    """The embedded Follow matched by id, else by actor + object."""
    follow = await deliver(alice, alice.activity("Follow", bob.uri))
    undone = dict(follow) if embedded_id else {**follow, "id": alice.new_id()}
    await deliver(alice, alice.activity("Undo", undone))
    assert await count(runtime, Follow) == 0


async def test_only_the_follower_can_undo_a_follow(runtime, deliver, alice, mallory, bob):
    """Mallory's Undo of Alice's Follow changes nothing (202)."""
    follow = await deliver(alice, alice.activity("Follow", bob.uri))
    await deliver(mallory, mallory.activity("Undo", {**follow}))
    await deliver(mallory, mallory.activity("Undo", follow["id"]))
    assert await count(runtime, Follow) == 1


# -- Accept / Reject of our follows ---------------------------------------------------------
@pytest.fixture
async def our_follow(runtime, alice, bob, deliver, fedi):
    """Bob (local) follows Alice (remote): a pending Follow row with our activity id."""
    from instance.inbound.remote import resolve_actor

    remote = await resolve_actor(runtime, alice.uri)
    async with runtime.session() as s:
        row = Follow(follower_id=bob.id, followee_id=remote.id, uri=f"{bob.uri}/follows/1")
        s.add(row)
    return row


@pytest.mark.parametrize("by_id", [True, False])
async def test_accept_of_our_follow(runtime, deliver, alice, bob, our_follow, by_id):
    follow = {"id": our_follow.uri if by_id else "https://elsewhere/x", "type": "Follow",
              "actor": bob.uri, "object": alice.uri}  # fmt: skip
    await deliver(alice, alice.activity("Accept", follow if not by_id else our_follow.uri))
    assert (await one(runtime, Follow)).accepted is True


async def test_accept_from_a_third_party_is_ignored(runtime, deliver, mallory, our_follow):
    """Only the followee can accept; Mallory's Accept leaves it pending."""
    await deliver(mallory, mallory.activity("Accept", our_follow.uri))
    await deliver(mallory, mallory.activity("Reject", our_follow.uri))
    row = await one(runtime, Follow)
    assert row.accepted is False


async def test_reject_of_our_follow(runtime, deliver, alice, our_follow):
    await deliver(alice, alice.activity("Reject", our_follow.uri))
    assert await count(runtime, Follow) == 0


# -- Like / Announce ---------------------------------------------------------------------------
async def test_likes_count_once_and_undo(runtime, deliver, alice, mallory, bob):
    """Like, a second Like (new id), a Misskey reaction and an EmojiReact by the same actor
    count once; Mallory cannot undo Alice's like; Alice can."""
    p = await local_post(runtime, bob)
    like = await deliver(alice, alice.activity("Like", p.uri))
    await deliver(alice, alice.activity("Like", p.uri, content="👍", _misskey_reaction="👍"))
    await deliver(alice, alice.activity("EmojiReact", p.uri, content="🎨"))
    assert (await one(runtime, Post)).likes_count == 1
    assert await notifications(runtime) == ["like"]
    await deliver(mallory, mallory.activity("Undo", like))
    assert (await one(runtime, Post)).likes_count == 1
    await deliver(alice, alice.activity("Undo", {**like, "id": alice.new_id()}))
    assert (await one(runtime, Post)).likes_count == 0
    assert await count(runtime, Like) == 0
    await deliver(mallory, mallory.activity("Like", p.uri))
    await deliver(mallory, mallory.activity("Undo", like["id"]))  # by reference, not hers
    assert (await one(runtime, Post)).likes_count == 1


async def test_announce_and_undo(runtime, deliver, alice, bob):
    p = await local_post(runtime, bob)
    announce = await deliver(alice, alice.activity("Announce", p.uri, to=[PUBLIC]))
    assert (await one(runtime, Post)).boosts_count == 1
    assert await notifications(runtime) == ["boost"]
    await deliver(alice, alice.activity("Undo", announce["id"]))
    assert (await one(runtime, Post)).boosts_count == 0
    assert await count(runtime, Boost) == 0


async def test_announce_of_a_remote_post_fetches_it_from_origin(runtime, deliver, fedi, alice):
    carol = fedi.actor("carol", "c.example", key=1)
    note = carol.note("<p>from carol</p>")
    fedi.serve(note["id"], note)
    await deliver(alice, alice.activity("Announce", note["id"]))
    stored = await one(runtime, Post)
    assert (stored.uri, stored.content) == (note["id"], "<p>from carol</p>")
    assert (await one(runtime, Account, Account.id == stored.account_id)).uri == carol.uri
    assert stored.boosts_count == 1


async def test_announce_of_a_local_url_fetches_nothing(runtime, deliver, fedi, alice):
    """An Announce of one of our URLs that is not a post: no HTTP, nothing."""
    await deliver(alice, alice.activity("Announce", runtime.urls.media("x.json")))
    assert fedi.gets() == [alice.uri]  # the signer's key, nothing else
    assert await count(runtime, Boost) == 0
    assert (await one(runtime, InboxItem)).last_error.startswith("skipped: Announce of")


# -- Create / Update / Delete of notes ---------------------------------------------------------
async def test_create_note_stored_sanitised_with_media_mentions_and_reply(
    runtime, deliver, alice, bob
):
    parent = await local_post(runtime, bob)
    note = alice.note(
        '<p onclick="x()">hi <a href="javascript:alert(1)">@bob</a><script>x</script></p>',
        inReplyTo=parent.uri, contentMap={"en": "hi"},
        tag=[{"type": "Mention", "href": bob.uri, "name": "@bob"},
             {"type": "Hashtag", "name": "#AIart", "href": "https://remote.example/tags/aiart"}],
        attachment=[{"type": "Image", "mediaType": "image/png", "url": "https://remote.example/m/1.png",
                     "name": "name alt", "summary": "summary alt", "blurhash": "LEHV6nWB2yk8",
                     "focalPoint": [0.5, -0.25], "width": 640, "height": 480},
                    {"type": "Document", "url": "https://remote.example/m/2.jpg",
                     "name": "only name", "mediaType": "image/jpeg"}],
    )  # fmt: skip
    await deliver(alice, alice.create(note))
    stored = await one(runtime, Post, Post.uri == note["id"])
    assert stored.content == "<p>hi <a>@bob</a></p>"
    assert (stored.local, stored.visibility, stored.language) == (False, "public", "en")
    assert stored.in_reply_to_id == parent.id
    assert (await one(runtime, Post, Post.id == parent.id)).replies_count == 1
    media = await get(runtime, MediaAttachment)
    assert [(m.description, m.remote_url, m.width) for m in media] == [
        ("summary alt", "https://remote.example/m/1.png", 640),
        ("only name", "https://remote.example/m/2.jpg", None),
    ]
    assert (media[0].focal_x, media[0].focal_y) == (0.5, -0.25)
    assert [m.account_id for m in await get(runtime, Mention)] == [bob.id]
    assert [t.name for t in await get(runtime, PostTag)] == ["aiart"]
    assert await notifications(runtime) == ["reply"]  # one notification, the specific kind


async def test_reply_arriving_before_its_parent_is_linked_later(runtime, deliver, alice):
    parent = alice.note("<p>parent</p>")
    child = alice.note("<p>child</p>", inReplyTo=parent["id"])
    await deliver(alice, alice.create(child))
    assert (await one(runtime, Post)).in_reply_to_id is None  # parent not fetched
    await deliver(alice, alice.create(parent))
    stored_parent = await one(runtime, Post, Post.uri == parent["id"])
    assert stored_parent.replies_count == 1
    stored_child = await one(runtime, Post, Post.uri == child["id"])
    assert stored_child.in_reply_to_id == stored_parent.id


@pytest.mark.parametrize("copies", [1, 2, 50])
async def test_same_create_many_times_one_post_one_notification(
    client, runtime, alice, bob, copies
):
    """1x, 2x, 50x concurrently -> one inbox row, one post, one notification."""
    activity = alice.create(alice.note(tag=[{"type": "Mention", "href": bob.uri}]))
    answers = await asyncio.gather(
        *(post(client, runtime, alice, activity) for _ in range(copies))
    )
    assert {r.status_code for r in answers} == {202}
    # the same note in another activity (a shared-inbox and a personal copy) adds nothing
    await post(client, runtime, alice, {**activity, "id": alice.new_id()}, "/users/bob/inbox")
    while await InboxWorker(runtime).run_once():
        pass
    assert await count(runtime, InboxItem) == 2
    assert await count(runtime, Post) == 1
    assert await notifications(runtime) == ["mention"]


async def test_forwarded_create_is_refetched_from_origin(runtime, deliver, fedi, alice):
    """Alice forwards a Create claiming to be Carol's; only Carol's own copy
    (fetched from her server) is stored."""
    carol = fedi.actor("carol", "c.example", key=1)
    real = carol.note("<p>what carol wrote</p>")
    fedi.serve(real["id"], real)
    forged = carol.create({**real, "content": "<p>words carol never wrote</p>"})
    await deliver(alice, forged)
    stored = await one(runtime, Post)
    assert stored.content == "<p>what carol wrote</p>"
    assert (await one(runtime, Account, Account.id == stored.account_id)).uri == carol.uri


async def test_update_note_by_author_only(runtime, deliver, alice, mallory):
    """Mallory (same server) cannot edit Alice's post; Alice can (with `updated`)."""
    note = alice.note("<p>v1</p>")
    await deliver(alice, alice.create(note))
    forged = {**note, "content": "<p>forged</p>", "updated": "2026-07-07T11:00:00Z"}
    await deliver(mallory, mallory.activity("Update", forged))
    assert (await one(runtime, Post)).content == "<p>v1</p>"
    edit = {**note, "content": "<p>v2</p>", "updated": "2026-07-07T11:00:00Z"}
    await deliver(alice, alice.activity("Update", edit))
    stored = await one(runtime, Post)
    assert stored.content == "<p>v2</p>"
    assert stored.edited_at == datetime(2026, 7, 7, 11, 0, tzinfo=UTC)


async def test_delete_note_by_owner_only(runtime, deliver, alice, mallory, bob):
    """A Delete by a non-owner is a no-op (202); the owner's makes a tombstone."""
    parent = await local_post(runtime, bob)
    note = alice.note(inReplyTo=parent.uri)
    await deliver(alice, alice.create(note))
    await deliver(mallory, mallory.activity("Delete", note["id"]))
    assert (await one(runtime, Post, Post.uri == note["id"])).deleted_at is None
    await deliver(alice, alice.activity("Delete", {"id": note["id"], "type": "Tombstone"}))
    assert (await one(runtime, Post, Post.uri == note["id"])).deleted_at is not None
    assert (await one(runtime, Post, Post.id == parent.id)).replies_count == 0


# -- actors ----------------------------------------------------------------------------------
async def test_update_person_keeps_the_stored_key(runtime, deliver, fedi, alice):
    """An Update(Person) with a new publicKey changes the profile, not the key."""
    await deliver(alice, alice.create())
    evil = fedi.actor("eve", "e.example", key=2)
    doc = alice.document(name="Alice Renamed")
    doc["publicKey"] = {**doc["publicKey"], "publicKeyPem": evil.public_pem}
    await deliver(alice, alice.activity("Update", doc))
    account = await one(runtime, Account, Account.uri == alice.uri)
    assert account.display_name == "Alice Renamed"
    assert account.public_key_pem == alice.public_pem
    assert (await one(runtime, RemoteKey, RemoteKey.key_id == alice.key_id)).public_key_pem == (
        alice.public_pem
    )


async def test_key_rotation_by_signed_update_confirmed_at_origin(runtime, deliver, fedi, alice):
    """Update{actor} signed with the old key announces a new key; it is taken from
    the actor's origin (re-fetched), and then verifies the actor's requests."""
    from tests.instance.fediverse import keypair

    await deliver(alice, alice.create())
    new_private, new_public = keypair(3)
    rotated = alice.document()
    rotated["publicKey"] = {**rotated["publicKey"], "publicKeyPem": new_public}
    fedi.serve(alice.uri, rotated)  # the origin now publishes the new key
    await deliver(alice, alice.activity("Update", rotated))  # signed with the old key
    account = await one(runtime, Account, Account.uri == alice.uri)
    assert account.public_key_pem.strip() == new_public.strip()
    # the next request, signed with the new key, is accepted
    await deliver(alice, alice.create(), private_pem=new_private)
    assert await count(runtime, Post) == 2


async def test_update_of_another_actor_is_ignored(runtime, deliver, alice, mallory):
    """Mallory cannot rewrite Alice's profile."""
    await deliver(alice, alice.create())
    await deliver(mallory, mallory.activity("Update", alice.document(name="Pwned")))
    assert (await one(runtime, Account, Account.uri == alice.uri)).display_name == "Alice"


async def test_actor_delete(runtime, deliver, alice, bob):
    """Delete{object: actor}: account marked deleted, its follows and posts gone."""
    await deliver(alice, alice.activity("Follow", bob.uri))
    await deliver(alice, alice.create())
    await deliver(alice, alice.activity("Delete", alice.uri))
    assert (await one(runtime, Account, Account.uri == alice.uri)).deleted_at is not None
    assert await count(runtime, Follow) == 0
    assert (await one(runtime, Post)).deleted_at is not None


async def test_block_removes_follows_both_ways(runtime, deliver, alice, bob):
    await deliver(alice, alice.activity("Follow", bob.uri))
    await deliver(alice, alice.activity("Block", bob.uri))
    assert await count(runtime, Follow) == 0


# -- failures ----------------------------------------------------------------------------------
async def test_origin_down_is_retried_then_handled(client, runtime, fedi, alice):
    """A forwarded Create whose origin answers 503 is retried later, not lost."""
    moment = datetime.now(UTC)
    runtime.clock = lambda: moment
    carol = fedi.actor("carol", "c.example", key=1)
    note = carol.note("<p>eventually</p>")
    fedi.serve(note["id"], {"error": "down"}, status=503)
    assert (await post(client, runtime, alice, carol.create(note))).status_code == 202
    assert await InboxWorker(runtime).run_once() == 1
    item = await one(runtime, InboxItem)
    assert (item.status, item.attempts) == ("queued", 1)
    assert "503" in item.last_error
    assert await InboxWorker(runtime).run_once() == 0  # not due yet
    fedi.serve(note["id"], note)
    moment += timedelta(hours=1)
    assert await InboxWorker(runtime).run_once() == 1
    assert (await one(runtime, InboxItem)).status == "done"
    assert (await one(runtime, Post)).content == "<p>eventually</p>"


# -- concurrency: one lane per sending actor ---------------------------------------------------
async def test_a_slow_object_fetch_does_not_hold_up_another_actors_like(
    runtime, client, fedi, alice, bob
):
    """Items are handled one lane per sending actor: while Carol's Announce waits for a remote
    object that is slow to fetch, Alice's Like (sent after it) is counted."""
    carol = fedi.actor("carol", "slow.example", key=1)
    slow_note = carol.note("<p>slow</p>")
    fedi.serve(slow_note["id"], slow_note)
    released = asyncio.Event()

    async def transport(request):
        if str(request.url) == slow_note["id"]:
            await released.wait()
        return fedi(request)

    await runtime.use_http(httpx.AsyncClient(transport=httpx.MockTransport(transport)))
    p = await local_post(runtime, bob)
    for actor, activity in ((carol, carol.activity("Announce", slow_note["id"])),
                            (alice, alice.activity("Like", p.uri))):  # fmt: skip
        assert (await post(client, runtime, actor, activity)).status_code == 202
    step = asyncio.create_task(InboxWorker(runtime).run_once())
    for _ in range(500):
        if (await one(runtime, Post, Post.id == p.id)).likes_count == 1:
            break
        await asyncio.sleep(0.01)
    assert (await one(runtime, Post, Post.id == p.id)).likes_count == 1
    assert not step.done()  # Carol's item still waits for its object
    released.set()
    assert await step == 2
    assert (await one(runtime, Post, Post.uri == slow_note["id"])).boosts_count == 1


async def test_one_actors_activities_are_handled_in_the_order_they_arrived(
    runtime, client, alice
):
    """Within one actor's lane the order holds: a Create, its Update and its Delete, sent
    together and handled in one step, leave the tombstone."""
    note = alice.note("<p>first</p>")
    edited = {**note, "content": "<p>second</p>", "updated": "2026-07-07T11:00:00Z"}
    for activity in (alice.create(note), alice.activity("Update", edited),
                     alice.activity("Delete", note["id"])):  # fmt: skip
        assert (await post(client, runtime, alice, activity)).status_code == 202
    assert await InboxWorker(runtime).run_once() == 3
    stored = await one(runtime, Post, Post.uri == note["id"])
    assert stored.deleted_at is not None and stored.content == ""


async def test_one_slow_server_never_takes_every_slot(runtime, client, fedi, bob) -> None:
    """Review finding 10 (docs/security.md): eight activities whose objects were slow to
    fetch delayed an unrelated Like by 90 s. Eight actors of one slow server get at most
    half the slots; the Like from elsewhere is handled while they wait."""
    slow_actors = [fedi.actor(f"s{n}", "slow.example", key=n % 3) for n in range(8)]
    released = asyncio.Event()

    async def transport(request):
        if request.url.path.startswith("/notes/"):
            await released.wait()
        return fedi(request)

    await runtime.use_http(httpx.AsyncClient(transport=httpx.MockTransport(transport)))
    alice = fedi.actor("alice")
    p = await local_post(runtime, bob)
    for n, actor in enumerate(slow_actors):
        announce = actor.activity("Announce", f"https://slow.example/notes/{n}")
        assert (await post(client, runtime, actor, announce)).status_code == 202
    assert (await post(client, runtime, alice, alice.activity("Like", p.uri))).status_code == 202
    step = asyncio.create_task(InboxWorker(runtime).run_once())
    for _ in range(500):
        if (await one(runtime, Post, Post.id == p.id)).likes_count == 1:
            break
        await asyncio.sleep(0.01)
    assert (await one(runtime, Post, Post.id == p.id)).likes_count == 1
    released.set()
    await step


async def test_move_carries_our_follows_to_the_new_account(runtime, fedi, deliver, alice, bob):
    """Mastodon's Move{actor: old, object: old, target: new} (move_serializer.rb): once the
    new account, as its own server serves it, names the old one in alsoKnownAs, our
    accounts that followed the old one follow the new one (a Follow is sent) and leave the
    old one (an Undo). A target that does not name the old account moves nothing."""
    await deliver(alice, alice.create())  # alice is known
    async with runtime.session() as s:
        old = await s.scalar(select(Account).where(Account.uri == alice.uri))
        s.add(Follow(follower_id=bob.id, followee_id=old.id, uri="urn:f", accepted=True))
    stranger = fedi.actor("alice", "elsewhere.example")  # does not name the old account
    await deliver(alice, alice.activity("Move", alice.uri, target=stranger.uri))
    assert await count(runtime, Follow) == 1

    new = fedi.actor("alice", "new.example", alsoKnownAs=[alice.uri])
    await deliver(alice, alice.activity("Move", alice.uri, target=new.uri))
    async with runtime.sessions() as s:
        follows = list(await s.scalars(select(Follow)))
        followed = {(await s.get(Account, f.followee_id)).uri for f in follows}
        sent = [json.loads(r.body) for r in await s.scalars(select(OutboundActivity))]
    assert followed == {new.uri}
    undone = {a["object"]["object"] for a in sent if a["type"] == "Undo"}
    assert [a["object"] for a in sent if a["type"] == "Follow"] == [new.uri]
    assert undone == {alice.uri}
