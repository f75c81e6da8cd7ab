"""The Note we send for a post, its image attachments, and the quote vocabulary (FEP-044f).

Pure builders over plain values; the application maps its rows onto their arguments. What
each reader needs from a Note:

- `to`/`cc` decide who may see it (Mastodon reads the visibility from them); `published`,
  `url` (the HTML page) and `attributedTo` are required by every server.
- `content` is HTML, repeated in `contentMap` under its language; a content warning is
  `summary` with `sensitive: true`.
- Images are `attachment` entries of type Image with `mediaType`, `url`, the alt text in
  `name` (Mastodon, GoToSocial) and in `summary` (Misskey), a `blurhash`, a `focalPoint`
  and the pixel size.
- `likes`/`shares` are Collections with `totalItems`: Mastodon shows those counts;
  `replies` names the collection of public replies, from which Mastodon backfills a thread.
- `interactionPolicy.canQuote` says who may quote without asking (GoToSocial, Mastodon 4.5):
  everyone for public and unlisted posts, only the author otherwise.
- A quote (our remix of another post) carries the quoted post's id in every field a reader
  looks for: `quote` (FEP-044f), `_misskey_quote` (Misskey), `quoteUrl` and `quoteUri`
  (older Mastodon forks, Fedibird), plus a FEP-e232 Link tag, from the moment we ask for
  approval (the Note inlined in our QuoteRequest); once the quoted author approved it,
  `quoteAuthorization` names their stamp. A quote of a post whose server cannot approve
  quotes carries only `quoteUrl` and the Link tag.
- Dreamloom's own terms: `recipe` (the generation recipe, a JSON object) and `remixOf`.

The quote flow: we ask with `QuoteRequest{object: their post, instrument: our Note}`; they
answer `Accept{result: a QuoteAuthorization URL}` or `Reject`. A `QuoteAuthorization` names
the quoting post (`interactingObject`) and the quoted one (`interactionTarget`), never embeds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from activitypub.objects import AS_CONTEXT, AS_PUBLIC, build_create, format_datetime

DREAMLOOM_NS = "https://dreamloom.dev/ns#"
DREAMLOOM_TERMS: dict[str, Any] = {
    "dreamloom": DREAMLOOM_NS,
    # a JSON object (docs/federation.md). Not "@type": "@json": that is JSON-LD 1.1, and a
    # 1.0 processor rejects the whole context for it
    "recipe": {"@id": "dreamloom:recipe"},
    "remixOf": {"@id": "dreamloom:remixOf", "@type": "@id"},
}
"""Dreamloom's own terms; every instance also serves them as a context document at /ns."""

NOTE_CONTEXT: list[Any] = [
    AS_CONTEXT,
    {
        "toot": "http://joinmastodon.org/ns#",
        "blurhash": "toot:blurhash",
        "focalPoint": {"@container": "@list", "@id": "toot:focalPoint"},
        "sensitive": "as:sensitive",
        "Hashtag": "as:Hashtag",
        "quoteUrl": "as:quoteUrl",
        "gts": "https://gotosocial.org/ns#",
        "interactionPolicy": {"@id": "gts:interactionPolicy", "@type": "@id"},
        "canQuote": {"@id": "gts:canQuote", "@type": "@id"},
        "automaticApproval": {"@id": "gts:automaticApproval", "@type": "@id"},
        "quote": {"@id": "https://w3id.org/fep/044f#quote", "@type": "@id"},
        "quoteAuthorization": {
            "@id": "https://w3id.org/fep/044f#quoteAuthorization",
            "@type": "@id",
        },
        "_misskey_quote": "https://misskey-hub.net/ns#_misskey_quote",
        "quoteUri": "http://fedibird.com/ns#quoteUri",
        **DREAMLOOM_TERMS,
    },
]
QuoteForm = Literal["approved", "asking", "unapproved"]
QUOTE_FIELDS = ("quote", "_misskey_quote", "quoteUrl", "quoteUri")
"""Where readers look for the quoted post's id, in the order we read them."""
FEP_044F_CONTEXT: list[Any] = [
    AS_CONTEXT,
    {
        "QuoteRequest": "https://w3id.org/fep/044f#QuoteRequest",
        "QuoteAuthorization": "https://w3id.org/fep/044f#QuoteAuthorization",
        "quote": {"@id": "https://w3id.org/fep/044f#quote", "@type": "@id"},
        "interactingObject": {"@id": "gts:interactingObject", "@type": "@id"},
        "interactionTarget": {"@id": "gts:interactionTarget", "@type": "@id"},
        "gts": "https://gotosocial.org/ns#",
    },
]


def build_image(
    *,
    url: str | None,
    media_type: str,
    alt: str,
    blurhash: str | None = None,
    width: int | None = None,
    height: int | None = None,
    focal: tuple[float, float] = (0.0, 0.0),
) -> dict[str, Any]:
    """One image attachment: alt text in both `name` and `summary`, blurhash, focal point."""
    doc: dict[str, Any] = {
        "type": "Image",
        "mediaType": media_type,
        "url": url,
        "name": alt,
        "summary": alt,
        "focalPoint": list(focal),
    }
    if blurhash:
        doc["blurhash"] = blurhash
    if width and height:
        doc["width"], doc["height"] = width, height
    return doc


def quote_link_tag(target: str) -> dict[str, Any]:
    """The FEP-e232 Link tag that marks `target` as the quoted object."""
    return {
        "type": "Link",
        "mediaType": 'application/ld+json; profile="https://www.w3.org/ns/activitystreams"',
        "rel": "https://misskey-hub.net/ns#_misskey_quote",
        "href": target,
    }


