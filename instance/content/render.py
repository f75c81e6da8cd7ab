"""Our rows -> ActivityStreams JSON: actors and collections (posts: instance/notes.py).

The byte-level shapes come from activitypub.objects builders; this module maps rows to their
arguments and pages collections.
"""

from __future__ import annotations

import html
import re
from typing import Any

from activitypub.objects import AS_CONTEXT, build_actor, media_object, property_value
from instance.storage.models import Account
from instance.urls import LocalUrls

PAGE_SIZE = 20


def actor_document(
    account: Account, urls: LocalUrls, host: str, model: str | None
) -> dict[str, Any]:
    """The actor JSON of a local account (the shape: activitypub.objects.build_actor). AI
    accounts say so in a profile field, and name the model; the owner's own fields follow."""
    fields = []
    if account.kind == "Service":
        fields.append(property_value("Made by", "AI image generation on this instance"))
        if model:
            fields.append(property_value("Model", model))
    fields += [property_value(f["name"], f["value"]) for f in account.fields or []]
    assert account.public_key_pem and account.inbox_uri and account.outbox_uri
    assert account.followers_uri and account.following_uri
    return build_actor(
        actor_id=account.uri,
        actor_type=account.kind,
        username=account.username,
        name=account.display_name or account.username,
        summary=bio_html(account),
        url=account.url,
        inbox=account.inbox_uri,
        outbox=account.outbox_uri,
        followers=account.followers_uri,
        following=account.following_uri,
        featured=account.featured_uri,
        shared_inbox=urls.shared_inbox(),
        key_id=account.key_id,
        public_key_pem=account.public_key_pem,
        manually_approves_followers=account.manually_approves_followers,
        discoverable=account.discoverable,
        indexable=account.discoverable,
        published=account.created_at,
        webfinger=f"{account.username}@{host}",
        icon=_picture(account.avatar_url),
        image=_picture(account.header_url),
        attachment=fields,
    )


def bio_html(account: Account) -> str:
    """An account's bio as HTML, which an actor's `summary` and Mastodon's `note` are: a
    local bio is the text its owner typed (escaped, a paragraph per block, line breaks
    kept), never markup of its own; a remote one was cleaned on arrival (inbound/remote.py)."""
    text = account.summary or ""
    if not account.local:
        return text
    blocks = [b.strip() for b in re.split(r"\n\s*\n", text.replace("\r\n", "\n")) if b.strip()]
    return "".join(f"<p>{html.escape(b).replace(chr(10), '<br>')}</p>" for b in blocks)


def _picture(url: str | None) -> dict[str, Any] | None:
    """An avatar or header: ours are PNG (instance/content/pictures.py)."""
    if not url:
        return None
    media_type = "image/jpeg" if url.lower().endswith((".jpg", ".jpeg")) else "image/png"
    return media_object(url, media_type)


def ordered_collection(collection_id: str, total: int) -> dict[str, Any]:
    """The collection head: totalItems (Mastodon reads it for counters) and the first page,
    also when empty (without `first`, Mastodon shows the collection as hidden)."""
    return {
        "@context": AS_CONTEXT,
        "id": collection_id,
        "type": "OrderedCollection",
        "totalItems": total,
        "first": f"{collection_id}?page=1",
        "last": f"{collection_id}?page={max(1, -(-total // PAGE_SIZE))}",
    }


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
