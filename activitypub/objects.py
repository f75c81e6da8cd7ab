"""Typed read-only views over raw ActivityStreams dicts, and builders for what we send.

Views (`APObject`, `Activity`, `Actor`, `Collection`) wrap a received dict without copying or
validating all of ActivityStreams: every accessor tolerates the string-or-object-or-list
forms real servers send (`id_of`, `ids_of`, `as_list`). Builders are pure functions over plain
strings and dicts (no ORM objects) that produce the documents Mastodon and friends expect:
actors with the contexts and fields Mastodon requires, activities each with their own id,
public audiences mirrored on activity and object, edits that carry `updated`, and Accepts,
Likes and Undos shaped so the other side can match them to the original.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple

from activitypub.keys import PublicKeyInfo
from activitypub.urls import same_origin

AS_CONTEXT = "https://www.w3.org/ns/activitystreams"
SECURITY_CONTEXT = "https://w3id.org/security/v1"
AS_PUBLIC = "https://www.w3.org/ns/activitystreams#Public"

# Mastodon's extension map, with the wrong schema.org IRI it documents and expects.
ACTOR_EXTENSIONS: dict[str, Any] = {
    "toot": "http://joinmastodon.org/ns#",
    "schema": "http://schema.org#",
    "PropertyValue": "schema:PropertyValue",
    "value": "schema:value",
    "discoverable": "toot:discoverable",
    "indexable": "toot:indexable",
    "featured": {"@id": "toot:featured", "@type": "@id"},
    "manuallyApprovesFollowers": "as:manuallyApprovesFollowers",
    "alsoKnownAs": {"@id": "as:alsoKnownAs", "@type": "@id"},
    "webfinger": {"@id": "https://purl.archive.org/socialweb/webfinger#webfinger",
                  "@type": "http://www.w3.org/2001/XMLSchema#string"},
}  # fmt: skip
ACTOR_CONTEXT: list[Any] = [AS_CONTEXT, SECURITY_CONTEXT, ACTOR_EXTENSIONS]
ACTOR_TYPES = frozenset({"Person", "Service", "Application", "Group", "Organization"})


# --------------------------------------------------------------------------- tolerant access


def as_list(value: Any) -> list[Any]:
    """`None` -> [], a list -> itself, anything else -> [it]."""
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def id_of(value: Any) -> str | None:
    """The id of a reference given as a string, an object with `id`, or a list (first one)."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, Mapping):
        found = value.get("id")
        return found if isinstance(found, str) and found else None
    if isinstance(value, list):
        for item in value:
            found_id = id_of(item)
            if found_id is not None:
                return found_id
    return None


def ids_of(value: Any) -> list[str]:
    """Every id in a string / object / list value, in order, without blanks."""
    return [found for item in as_list(value) if (found := id_of(item)) is not None]


def href_of(value: Any) -> str | None:
    """A URL given as a string, a Link `{href}`, an object `{url}`, or a list (first one)."""
    for item in as_list(value):
        if isinstance(item, str) and item:
            return item
        if isinstance(item, Mapping):
            found = href_of(item.get("href")) or href_of(item.get("url"))
            if found:
                return found
    return None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


# --------------------------------------------------------------------------- views


class Attachment(NamedTuple):
    """One entry of `attachment` (an image, usually)."""

    type: str | None
    media_type: str | None
    url: str | None
    name: str | None
    summary: str | None
    blurhash: str | None
    width: int | None
    height: int | None

    @property
    def alt_text(self) -> str | None:
        """The image description: Mastodon reads `summary` first, then `name`, and so do we."""
        return self.summary or self.name

    @classmethod
    def from_raw(cls, raw: Mapping[str, Any]) -> Attachment:
        return cls(
            _str(raw.get("type")), _str(raw.get("mediaType")), href_of(raw.get("url")),
            _str(raw.get("name")), _str(raw.get("summary")), _str(raw.get("blurhash")),
            _int(raw.get("width")), _int(raw.get("height")),
        )  # fmt: skip


class Tag(NamedTuple):
    """One entry of `tag`: a Hashtag, Mention, Emoji or Link."""

    type: str | None
    name: str | None
    href: str | None


