"""Federation flows between a Fedify peer and Dreamloom's AI account, both directions.

Fedify (npm `@fedify/fedify`, run by Node 22 from npm; tests/interop/fedify_peer/) is the
framework behind Hollo, Ghost's ActivityPub service and many smaller servers. Its peer has one
Person, `fedi`, whose deliveries go through Fedify's own queue, signed its way: RFC 9421 HTTP
Message Signatures on the first knock, draft-cavage when refused. It accepts every Follow and
records every activity it verified, and every request that reached its inbox with the headers.

The tests of this module run in order and share state (a follow made by one is what the next
one relies on); each says what it needs, so a failure names the missing step. The Fedify side
is driven over the peer's `/_control/` API; the Dreamloom side through its CLI and what it
serves over HTTP (Note JSON counters, collections). Facts with no HTTP surface (an accepted
follow, the signature scheme remembered per server) are read from the database, read-only.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from activitypub.urls import authority_of
from tests.interop.conftest import AI_ACCOUNT
from tests.interop.flows import (
    FLOW_TIMEOUT_S,
    POST_TIMEOUT_S,
    Steps,
    as_list,
    collection_total,
    dreamloom_cli,
    ident,
)
from tests.interop.peers import (
    Dreamloom,
    Fedify,
    PeerError,
    ensure_fedify,
    eventually,
    free_port,
)

pytestmark = pytest.mark.interop

FEDIFY = "Fedify"
ASK = "a red fox in the snow"

state = Steps()
need = state.need


@pytest.fixture(scope="module")
def fedify(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fedify]:
    """The Fedify peer, its node_modules installed once under .interop-cache/."""
    try:
        node_modules = ensure_fedify()
    except PeerError as exc:
        pytest.fail(f"could not install the Fedify peer:\n{exc}", pytrace=False)
    peer = Fedify(node_modules, tmp_path_factory.mktemp("fedify"), free_port())
    peer.start()
    try:
        yield peer
    finally:
        peer.stop()


def explain(dreamloom: Dreamloom, fedify: Fedify) -> Any:
    return lambda: f"{dreamloom.work_summary()}\n{fedify.summary()}"


def received_from(fedify: Fedify, actor: str, kind: str) -> list[dict[str, Any]]:
    """Activities of `kind` by `actor` that Fedify verified, as JSON, oldest first."""
    return [r["json"] for r in fedify.received() if r["type"] == kind and r["actor"] == actor]


def created_notes(fedify: Fedify, actor: str) -> list[dict[str, Any]]:
    """The Notes embedded in the Creates by `actor` that Fedify verified, oldest first."""
    notes = []
    for create in received_from(fedify, actor, "Create"):
        note = create.get("object")
        if isinstance(note, dict) and note.get("type") == "Note":
            notes.append({**note, "_create": create.get("id")})
    return notes


def check_images(note: dict[str, Any]) -> list[dict[str, Any]]:
    """The Note's attachments: each an Image (or Document) with alt text, served as an image."""
    attachments = as_list(note.get("attachment"))
    assert attachments, f"no attachment on the delivered Note: {note}"
    for media in attachments:
        assert media.get("type") in ("Image", "Document"), media
        assert media.get("mediaType") in ("image/png", "image/jpeg"), media
        assert media.get("name") or media.get("summary"), f"attachment without alt text: {media}"
        url = ident(media.get("url"))
        if isinstance(url, list):
            url = ident(url[0])
        r = httpx.get(str(ident(url)), timeout=10)
        assert r.status_code == 200 and r.headers["content-type"].startswith("image/"), url
    return attachments


# -- Fedify actor -> Dreamloom AI account -------------------------------------------------------
@pytest.mark.capability(FEDIFY, "follows a Dreamloom AI account and gets the Accept")
def test_follow_ai_account_accepted(fedify: Fedify, dreamloom: Dreamloom) -> None:
    """A Fedify actor that follows the AI account (by its handle, WebFinger over http) gets an
    Accept of that very Follow, which Fedify verifies; Dreamloom lists it as a follower."""
    painter = dreamloom.actor(AI_ACCOUNT)
    sent = fedify.control("follow", handle=dreamloom.handle(AI_ACCOUNT))
    assert sent["actor"] == painter, sent

    def accepted() -> dict[str, Any] | None:
        for accept in received_from(fedify, painter, "Accept"):
            if ident(accept.get("object")) == sent["id"]:
                return accept
        return None

    accept = eventually(
        accepted,
        timeout=FLOW_TIMEOUT_S,
        what="an Accept of Fedify's Follow from the AI account",
        explain=explain(dreamloom, fedify),
    )
    follow = accept["object"]
    if isinstance(follow, dict):
        assert follow.get("type") == "Follow", accept
        assert ident(follow.get("object")) == painter, accept
        assert ident(follow.get("actor")) == fedify.actor_id, accept

    def dreamloom_knows() -> bool:
        rows = dreamloom.query(
            "SELECT f.accepted FROM follows f JOIN accounts a ON a.id = f.follower_id "
            "JOIN accounts b ON b.id = f.followee_id WHERE a.uri = :them AND b.uri = :me",
            them=fedify.actor_id,
            me=painter,
        )
        return bool(rows and rows[0]["accepted"])

    eventually(
        dreamloom_knows,
        timeout=FLOW_TIMEOUT_S,
        what="Dreamloom to record the Fedify actor as an accepted follower",
        explain=explain(dreamloom, fedify),
    )
    assert collection_total(dreamloom, f"{painter}/followers") >= 1
    state["following"] = True


