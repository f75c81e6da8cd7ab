"""Audiences (to/cc) of what we send, and the inboxes we deliver it to."""

from __future__ import annotations

from activitypub import addressing
from activitypub.addressing import Recipient, delivery_inboxes
from activitypub.objects import AS_PUBLIC

F = "https://ai.example/users/bot/followers"
ALICE = "https://m.example/users/alice"


def test_audiences() -> None:
    """Public = to Public, cc followers; unlisted = Public in cc."""
    assert addressing.public(F, [ALICE]).as_dict() == {"to": [AS_PUBLIC], "cc": [F, ALICE]}
    assert addressing.unlisted(F).as_dict() == {"to": [F], "cc": [AS_PUBLIC]}
    assert addressing.followers_only(F, [ALICE, ALICE]).as_dict() == {"to": [F], "cc": [ALICE]}
    assert addressing.direct([ALICE]).as_dict() == {"to": [ALICE], "cc": []}


def test_public_spellings_and_visibility() -> None:
    for spelling in ("as:Public", "Public", AS_PUBLIC):
        assert addressing.is_public(spelling)
        assert addressing.visibility_of({"to": [spelling]}) == "public"
    assert addressing.normalize_audience(["Public", {"id": AS_PUBLIC}, F]) == [AS_PUBLIC, F]
    assert addressing.visibility_of({"to": [F], "cc": "as:Public"}) == "unlisted"
    assert addressing.visibility_of({"to": [F]}, followers_url=F) == "followers"
    assert addressing.visibility_of({"to": ["https://m.example/users/x/followers"]}) == "followers"
    assert addressing.visibility_of({"to": [ALICE]}, followers_url=F) == "direct"


def test_shared_inbox_deduplication() -> None:
    """Followers via their shared inbox, once per server; mentions personally."""
    followers = [
        Recipient(
            f"https://m.example/users/u{i}",
            f"https://m.example/users/u{i}/inbox",
            "https://m.example/inbox",
        )
        for i in range(50)
    ] + [Recipient("https://g.example/users/x", "https://g.example/users/x/inbox")]
    mentioned = [
        Recipient(ALICE, ALICE + "/inbox", "https://m.example/inbox"),  # same server: covered
        Recipient("https://p.example/u/z", "https://p.example/u/z/inbox", "https://p.example/i"),
    ]
    assert delivery_inboxes(followers, mentioned, exclude=["https://ai.example/inbox"]) == [
        "https://m.example/inbox",
        "https://g.example/users/x/inbox",
        "https://p.example/u/z/inbox",
    ]


def test_recipient_from_actor() -> None:
    actor = {
        "id": ALICE,
        "type": "Person",
        "inbox": ALICE + "/inbox",
        "endpoints": {"sharedInbox": "https://m.example/inbox"},
    }
    assert Recipient.from_actor(actor) == Recipient(
        ALICE, ALICE + "/inbox", "https://m.example/inbox"
    )
    assert Recipient.from_actor({"id": ALICE, "inbox": ""}) is None


class CountedId(str):
    """An id that counts how often it is compared for equality."""

    compared = 0

    def __eq__(self, other: object) -> bool:
        CountedId.compared += 1
        return str.__eq__(self, other)

    __hash__ = str.__hash__


def test_a_huge_audience_is_deduplicated_in_linear_time() -> None:
    """Red-team finding R1: a Note's `to` may list ~45,000 ids (a 1 MB body). De-duplicating
    it by scanning a list compared every id with every earlier one (10^9 comparisons, seconds
    of a frozen event loop); audiences and inbox lists compare each id a bounded number of
    times."""
    n = 45_000
    ids = [CountedId(f"https://e.example/users/{i}") for i in range(n)]
    CountedId.compared = 0
    assert addressing.normalize_audience(ids + ids[:10]) == ids
    assert addressing.direct(ids).to == tuple(ids)
    recipients = [Recipient(i, CountedId(i + "/inbox")) for i in ids]
    assert len(delivery_inboxes(recipients, recipients)) == n
    assert CountedId.compared < 10 * n
