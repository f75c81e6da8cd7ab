"""Full federation flows between a bovine-herd user and Dreamloom accounts, both directions.

The tests of this module run in order and share state (a follow made by one is what the next
one relies on); each says what it needs, so a failure names the missing step. The bovine side
is driven over its client-to-server API (../shared/peers/herd_client.py and
peer_scripts/herd_extra.py); the Dreamloom side through its CLI (`dreamloom post/follow/like`)
and what it serves over HTTP (Note JSON counters, collections). Facts with no HTTP surface
(a stored remote reply) are read from the instance's database, read-only.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.interop.conftest import AI_ACCOUNT, FOLLOWER_ACCOUNT
from tests.interop.flows import (
    FLOW_TIMEOUT_S,
    POST_TIMEOUT_S,
    Steps,
    as_list,
    collection_total,
    dreamloom_cli,
    ident,
)
from tests.interop.peers import Dreamloom, Herd, HerdUser, eventually

pytestmark = pytest.mark.interop

HERD = "bovine-herd"

state = Steps()
need = state.need


def note_json(dreamloom: Dreamloom, note_id: str) -> dict[str, Any]:
    return dreamloom.get_json(note_id)


@pytest.fixture(scope="module")
def fan(herd: Herd) -> HerdUser:
    """The bovine user who follows, likes, boosts and replies to the AI account."""
    return herd.register("fan")


@pytest.fixture(scope="module")
def muse(herd: Herd) -> HerdUser:
    """The bovine user a Dreamloom account follows."""
    return herd.register("muse")


def inbox(user: HerdUser, n: int = 30) -> list[dict[str, Any]]:
    return list(user.extra("inbox-json", str(n)))


def resolve(user: HerdUser, value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    return dict(user.client("fetch", str(value)))


# -- bovine user -> Dreamloom AI account ---------------------------------------------------------
@pytest.mark.capability(HERD, "follows a Dreamloom AI account and gets the Accept")
def test_follow_ai_account_accepted(fan: HerdUser, dreamloom: Dreamloom) -> None:
    painter = dreamloom.actor(AI_ACCOUNT)
    sent = fan.client("follow", dreamloom.handle(AI_ACCOUNT))
    assert sent["status"] in (200, 201, 202), sent

    def accepted() -> dict[str, Any] | None:
        for item in inbox(fan):
            if item.get("type") == "Accept" and ident(item.get("actor")) == painter:
                return item
        return None

    accept = eventually(
        accepted,
        timeout=FLOW_TIMEOUT_S,
        what="an Accept from the AI account",
        explain=dreamloom.work_summary,
    )
    follow = resolve(fan, accept["object"]) if accept.get("object") else {}
    assert follow.get("type") == "Follow", accept
    assert ident(follow.get("object")) == painter
    assert ident(follow.get("actor")) == fan.actor_id
    # bovine adds the followee to `following` only once it matched the Accept to its Follow
    eventually(
        lambda: painter in str(fan.client("following")),
        timeout=FLOW_TIMEOUT_S,
        explain=dreamloom.work_summary,
        what="bovine to record the follow as accepted",
    )
    eventually(
        lambda: collection_total(dreamloom, f"{painter}/followers") >= 1,
        timeout=FLOW_TIMEOUT_S,
        explain=dreamloom.work_summary,
        what="the AI account's followers to count the bovine user",
    )
    state["following"] = True


@pytest.mark.capability(HERD, "receives an AI image post with attachment and alt text")
def test_receives_image_post(fan: HerdUser, dreamloom: Dreamloom) -> None:
    need("following", "the bovine user following the AI account")
    painter = dreamloom.actor(AI_ACCOUNT)
    dreamloom_cli(dreamloom, "post", AI_ACCOUNT, "a lighthouse in soft morning fog")

    def delivered() -> dict[str, Any] | None:
        for item in inbox(fan):
            if item.get("type") == "Create" and ident(item.get("actor")) == painter:
                return item
        return None

    create = eventually(
        delivered,
        timeout=POST_TIMEOUT_S,
        what="the AI post to reach bovine",
        explain=dreamloom.work_summary,
    )
    note = resolve(fan, create["object"])
    assert note.get("type") == "Note", note
    assert ident(note.get("attributedTo")) == painter
    attachments = as_list(note.get("attachment"))
    assert attachments, f"no attachment on the delivered Note: {note}"
    for media in attachments:
        assert media.get("type") in ("Image", "Document"), media
        assert media.get("mediaType") in ("image/png", "image/jpeg"), media
        alt = media.get("summary") or media.get("name")
        assert alt, f"attachment without alt text: {media}"
        url = ident(media.get("url"))
        if isinstance(url, list):
            url = ident(url[0])
        r = httpx.get(str(url), timeout=10)
        assert r.status_code == 200 and r.headers["content-type"].startswith("image/"), url
    state["note_id"] = note["id"]


@pytest.mark.capability(HERD, "likes a Dreamloom post (likes.totalItems counts it)")
def test_like_counted(fan: HerdUser, dreamloom: Dreamloom) -> None:
    note_id = need("note_id", "an AI post delivered to bovine")
    sent = fan.client("like", note_id, dreamloom.handle(AI_ACCOUNT))
    assert sent["status"] in (200, 201, 202), sent
    eventually(
        lambda: note_json(dreamloom, note_id)["likes"]["totalItems"] >= 1,
        timeout=FLOW_TIMEOUT_S,
        explain=dreamloom.work_summary,
        what="likes.totalItems to count bovine's Like",
    )


@pytest.mark.capability(HERD, "boosts a Dreamloom post (shares.totalItems counts it)")
def test_boost_counted(fan: HerdUser, dreamloom: Dreamloom) -> None:
    note_id = need("note_id", "an AI post delivered to bovine")
    sent = fan.client("announce", note_id, dreamloom.handle(AI_ACCOUNT))
    assert sent["status"] in (200, 201, 202), sent
    eventually(
        lambda: note_json(dreamloom, note_id)["shares"]["totalItems"] >= 1,
        timeout=FLOW_TIMEOUT_S,
        explain=dreamloom.work_summary,
        what="shares.totalItems to count bovine's Announce",
    )


@pytest.mark.capability(HERD, "replies to a Dreamloom post (reply stored, counted)")
def test_reply_stored(fan: HerdUser, dreamloom: Dreamloom) -> None:
    note_id = need("note_id", "an AI post delivered to bovine")
    sent = fan.extra("reply", note_id, "What a <b>lovely</b> fog! <script>alert(1)</script>")
    assert sent["status"] in (200, 201, 202), sent

    def stored() -> list[dict[str, Any]]:
        return dreamloom.query(
            "SELECT uri, content, in_reply_to_uri FROM posts WHERE in_reply_to_uri = :parent",
            parent=note_id,
        )

    rows = eventually(
        stored,
        timeout=FLOW_TIMEOUT_S,
        what="Dreamloom to store the reply",
        explain=dreamloom.work_summary,
    )
    assert "lovely" in rows[0]["content"]
    assert "<script" not in rows[0]["content"].lower(), rows[0]["content"]
    parent = dreamloom.query("SELECT replies_count FROM posts WHERE uri = :uri", uri=note_id)
    assert parent and parent[0]["replies_count"] >= 1, parent


@pytest.mark.capability(HERD, "unfollows (Undo Follow) and leaves the followers")
def test_unfollow(fan: HerdUser, dreamloom: Dreamloom) -> None:
    need("following", "the bovine user following the AI account")
    painter = dreamloom.actor(AI_ACCOUNT)
    before = collection_total(dreamloom, f"{painter}/followers")
    sent = fan.extra("unfollow", painter)
    assert sent["status"] in (200, 201, 202), sent
    eventually(
        lambda: collection_total(dreamloom, f"{painter}/followers") == before - 1,
        timeout=FLOW_TIMEOUT_S,
        explain=dreamloom.work_summary,
        what="the AI account's followers to drop the bovine user",
    )


# -- Dreamloom account -> bovine user ------------------------------------------------------------
@pytest.mark.capability(HERD, "is followed by a Dreamloom account (Follow, then Accept)")
def test_dreamloom_follows_bovine_user(muse: HerdUser, dreamloom: Dreamloom) -> None:
    sketcher = dreamloom.actor(FOLLOWER_ACCOUNT)
    dreamloom_cli(dreamloom, "follow", FOLLOWER_ACCOUNT, f"@{muse.handle}")

    def follow_arrived() -> list[dict[str, Any]]:
        return [
            x
            for x in inbox(muse)
            if x.get("type") == "Follow" and ident(x.get("actor")) == sketcher
        ]

    eventually(
        follow_arrived,
        timeout=FLOW_TIMEOUT_S,
        what="Dreamloom's Follow to reach bovine",
        explain=dreamloom.work_summary,
    )
    accepted = muse.extra("accept-follows")  # bovine users accept follows by hand
    assert accepted and all(a["status"] in (200, 201, 202) for a in accepted), accepted
    eventually(
        lambda: sketcher in str(muse.client("followers")),
        timeout=FLOW_TIMEOUT_S,
        explain=dreamloom.work_summary,
        what="bovine to list the Dreamloom account as a follower",
    )

    def dreamloom_knows() -> bool:
        rows = dreamloom.query(
            "SELECT f.accepted FROM follows f JOIN accounts a ON a.id = f.follower_id "
            "JOIN accounts b ON b.id = f.followee_id WHERE a.uri = :me AND b.uri = :them",
            me=sketcher,
            them=muse.actor_id,
        )
        return bool(rows and rows[0]["accepted"])

    eventually(
        dreamloom_knows,
        timeout=FLOW_TIMEOUT_S,
        what="Dreamloom to record the Accept",
        explain=dreamloom.work_summary,
    )
    eventually(
        lambda: collection_total(dreamloom, f"{sketcher}/following") >= 1,
        timeout=FLOW_TIMEOUT_S,
        explain=dreamloom.work_summary,
        what="the Dreamloom account's following to count the bovine user",
    )
    state["dreamloom_follows"] = True


@pytest.mark.capability(HERD, "its note reaches the Dreamloom account that follows it")
def test_note_reaches_dreamloom(muse: HerdUser, dreamloom: Dreamloom) -> None:
    need("dreamloom_follows", "the Dreamloom account following the bovine user")
    sent = muse.client("note", dreamloom.actor(FOLLOWER_ACCOUNT), "fresh paint on the pier")
    assert sent["status"] in (200, 201, 202), sent

    def stored() -> list[dict[str, Any]]:
        return dreamloom.query(
            "SELECT p.uri, p.content FROM posts p JOIN accounts a ON a.id = p.account_id "
            "WHERE a.uri = :author AND p.content LIKE '%fresh paint%'",
            author=muse.actor_id,
        )

    rows = eventually(
        stored,
        timeout=FLOW_TIMEOUT_S,
        what="Dreamloom to store bovine's note",
        explain=dreamloom.work_summary,
    )
    state["muse_note"] = rows[0]["uri"]


@pytest.mark.capability(HERD, "a Dreamloom account likes its note (Like delivered)")
def test_dreamloom_likes_bovine_note(muse: HerdUser, dreamloom: Dreamloom) -> None:
    note_id = need("muse_note", "a bovine note stored on Dreamloom")
    sketcher = dreamloom.actor(FOLLOWER_ACCOUNT)
    dreamloom_cli(dreamloom, "like", FOLLOWER_ACCOUNT, note_id)

    def like_arrived() -> bool:
        return any(
            x.get("type") == "Like"
            and ident(x.get("actor")) == sketcher
            and ident(x.get("object")) == note_id
            for x in inbox(muse)
        )

    eventually(
        like_arrived,
        timeout=FLOW_TIMEOUT_S,
        what="Dreamloom's Like to reach bovine",
        explain=dreamloom.work_summary,
    )