class APObject:
    """A read-only view over any ActivityStreams object dict."""

    __slots__ = ("raw",)

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.raw = raw

    def __repr__(self) -> str:
        return f"{type(self).__name__}(id={self.id!r}, type={self.type!r})"

    def get(self, key: str, default: Any = None) -> Any:
        return self.raw.get(key, default)

    @property
    def id(self) -> str | None:
        return _str(self.raw.get("id")) or None

    @property
    def types(self) -> list[str]:
        return [t for t in as_list(self.raw.get("type")) if isinstance(t, str)]

    @property
    def type(self) -> str | None:
        types = self.types
        return types[0] if types else None

    def is_type(self, *names: str) -> bool:
        return any(t in names for t in self.types)

    @property
    def attributed_to(self) -> str | None:
        return id_of(self.raw.get("attributedTo"))

    @property
    def to(self) -> list[str]:
        return ids_of(self.raw.get("to"))

    @property
    def cc(self) -> list[str]:
        return ids_of(self.raw.get("cc"))

    @property
    def recipients(self) -> list[str]:
        """to + cc + bto + bcc + audience, de-duplicated in order."""
        found: list[str] = []
        for key in ("to", "cc", "bto", "bcc", "audience"):
            found.extend(i for i in ids_of(self.raw.get(key)) if i not in found)
        return found

    @property
    def content(self) -> str | None:
        return _str(self.raw.get("content"))

    @property
    def summary(self) -> str | None:
        return _str(self.raw.get("summary"))

    @property
    def name(self) -> str | None:
        return _str(self.raw.get("name"))

    @property
    def published(self) -> str | None:
        return _str(self.raw.get("published"))

    @property
    def updated(self) -> str | None:
        return _str(self.raw.get("updated"))

    @property
    def in_reply_to(self) -> str | None:
        return id_of(self.raw.get("inReplyTo"))

    @property
    def url(self) -> str | None:
        return href_of(self.raw.get("url"))

    @property
    def sensitive(self) -> bool:
        return self.raw.get("sensitive") is True

    @property
    def attachments(self) -> list[Attachment]:
        return [Attachment.from_raw(a) for a in as_list(self.raw.get("attachment"))
                if isinstance(a, Mapping)]  # fmt: skip

    @property
    def tags(self) -> list[Tag]:
        return [Tag(_str(t.get("type")), _str(t.get("name")), href_of(t.get("href")))
                for t in as_list(self.raw.get("tag")) if isinstance(t, Mapping)]  # fmt: skip


class Activity(APObject):
    """A view over an activity (Create, Follow, Undo, ...)."""

    __slots__ = ()

    @property
    def actor(self) -> str | None:
        return id_of(self.raw.get("actor"))

    @property
    def object_id(self) -> str | None:
        return id_of(self.raw.get("object"))

    @property
    def object(self) -> APObject | None:
        """The embedded object as a view, or None when `object` is only a reference."""
        value = self.raw.get("object")
        if isinstance(value, list):
            value = value[0] if value else None
        return APObject(value) if isinstance(value, Mapping) else None

    @property
    def object_activity(self) -> Activity | None:
        """The embedded object viewed as an activity (for Undo, Accept, Reject)."""
        embedded = self.object
        return Activity(embedded.raw) if embedded is not None else None

    @property
    def target(self) -> str | None:
        return id_of(self.raw.get("target"))

    @property
    def result(self) -> str | None:
        return id_of(self.raw.get("result"))


class Actor(APObject):
    """A view over an actor document."""

    __slots__ = ()

    @property
    def is_actor(self) -> bool:
        return self.is_type(*ACTOR_TYPES)

    @property
    def preferred_username(self) -> str | None:
        return _str(self.raw.get("preferredUsername"))

    @property
    def inbox(self) -> str | None:
        return id_of(self.raw.get("inbox"))

    @property
    def outbox(self) -> str | None:
        return id_of(self.raw.get("outbox"))

    @property
    def followers(self) -> str | None:
        return id_of(self.raw.get("followers"))

    @property
    def following(self) -> str | None:
        return id_of(self.raw.get("following"))

    @property
    def featured(self) -> str | None:
        return id_of(self.raw.get("featured"))

    @property
    def shared_inbox(self) -> str | None:
        endpoints = self.raw.get("endpoints")
        return id_of(endpoints.get("sharedInbox")) if isinstance(endpoints, Mapping) else None

    @property
    def webfinger(self) -> str | None:
        """FEP-2c59 `webfinger` (`user@host`), when published."""
        return _str(self.raw.get("webfinger"))

    @property
    def icon_url(self) -> str | None:
        return href_of(self.raw.get("icon"))

    @property
    def image_url(self) -> str | None:
        """The header (banner) picture."""
        return href_of(self.raw.get("image"))

    @property
    def manually_approves_followers(self) -> bool:
        return self.raw.get("manuallyApprovesFollowers") is True

    @property
    def public_keys(self) -> list[PublicKeyInfo]:
        """Every well-formed `publicKey` entry (an object or a list of objects)."""
        keys = []
        for entry in as_list(self.raw.get("publicKey")):
            if not isinstance(entry, Mapping):
                continue
            key_id, owner = _str(entry.get("id")), id_of(entry.get("owner"))
            pem = _str(entry.get("publicKeyPem"))
            if key_id and owner and pem:
                keys.append(PublicKeyInfo(key_id, owner, pem))
        return keys

    @property
    def own_keys(self) -> list[PublicKeyInfo]:
        """The keys this actor owns: it names itself as their `owner` (listing is not owning)
        and their ids live on its own server (a document cannot claim another server's key
        id, which would hijack that key for whoever trusts the listing)."""
        if not self.id:
            return []
        me = self.id
        return [k for k in self.public_keys if k.owner == me and same_origin(k.key_id, me)]

    def public_key(self, key_id: str) -> PublicKeyInfo | None:
        """The key with this id, if it is one of `own_keys`."""
        return next((key for key in self.own_keys if key.key_id == key_id), None)