def build_note(
    *,
    note_id: str,
    author: str,
    url: str | None,
    published: datetime,
    to: Sequence[str],
    cc: Sequence[str],
    content: str,
    sensitive: bool = False,
    summary: str | None = None,
    language: str | None = None,
    attachments: Sequence[Mapping[str, Any]] = (),
    tags: Sequence[Mapping[str, Any]] = (),
    in_reply_to: str | None = None,
    likes: int = 0,
    shares: int = 0,
    updated: datetime | None = None,
    recipe: Mapping[str, Any] | None = None,
    remix_of: str | None = None,
    quote: QuoteForm | None = None,
    quote_authorization: str | None = None,
    quotable: bool = True,
    with_context: bool = True,
) -> dict[str, Any]:
    """A Note as every reader in the module docstring expects it.

    A remix (`remix_of`) is, by `quote`: "approved", a quote with its `quote_authorization`;
    "asking", a quote awaiting approval (the `instrument` of our QuoteRequest: Mastodon
    imports it and checks that its `quote` is the requested post); "unapproved", a quote
    of a post whose server cannot approve quotes (`quoteUrl` and the Link tag, which
    Misskey, Akkoma and Mastodon read, without FEP-044f's `quote`); None, a plain remix
    link. `quotable` False (followers-only and direct posts) lets only the author quote."""
    if quote == "approved" and not quote_authorization:
        raise ValueError("an approved quote names its authorization")
    note: dict[str, Any] = {
        "id": note_id,
        "type": "Note",
        "attributedTo": author,
        "url": url,
        "published": format_datetime(published),
        "to": list(to),
        "cc": list(cc),
        "content": content,
        "sensitive": sensitive,
        "attachment": [dict(a) for a in attachments],
        "tag": [dict(t) for t in tags],
        "inReplyTo": in_reply_to,
        "replies": {
            "id": f"{note_id}/replies",
            "type": "OrderedCollection",
            "first": f"{note_id}/replies?page=1",
        },
        "likes": {"id": f"{note_id}/likes", "type": "Collection", "totalItems": likes},
        "shares": {"id": f"{note_id}/shares", "type": "Collection", "totalItems": shares},
        "interactionPolicy": {
            "canQuote": {"automaticApproval": [AS_PUBLIC if quotable else author]}
        },
    }
    if language:
        note["contentMap"] = {language: content}
    if summary:
        note["summary"] = summary
    if updated:
        note["updated"] = format_datetime(updated)
    if recipe:
        note["recipe"] = dict(recipe)
    if remix_of:
        note["remixOf"] = remix_of
        if quote in ("approved", "asking"):
            for field in QUOTE_FIELDS:
                note[field] = remix_of
        elif quote == "unapproved":
            note["quoteUrl"] = remix_of
        if quote is not None:
            note["tag"].append(quote_link_tag(remix_of))
        if quote == "approved":
            note["quoteAuthorization"] = quote_authorization
    if with_context:
        note = {"@context": NOTE_CONTEXT, **note}
    return note


def build_note_create(activity_id: str, note: Mapping[str, Any]) -> dict[str, Any]:
    """Create{Note}, with to/cc mirrored from the object, in the Note's context."""
    body = {k: v for k, v in note.items() if k != "@context"}
    return build_create(
        activity_id=activity_id, actor=note["attributedTo"], obj={"@context": NOTE_CONTEXT, **body}
    )


def build_quote_request(
    *, request_id: str, actor: str, quoted: str, instrument: Mapping[str, Any], to: str
) -> dict[str, Any]:
    """Ask `to` (the quoted post's author) to approve `instrument`, our quoting Note."""
    body = {k: v for k, v in instrument.items() if k != "@context"}
    return {
        "@context": [*NOTE_CONTEXT, {"QuoteRequest": "https://w3id.org/fep/044f#QuoteRequest"}],
        "id": request_id,
        "type": "QuoteRequest",
        "actor": actor,
        "object": quoted,
        "instrument": body,
        "to": [to],
    }


def build_quote_answer(
    *,
    answer: str,
    activity_id: str,
    actor: str,
    request: Mapping[str, Any],
    to: str,
    authorization: str | None = None,
) -> dict[str, Any]:
    """`Accept` (with `result`: the stamp's URL) or `Reject` of a QuoteRequest, which is
    embedded as the object."""
    if answer not in ("Accept", "Reject"):
        raise ValueError("a QuoteRequest is answered with Accept or Reject")
    doc: dict[str, Any] = {
        "@context": FEP_044F_CONTEXT,
        "id": activity_id,
        "type": answer,
        "actor": actor,
        "to": [to],
        "object": {k: v for k, v in request.items() if k != "@context"},
    }
    if answer == "Accept":
        if not authorization:
            raise ValueError("an Accept of a QuoteRequest carries the authorization's URL")
        doc["result"] = authorization
    return doc


def build_quote_authorization(
    *, authorization_id: str, author: str, quoting: str, quoted: str
) -> dict[str, Any]:
    """The stamp: `author` lets `quoting` quote `quoted`. Names both, embeds neither."""
    return {
        "@context": FEP_044F_CONTEXT,
        "id": authorization_id,
        "type": "QuoteAuthorization",
        "attributedTo": author,
        "interactingObject": quoting,
        "interactionTarget": quoted,
    }
