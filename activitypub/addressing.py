"""Audiences (to/cc) and inbox selection.

- `public` / `unlisted` / `followers_only` / `direct` build the to/cc of what we send
  (the full Public IRI, since not every server understands `as:Public`; mentioned actors are
  addressed too, or they get no notification).
- `is_public`, `visibility_of` read received audiences, accepting `as:Public` and `Public`.
- `delivery_inboxes` turns recipients into the inbox URLs to POST to: followers via their
  shared inbox, de-duplicated, and mentioned/replied actors via their personal inbox.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from activitypub.objects import AS_PUBLIC, Actor, APObject, ids_of

__all__ = [
    "AS_PUBLIC",
    "Audience",
    "Recipient",
    "Visibility",
    "delivery_inboxes",
    "direct",
    "followers_only",
    "is_public",
    "normalize_audience",
    "public",
    "unlisted",
    "visibility_of",
]

PUBLIC_ALIASES = frozenset({AS_PUBLIC, "as:Public", "Public"})
Visibility = Literal["public", "unlisted", "followers", "direct"]


@dataclass(frozen=True, slots=True)
class Audience:
    """The `to` and `cc` lists of an object (mirror them on its activity)."""

    to: tuple[str, ...]
    cc: tuple[str, ...]

    def as_dict(self) -> dict[str, list[str]]:
        return {"to": list(self.to), "cc": list(self.cc)}


@dataclass(frozen=True, slots=True)
class Recipient:
    """Where one remote actor receives activities."""

    actor_id: str
    inbox: str
    shared_inbox: str | None = None

    @classmethod
    def from_actor(cls, actor: Mapping[str, Any]) -> Recipient | None:
        """From a fetched actor document; None when it has no usable inbox."""
        view = Actor(actor)
        if not view.id or not view.inbox:
            return None
        return cls(view.id, view.inbox, view.shared_inbox)


def is_public(iri: str) -> bool:
    """True for the Public collection in any of its spellings."""
    return iri in PUBLIC_ALIASES


def normalize_audience(values: Any) -> list[str]:
    """Ids from a to/cc value, Public spelled as the full IRI, de-duplicated in order
    (in linear time: a received audience can list tens of thousands of ids)."""
    return list(dict.fromkeys(AS_PUBLIC if is_public(v) else v for v in ids_of(values)))


def _unique(*groups: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(item for group in groups for item in group))


def public(followers_url: str, mentions: Iterable[str] = ()) -> Audience:
    """Public: to Public, cc followers and mentioned actors."""
    return Audience((AS_PUBLIC,), _unique([followers_url], mentions))


def unlisted(followers_url: str, mentions: Iterable[str] = ()) -> Audience:
    """Unlisted: to followers, Public in cc."""
    return Audience((followers_url,), _unique([AS_PUBLIC], mentions))


def followers_only(followers_url: str, mentions: Iterable[str] = ()) -> Audience:
    """Followers only: to followers, cc mentioned actors; never Public."""
    return Audience((followers_url,), _unique(mentions))


def direct(mentions: Iterable[str]) -> Audience:
    """Direct: to the mentioned actors only."""
    return Audience(_unique(mentions), ())


def visibility_of(obj: Mapping[str, Any], followers_url: str | None = None) -> Visibility:
    """Classify a received object by its audience (Mastodon's reading)."""
    view = APObject(obj)
    to, cc = normalize_audience(view.to), normalize_audience(view.cc)
    if AS_PUBLIC in to:
        return "public"
    if AS_PUBLIC in cc:
        return "unlisted"
    if followers_url is not None and followers_url in to + cc:
        return "followers"
    if followers_url is None and any(i.endswith("/followers") for i in to + cc):
        return "followers"
    return "direct"


def delivery_inboxes(
    followers: Iterable[Recipient],
    personal: Iterable[Recipient] = (),
    *,
    exclude: Iterable[str] = (),
) -> list[str]:
    """Inbox URLs to POST one activity to, each once.

    `followers` are reached through their shared inbox when they have one; `personal`
    recipients (mentioned, replied-to, the object of a Follow/Like) through their own inbox,
    unless that server's shared inbox is already being used. `exclude` drops URLs (ours).
    """
    excluded = set(exclude)
    inboxes: dict[str, None] = {}  # ordered and de-duplicated in linear time
    shared_servers: set[str] = set()

    def add(url: str) -> None:
        if url and url not in excluded:
            inboxes[url] = None

    for recipient in followers:
        add(recipient.shared_inbox or recipient.inbox)
        if recipient.shared_inbox:
            shared_servers.add(recipient.shared_inbox)
    for recipient in personal:
        if recipient.shared_inbox not in shared_servers:
            add(recipient.inbox)
    return list(inboxes)