class Collection(APObject):
    """A view over a Collection, OrderedCollection or one of their pages."""

    __slots__ = ()

    @property
    def total_items(self) -> int | None:
        return _int(self.raw.get("totalItems"))

    @property
    def items(self) -> list[Any]:
        return as_list(self.raw.get("orderedItems", self.raw.get("items")))

    @property
    def first(self) -> Any:
        """The first page: a URL, or an embedded page dict."""
        return self.raw.get("first")

    @property
    def next(self) -> str | None:
        return id_of(self.raw.get("next"))


# --------------------------------------------------------------------------- builders


def format_datetime(moment: datetime) -> str:
    """ISO 8601 in UTC with a `Z`, second precision (`2026-07-07T10:00:00Z`)."""
    aware = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
    return aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _without_context(document: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in document.items() if key != "@context"}


def media_object(url: str, media_type: str, *, type: str = "Image") -> dict[str, Any]:
    """An `icon`/`image` value: `{type, mediaType, url}`, the shape Mastodon reads."""
    return {"type": type, "mediaType": media_type, "url": url}


def property_value(name: str, value: str) -> dict[str, Any]:
    """A profile field (`PropertyValue`), e.g. `property_value("Model", "SDXL")`. `value` is
    HTML, as Mastodon sends it: the text escaped, an http(s) URL as a link (GoToSocial
    reads a value that is neither as a bad link and drops the field)."""
    text = value.strip()
    if re.fullmatch(r"https?://[^\s<>\"']+", text):
        url = html.escape(text)
        shown = html.escape(text.split("://", 1)[1])
        markup = f'<a href="{url}" rel="me nofollow noopener" target="_blank">{shown}</a>'
    else:
        markup = html.escape(text, quote=False)
    return {"type": "PropertyValue", "name": name, "value": markup}


def build_actor(
    *,
    actor_id: str,
    username: str,
    inbox: str,
    outbox: str,
    followers: str,
    following: str,
    shared_inbox: str,
    public_key_pem: str,
    actor_type: str = "Service",
    key_id: str | None = None,
    name: str | None = None,
    summary: str | None = None,
    url: str | None = None,
    icon: Mapping[str, Any] | None = None,
    image: Mapping[str, Any] | None = None,
    featured: str | None = None,
    webfinger: str | None = None,
    published: datetime | None = None,
    manually_approves_followers: bool = False,
    discoverable: bool = True,
    indexable: bool = True,
    attachment: Iterable[Mapping[str, Any]] = (),
    also_known_as: Iterable[str] = (),
) -> dict[str, Any]:
    """An actor document Mastodon accepts (its contexts, required fields; FEP-2c59 `webfinger`)."""
    if actor_type not in ACTOR_TYPES:
        raise ValueError(f"not an actor type: {actor_type}")
    document: dict[str, Any] = {
        "@context": ACTOR_CONTEXT,
        "id": actor_id,
        "type": actor_type,
        "preferredUsername": username,
        "inbox": inbox,
        "outbox": outbox,
        "followers": followers,
        "following": following,
        "endpoints": {"sharedInbox": shared_inbox},
        "manuallyApprovesFollowers": manually_approves_followers,
        "discoverable": discoverable,
        "indexable": indexable,
        "publicKey": {
            "id": key_id or f"{actor_id}#main-key",
            "owner": actor_id,
            "publicKeyPem": public_key_pem,
        },
    }
    optional: dict[str, Any] = {
        "name": name, "summary": summary, "url": url, "featured": featured,
        "webfinger": webfinger, "icon": dict(icon) if icon else None,
        "image": dict(image) if image else None,
        "published": format_datetime(published) if published else None,
        "attachment": [dict(a) for a in attachment] or None,
        "alsoKnownAs": list(also_known_as) or None,
    }  # fmt: skip
    document.update({key: value for key, value in optional.items() if value is not None})
    return document


def _activity(
    activity_type: str, activity_id: str, actor: str, obj: Any, **extra: Any
) -> dict[str, Any]:
    document: dict[str, Any] = {
        "@context": AS_CONTEXT,
        "id": activity_id,
        "type": activity_type,
        "actor": actor,
        "object": obj,
    }
    document.update({key: value for key, value in extra.items() if value is not None})
    return document