@pytest.mark.capability(FEDIFY, "receives an AI image post with attachment and alt text")
def test_receives_image_post(fedify: Fedify, dreamloom: Dreamloom) -> None:
    """An image the AI account posts reaches its Fedify follower as a Create whose Note has an
    Image attachment with alt text, and the image URL serves an image."""
    need("following", "the Fedify actor following the AI account")
    painter = dreamloom.actor(AI_ACCOUNT)
    before = len(created_notes(fedify, painter))
    dreamloom_cli(dreamloom, "post", AI_ACCOUNT, "a paper boat on a quiet canal")

    notes = eventually(
        lambda: created_notes(fedify, painter)[before:],
        timeout=POST_TIMEOUT_S,
        what="the AI post to reach Fedify",
        explain=explain(dreamloom, fedify),
    )
    note = notes[0]
    assert ident(note.get("attributedTo")) == painter, note
    check_images(note)
    state["note_id"] = note["id"]


@pytest.mark.capability(FEDIFY, "likes a Dreamloom post (likes.totalItems counts it)")
def test_like_counted(fedify: Fedify, dreamloom: Dreamloom) -> None:
    """A Like Fedify sends (signed its way, to the author found from the Note) is counted in the
    Note's `likes.totalItems`."""
    note_id = need("note_id", "an AI post delivered to Fedify")
    fedify.control("like", object=note_id)
    eventually(
        lambda: dreamloom.get_json(note_id)["likes"]["totalItems"] >= 1,
        timeout=FLOW_TIMEOUT_S,
        what="likes.totalItems to count Fedify's Like",
        explain=explain(dreamloom, fedify),
    )


@pytest.mark.capability(FEDIFY, "boosts a Dreamloom post (shares.totalItems counts it)")
def test_boost_counted(fedify: Fedify, dreamloom: Dreamloom) -> None:
    """An Announce Fedify sends is counted in the Note's `shares.totalItems`."""
    note_id = need("note_id", "an AI post delivered to Fedify")
    fedify.control("announce", object=note_id)
    eventually(
        lambda: dreamloom.get_json(note_id)["shares"]["totalItems"] >= 1,
        timeout=FLOW_TIMEOUT_S,
        what="shares.totalItems to count Fedify's Announce",
        explain=explain(dreamloom, fedify),
    )


@pytest.mark.capability(FEDIFY, "asks the AI account by mention (h-card) and gets the picture")
def test_ask_by_mention(fedify: Fedify, dreamloom: Dreamloom) -> None:
    """A Note that mentions the AI account the way Mastodon and Fedify write it (an h-card link
    to the profile, a Mention tag with the actor URI) asks for a picture: Dreamloom answers with
    a Note in reply to it, whose image's alt text has the description and not the mention."""
    painter = dreamloom.actor(AI_ACCOUNT)
    profile = ident(dreamloom.get_json(painter).get("url")) or painter
    html = (
        f'<p><span class="h-card"><a class="u-url mention" href="{profile}">@<span>'
        f"{AI_ACCOUNT}</span></a></span> {ASK}</p>"
    )
    sent = fedify.control("note", to=[painter], html=html, mentions=[painter])

    def answered() -> list[dict[str, Any]]:
        return [n for n in created_notes(fedify, painter) if n.get("inReplyTo") == sent["object"]]

    reply = eventually(
        answered,
        timeout=POST_TIMEOUT_S,
        what="Dreamloom's answer to the ask to reach Fedify",
        explain=explain(dreamloom, fedify),
    )[0]
    for media in check_images(reply):
        alt = str(media.get("name") or media.get("summary"))
        assert ASK in alt, f"the alt text does not describe the ask: {alt!r}"
        assert "@" not in alt, f"the mention leaked into the prompt: {alt!r}"
    tags = as_list(reply.get("tag"))
    mentioned = [ident(t.get("href")) for t in tags if t.get("type") == "Mention"]
    assert fedify.actor_id in mentioned, f"the answer does not mention the asker: {reply}"
    state["answer_create"] = reply["_create"]


@pytest.mark.capability(FEDIFY, "HTTP Message Signatures (RFC 9421) both ways")
def test_rfc9421_both_ways(fedify: Fedify, dreamloom: Dreamloom) -> None:
    """Fedify signs RFC 9421 on the first knock and Dreamloom takes it: Dreamloom remembers the
    server as taking RFC 9421 (domain_health, keyed by the actor URI's host and non-default
    port, so bovine-herd on another port of 127.0.0.1 is not taken for it), and so signs
    its later deliveries to Fedify that way too (a Signature-Input header), which Fedify
    verifies and accepts."""
    need("following", "Fedify's Follow (its first signed request to Dreamloom)")
    host = authority_of(fedify.actor_id)
    rows = dreamloom.query(
        "SELECT host, signature_scheme FROM domain_health WHERE host = :host", host=host
    )
    assert rows and rows[0]["signature_scheme"] == "rfc9421", (
        f"Dreamloom did not record {host!r} as signing RFC 9421: {rows}\n{dreamloom.work_summary()}"
    )
    create_id = need("answer_create", "Dreamloom's answer to the ask delivered to Fedify")
    tried = [
        r
        for r in fedify.requests()
        if isinstance(r["body"], dict) and r["body"].get("id") == create_id
    ]
    assert tried, f"no inbox request carried {create_id}\n{fedify.summary()}"
    taken = [r for r in tried if r["status"] in (200, 202)]
    assert taken, f"Fedify took none of the deliveries of {create_id}: {tried}"
    assert "signature-input" in taken[0]["headers"], (
        f"Dreamloom's delivery to Fedify was not signed RFC 9421: {taken[0]['headers']}"
    )
    assert all("signature-input" in r["headers"] for r in tried), (
        f"Dreamloom knocked with draft-cavage first: {[r['headers'] for r in tried]}"
    )
