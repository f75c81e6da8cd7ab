"""Views over received dicts and builders for what we send, in the shapes Mastodon expects."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from activitypub import addressing
from activitypub.keys import KeyPair
from activitypub.objects import (
    AS_PUBLIC,
    Activity,
    Actor,
    APObject,
    Collection,
    build_accept,
    build_actor,
    build_announce,
    build_create,
    build_delete,
    build_follow,
    build_like,
    build_undo,
    build_update,
    id_of,
    ids_of,
    media_object,
    property_value,
)

BOT = "https://ai.example/users/bot"
FOLLOW = {
    "@context": "https://www.w3.org/ns/activitystreams",
    "id": "https://m.example/0b1d",
    "type": "Follow",
    "actor": "https://m.example/users/alice",
    "object": BOT,
}


def test_id_of_tolerates_every_form() -> None:
    assert id_of("https://x/1") == "https://x/1"
    assert id_of({"id": "https://x/2", "type": "Person"}) == "https://x/2"
    assert id_of([{"type": "Link"}, "https://x/3"]) == "https://x/3"
    assert id_of({"id": 5}) is None and id_of(None) is None and id_of("") is None
    assert ids_of(["https://a", {"id": "https://b"}, {"x": 1}, None]) == ["https://a", "https://b"]


def test_note_view() -> None:
    note = APObject(
        {
            "id": "https://m.example/n/1",
            "type": ["Note", "Extra"],
            "attributedTo": [{"id": BOT}],
            "to": AS_PUBLIC,
            "cc": ["https://m.example/f", {"id": "https://m.example/x"}],
            "inReplyTo": {"id": "https://ai.example/p/1"},
            "url": {"type": "Link", "href": "https://m/@a/1"},
            "attachment": {
                "type": "Image",
                "mediaType": "image/png",
                "url": [{"href": "https://m/a.png"}],
                "name": "alt",
                "width": 512,
                "height": True,
            },
            "tag": [{"type": "Hashtag", "name": "#aiart", "href": "https://m/tags/aiart"}, "junk"],
            "sensitive": True,
        }
    )
    assert (note.type, note.is_type("Extra"), note.attributed_to) == ("Note", True, BOT)
    assert note.to == [AS_PUBLIC] and note.cc == ["https://m.example/f", "https://m.example/x"]
    assert note.in_reply_to == "https://ai.example/p/1" and note.url == "https://m/@a/1"
    (image,) = note.attachments
    assert (image.url, image.alt_text, image.width, image.height) == (
        "https://m/a.png",
        "alt",
        512,
        None,
    )
    assert note.tags[0].name == "#aiart" and len(note.tags) == 1 and note.sensitive


def test_activity_and_actor_views(alice_key: KeyPair) -> None:
    undo = Activity(
        {"type": "Undo", "actor": {"id": "https://m.example/users/alice"}, "object": FOLLOW}
    )
    assert undo.actor == "https://m.example/users/alice"
    assert undo.object_id == FOLLOW["id"] and undo.object_activity.object_id == BOT
    assert Activity({"object": "https://x/1"}).object is None
    doc = build_actor(
        actor_id=BOT,
        username="bot",
        inbox=BOT + "/inbox",
        outbox=BOT + "/outbox",
        followers=BOT + "/followers",
        following=BOT + "/following",
        shared_inbox="https://ai.example/inbox",
        public_key_pem=alice_key.public_pem,
    )
    actor = Actor(doc)
    assert actor.is_actor and actor.shared_inbox == "https://ai.example/inbox"
    assert actor.public_key(BOT + "#main-key").public_pem == alice_key.public_pem
    assert actor.public_key("https://evil.example/k") is None
    foreign = dict(
        doc, publicKey={"id": BOT + "#main-key", "owner": "https://evil/x", "publicKeyPem": "P"}
    )
    assert Actor(foreign).public_key(BOT + "#main-key") is None  # owned by someone else


def test_collection_view() -> None:
    page = Collection(
        {
            "type": "OrderedCollectionPage",
            "orderedItems": ["a", "b"],
            "next": {"id": "https://x/p2"},
            "totalItems": 7,
        }
    )
    assert page.items == ["a", "b"] and page.next == "https://x/p2" and page.total_items == 7


def test_build_actor_matches_mastodon_expectations(alice_key: KeyPair) -> None:
    """Contexts, Service type, endpoints, publicKey with real newlines."""
    doc = build_actor(
        actor_id=BOT,
        username="bot",
        inbox=BOT + "/inbox",
        outbox=BOT + "/outbox",
        followers=BOT + "/followers",
        following=BOT + "/following",
        shared_inbox="https://ai.example/inbox",
        public_key_pem=alice_key.public_pem,
        name="Bot",
        summary="<p>I paint</p>",
        url="https://ai.example/@bot",
        icon=media_object("https://ai.example/a.png", "image/png"),
        featured=BOT + "/featured",
        webfinger="bot@ai.example",
        published=datetime(2026, 7, 7, tzinfo=UTC),
        attachment=[property_value("Model", "SDXL")],
    )
    context = doc["@context"]
    assert context[0] == "https://www.w3.org/ns/activitystreams"
    assert context[1] == "https://w3id.org/security/v1"
    assert context[2]["schema"] == "http://schema.org#"
    assert {
        "toot",
        "PropertyValue",
        "value",
        "discoverable",
        "indexable",
        "featured",
        "manuallyApprovesFollowers",
    } <= set(context[2])
    assert doc["type"] == "Service" and doc["endpoints"] == {
        "sharedInbox": "https://ai.example/inbox"
    }
    key = doc["publicKey"]
    assert key["id"] == BOT + "#main-key" and key["owner"] == BOT
    assert key["publicKeyPem"].startswith("-----BEGIN PUBLIC KEY-----\n")
    assert "\\n" not in json.loads(json.dumps(doc))["publicKey"]["publicKeyPem"]
    assert doc["webfinger"] == "bot@ai.example" and doc["published"] == "2026-07-07T00:00:00Z"
    assert doc["attachment"] == [{"type": "PropertyValue", "name": "Model", "value": "SDXL"}]
    assert "image" not in doc and doc["manuallyApprovesFollowers"] is False
    app = build_actor(
        actor_id="https://ai.example/actor",
        username="ai.example",
        inbox="https://ai.example/actor/inbox",
        outbox="o",
        followers="f",
        following="g",
        shared_inbox="https://ai.example/inbox",
        public_key_pem=alice_key.public_pem,
        actor_type="Application",
    )
    assert app["type"] == "Application"
    with pytest.raises(ValueError):
        build_actor(
            actor_id=BOT,
            username="b",
            inbox="i",
            outbox="o",
            followers="f",
            following="g",
            shared_inbox="s",
            public_key_pem="p",
            actor_type="Note",
        )


def test_accept_embeds_the_follow() -> None:
    """Accept{object: {id, type: Follow, actor, object}} from the followee."""
    accept = build_accept(activity_id=BOT + "#accepts/1", actor=BOT, follow=FOLLOW)
    assert accept["type"] == "Accept" and accept["actor"] == BOT
    assert accept["object"] == {
        "id": FOLLOW["id"],
        "type": "Follow",
        "actor": FOLLOW["actor"],
        "object": BOT,
    }
    assert accept["to"] == [FOLLOW["actor"]]
    with pytest.raises(ValueError):
        build_accept(activity_id="x", actor=BOT, follow={"type": "Follow"})


def test_follow_like_undo() -> None:
    """Like to the author; Undo embeds the original (without its @context)."""
    follow = build_follow(activity_id=BOT + "#follows/1", actor=BOT, object_id=FOLLOW["actor"])
    assert follow["object"] == FOLLOW["actor"] and follow["to"] == [FOLLOW["actor"]]
    like = build_like(
        activity_id=BOT + "#likes/1",
        actor=BOT,
        object_id="https://m.example/n/1",
        object_author="https://m.example/users/alice",
    )
    undo = build_undo(activity_id=BOT + "#likes/1/undo", actor=BOT, activity=like)
    assert undo["object"] == {k: v for k, v in like.items() if k != "@context"}
    assert undo["to"] == ["https://m.example/users/alice"]
    with pytest.raises(ValueError):
        build_undo(activity_id="x", actor="https://other/u", activity=like)


def test_create_mirrors_audience_and_delete_uses_tombstone() -> None:
    """to/cc mirrored on the Create; Delete carries a Tombstone."""
    audience = addressing.public(BOT + "/followers")
    note = {
        "@context": ["https://www.w3.org/ns/activitystreams", {"sensitive": "as:sensitive"}],
        "id": BOT + "/posts/1",
        "type": "Note",
        "attributedTo": BOT,
        "published": "2026-07-07T10:00:00Z",
        **audience.as_dict(),
    }
    create = build_create(activity_id=BOT + "/posts/1/activity", actor=BOT, obj=note)
    assert create["to"] == note["to"] == [AS_PUBLIC] and create["cc"] == [BOT + "/followers"]
    assert create["@context"] == note["@context"] and "@context" not in create["object"]
    assert create["published"] == note["published"]
    with pytest.raises(ValueError):
        build_create(activity_id="x", actor="https://other/u", obj=note)
    delete = build_delete(
        activity_id=BOT + "/posts/1#delete",
        actor=BOT,
        object_id=note["id"],
        to=[AS_PUBLIC],
        cc=[BOT + "/followers"],
    )
    assert delete["object"] == {"id": note["id"], "type": "Tombstone"}


def test_update_requires_updated_for_notes() -> None:
    """An Update{Note} without `updated` is refused (Mastodon would drop the edit)."""
    note = {"id": BOT + "/posts/1", "type": "Note", "attributedTo": BOT, "to": [AS_PUBLIC]}
    with pytest.raises(ValueError):
        build_update(activity_id="x", actor=BOT, obj=note)
    update = build_update(
        activity_id=BOT + "/posts/1#updates/1",
        actor=BOT,
        obj=dict(note, updated="2026-07-07T11:00:00Z"),
    )
    assert update["to"] == [AS_PUBLIC] and update["object"]["updated"]
    assert build_update(activity_id="y", actor=BOT, obj={"id": BOT, "type": "Service"})["object"]


def test_announce() -> None:
    announce = build_announce(
        activity_id=BOT + "/boosts/1",
        actor=BOT,
        object_id="https://m.example/n/1",
        to=[AS_PUBLIC],
        cc=[BOT + "/followers"],
        published=datetime(2026, 7, 7, tzinfo=UTC),
    )
    assert announce["published"] == "2026-07-07T00:00:00Z" and announce["object"].startswith(
        "https"
    )
