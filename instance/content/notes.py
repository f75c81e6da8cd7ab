"""Post rows -> Note and Create JSON, the shape INTEROP F 33-38 and H 45/47 describe."""

from __future__ import annotations

from typing import Any

from activitypub.objects import AS_PUBLIC, build_create, format_datetime
from instance.storage.models import Account, MediaAttachment, Post
from instance.urls import LocalUrls

NOTE_CONTEXT: list[Any] = [
    "https://www.w3.org/ns/activitystreams",
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
        "dreamloom": "https://dreamloom.dev/ns#",
        "recipe": {"@id": "dreamloom:recipe", "@type": "@json"},
        "remixOf": {"@id": "dreamloom:remixOf", "@type": "@id"},
    },
]


def attachment_json(media: MediaAttachment, urls: LocalUrls) -> dict[str, Any]:
    """INTEROP 35-37: alt text in both name and summary, blurhash, focalPoint, size."""
    url = urls.media(media.file_name) if media.file_name else media.remote_url
    doc: dict[str, Any] = {
        "type": "Image",
        "mediaType": media.media_type,
        "url": url,
        "name": media.description or "",
        "summary": media.description or "",
        "focalPoint": [media.focal_x, media.focal_y],
    }
    if media.blurhash:
        doc["blurhash"] = media.blurhash
    if media.width and media.height:
        doc["width"], doc["height"] = media.width, media.height
    return doc


def quote_link_tag(target: str) -> dict[str, Any]:
    return {
        "type": "Link",
        "mediaType": 'application/ld+json; profile="https://www.w3.org/ns/activitystreams"',
        "rel": "https://misskey-hub.net/ns#_misskey_quote",
        "href": target,
    }


def note_json(
    post: Post,
    author: Account,
    media: list[MediaAttachment],
    urls: LocalUrls,
    *,
    tags: list[dict[str, Any]] | None = None,
    with_context: bool = True,
) -> dict[str, Any]:
    """The Note of a local post."""
    note: dict[str, Any] = {
        "id": post.uri,
        "type": "Note",
        "attributedTo": author.uri,
        "url": post.url,
        "published": format_datetime(post.published),
        "to": list(post.to),
        "cc": list(post.cc),
        "content": post.content,
        "sensitive": post.sensitive,
        "attachment": [attachment_json(m, urls) for m in media],
        "tag": list(tags if tags is not None else post.tags or []),
        "inReplyTo": post.in_reply_to_uri,
        "likes": {"id": f"{post.uri}/likes", "type": "Collection", "totalItems": post.likes_count},
        "shares": {
            "id": f"{post.uri}/shares",
            "type": "Collection",
            "totalItems": post.boosts_count,
        },
        "interactionPolicy": {"canQuote": {"automaticApproval": [AS_PUBLIC]}},
    }
    if post.language:
        note["contentMap"] = {post.language: post.content}
    if post.summary:
        note["summary"] = post.summary
    if post.edited_at:
        note["updated"] = format_datetime(post.edited_at)
    if post.recipe:
        note["recipe"] = post.recipe
    if post.quote_uri:
        note["remixOf"] = post.quote_uri
        if post.quote_state == "accepted" and post.quote_authorization_uri:
            # INTEROP 45: every reader's quote field, the stamp, and a FEP-e232 Link tag
            for field in ("quote", "_misskey_quote", "quoteUrl", "quoteUri"):
                note[field] = post.quote_uri
            note["quoteAuthorization"] = post.quote_authorization_uri
            note["tag"].append(quote_link_tag(post.quote_uri))
    if with_context:
        note = {"@context": NOTE_CONTEXT, **note}
    return note


def create_json(activity_id: str, note: dict[str, Any]) -> dict[str, Any]:
    """Create{Note}, with to/cc mirrored from the object (INTEROP 30)."""
    return build_create(
        activity_id=activity_id, actor=note["attributedTo"], obj={"@context": NOTE_CONTEXT, **note}
    )