def _audience(to: Iterable[str], cc: Iterable[str]) -> dict[str, list[str]]:
    return {"to": list(to), "cc": list(cc)}


def build_follow(*, activity_id: str, actor: str, object_id: str) -> dict[str, Any]:
    """`Follow{actor, object}`; store `activity_id` to match the Accept when it comes."""
    return _activity("Follow", activity_id, actor, object_id, to=[object_id])


def build_accept(*, activity_id: str, actor: str, follow: Mapping[str, Any]) -> dict[str, Any]:
    """`Accept{object: {id, type: Follow, actor, object}}`, sent by the followee.

    Mastodon matches the Follow by its id or the embedded actor; otherwise it stays pending.
    """
    return _activity("Accept", activity_id, actor, _embedded_follow(follow),
                     to=ids_of(follow.get("actor")))  # fmt: skip


def build_reject(*, activity_id: str, actor: str, follow: Mapping[str, Any]) -> dict[str, Any]:
    """`Reject{object: the Follow}`, the mirror of `build_accept`."""
    return _activity("Reject", activity_id, actor, _embedded_follow(follow),
                     to=ids_of(follow.get("actor")))  # fmt: skip


def _embedded_follow(follow: Mapping[str, Any]) -> dict[str, Any]:
    follow_id, follower, followee = (
        id_of(follow.get("id")), id_of(follow.get("actor")), id_of(follow.get("object"))
    )
    if not (follow_id and follower and followee):
        raise ValueError("a Follow needs id, actor and object")
    return {"id": follow_id, "type": "Follow", "actor": follower, "object": followee}


def build_undo(
    *, activity_id: str, actor: str, activity: Mapping[str, Any], to: Iterable[str] = ()
) -> dict[str, Any]:
    """`Undo` embedding the original activity, so the receiver can match it by id."""
    if id_of(activity.get("actor")) != actor:
        raise ValueError("only the original actor can undo an activity")
    original = _without_context(activity)
    audience = list(to) or ids_of(original.get("to")) or ids_of(original.get("object"))
    return _activity("Undo", activity_id, actor, original, to=audience,
                     cc=ids_of(original.get("cc")) or None)  # fmt: skip


def build_delete(
    *, activity_id: str, actor: str, object_id: str, to: Iterable[str], cc: Iterable[str] = ()
) -> dict[str, Any]:
    """`Delete{object: {id, type: Tombstone}}`, for everyone who received the post."""
    return _activity("Delete", activity_id, actor, {"id": object_id, "type": "Tombstone"},
                     **_audience(to, cc))  # fmt: skip


def build_like(
    *, activity_id: str, actor: str, object_id: str, object_author: str | None = None
) -> dict[str, Any]:
    """`Like{actor, object}` to the post's author: Mastodon takes Likes of its own posts only."""
    return _activity("Like", activity_id, actor, object_id,
                     to=[object_author] if object_author else None)  # fmt: skip


def build_announce(
    *,
    activity_id: str,
    actor: str,
    object_id: str,
    to: Iterable[str],
    cc: Iterable[str] = (),
    published: datetime | None = None,
) -> dict[str, Any]:
    """`Announce` (a boost) of `object_id`."""
    return _activity("Announce", activity_id, actor, object_id, **_audience(to, cc),
                     published=format_datetime(published) if published else None)  # fmt: skip


def build_create(*, activity_id: str, actor: str, obj: Mapping[str, Any]) -> dict[str, Any]:
    """`Create{obj}`, mirroring the object's to/cc/published on the activity."""
    if id_of(obj.get("attributedTo")) != actor:
        raise ValueError("the object must be attributed to the creating actor")
    context = obj.get("@context", AS_CONTEXT)
    document = _activity("Create", activity_id, actor, _without_context(obj),
                         **_audience(ids_of(obj.get("to")), ids_of(obj.get("cc"))),
                         published=obj.get("published"))  # fmt: skip
    document["@context"] = context
    return document


def build_update(
    *, activity_id: str, actor: str, obj: Mapping[str, Any], to: Iterable[str] = (),
    cc: Iterable[str] = (),
) -> dict[str, Any]:
    """`Update{obj}`; a Note must carry `updated` or Mastodon drops the edit."""
    view = APObject(obj)
    if not view.is_type(*ACTOR_TYPES) and not view.updated:
        raise ValueError("an updated object must carry `updated`")
    context = obj.get("@context", AS_CONTEXT)
    audience = _audience(list(to) or view.to, list(cc) or view.cc)
    document = _activity("Update", activity_id, actor, _without_context(obj), **audience)
    document["@context"] = context
    return document
