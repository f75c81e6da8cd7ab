"""Our rows -> ActivityStreams JSON: actors and collections (posts: instance/notes.py).

The byte-level shapes come from activitypub.objects builders; this module only maps rows to
their arguments and pages collections.
"""

from __future__ import annotations

from typing import Any

from .storage.models import Account
from .urls import LocalUrls

PAGE_SIZE = 20

AS_CONTEXT = "https://www.w3.org/ns/activitystreams"
SECURITY_CONTEXT = "https://w3id.org/security/v1"
ACTOR_EXTENSIONS: dict[str, Any] = {
    "toot": "http://joinmastodon.org/ns#",
    "schema": "http://schema.org#",
    "PropertyValue": "schema:PropertyValue",
    "value": "schema:value",
    "discoverable": "toot:discoverable",
    "indexable": "toot:indexable",
    "featured": {"@id": "toot:featured", "@type": "@id"},
    "manuallyApprovesFollowers": "as:manuallyApprovesFollowers",
    "webfinger": "https://purl.archive.org/socialweb/webfinger#webfinger",
    "dreamloom": "https://dreamloom.dev/ns#",
}


def actor_document(
    account: Account, urls: LocalUrls, host: str, model: str | None
) -> dict[str, Any]:
    """The actor JSON of a local account. INTEROP 8-12."""
    username = account.username
    doc: dict[str, Any] = {
        "@context": [AS_CONTEXT, SECURITY_CONTEXT, ACTOR_EXTENSIONS],
        "id": account.uri,
        "type": account.kind,
        "preferredUsername": username,
        "name": account.display_name or username,
        "summary": account.summary or "",
        "url": account.url,
        "inbox": account.inbox_uri,
        "outbox": account.outbox_uri,
        "followers": account.followers_uri,
        "following": account.following_uri,
        "featured": account.featured_uri,
        "endpoints": {"sharedInbox": urls.shared_inbox()},
        "manuallyApprovesFollowers": account.manually_approves_followers,
        "discoverable": account.discoverable,
        "indexable": account.discoverable,
        "published": account.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "webfinger": f"{username}@{host}",
        "publicKey": {
            "id": account.key_id,
            "owner": account.uri,
            "publicKeyPem": account.public_key_pem,
        },
    }
    if account.avatar_url:
        doc["icon"] = {"type": "Image", "mediaType": "image/png", "url": account.avatar_url}
    if account.kind == "Service":
        fields = [("Made by", "AI image generation on this instance's own GPU")]
        if model:
            fields.append(("Model", model))
        doc["attachment"] = [
            {"type": "PropertyValue", "name": name, "value": value} for name, value in fields
        ]
    return doc


def ordered_collection(collection_id: str, total: int) -> dict[str, Any]:
    """The collection head: totalItems (Mastodon reads it for counters) and the first page."""
    doc: dict[str, Any] = {
        "@context": AS_CONTEXT,
        "id": collection_id,
        "type": "OrderedCollection",
        "totalItems": total,
    }
    if total:
        doc["first"] = f"{collection_id}?page=1"
        doc["last"] = f"{collection_id}?page={max(1, -(-total // PAGE_SIZE))}"
    return doc


def collection_page(collection_id: str, page: int, items: list[Any], total: int) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "@context": AS_CONTEXT,
        "id": f"{collection_id}?page={page}",
        "type": "OrderedCollectionPage",
        "partOf": collection_id,
        "totalItems": total,
        "orderedItems": items,
    }
    if page * PAGE_SIZE < total:
        doc["next"] = f"{collection_id}?page={page + 1}"
    if page > 1:
        doc["prev"] = f"{collection_id}?page={page - 1}"
    return doc
