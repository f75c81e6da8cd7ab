"""A local account's public profile: display name, bio, locked; and the actor Update that
tells its followers (Mastodon refreshes a remote profile only when told, or days later)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from activitypub.objects import AS_PUBLIC, build_update
from instance.content.render import actor_document
from instance.errors import ProfileError
from instance.outbound.fanout import enqueue
from instance.runtime import Runtime
from instance.storage.ids import new_public_id
from instance.storage.models import Account

MAX_DISPLAY_NAME = 100
MAX_BIO = 2000
MAX_FIELDS = 4  # profile fields (name and value pairs), as many as Mastodon allows
MAX_FIELD_CHARS = 255  # for a field's name and for its value


def apply_profile(
    account: Account,
    *,
    display_name: str | None = None,
    bio: str | None = None,
    locked: bool | None = None,
    discoverable: bool | None = None,
    fields: list[tuple[str, str]] | None = None,
) -> None:
    """Change what is given (None leaves a field as it is; "" resets the display name;
    `fields` replaces all profile fields, pairs with an empty name and value left out)."""
    if account.kind == "Application":
        raise ProfileError("the instance actor cannot be changed")
    if display_name is not None:
        name = display_name.strip()
        if len(name) > MAX_DISPLAY_NAME:
            raise ProfileError(f"display name too long (at most {MAX_DISPLAY_NAME} characters)")
        account.display_name = name or account.username
    if bio is not None:
        if len(bio) > MAX_BIO:
            raise ProfileError(f"bio too long (at most {MAX_BIO} characters)")
        account.summary = bio
    if locked is not None:
        account.manually_approves_followers = locked
    if discoverable is not None:
        account.discoverable = discoverable
    if fields is not None:
        account.fields = profile_fields(fields)


def profile_fields(pairs: list[tuple[str, str]]) -> list[dict[str, str]]:
    """Profile fields as stored: stripped, empty pairs dropped, at most MAX_FIELDS of at most
    MAX_FIELD_CHARS each (ProfileError otherwise)."""
    kept = [(n.strip(), v.strip()) for n, v in pairs if n.strip() or v.strip()]
    if len(kept) > MAX_FIELDS:
        raise ProfileError(f"at most {MAX_FIELDS} profile fields")
    for name, value in kept:
        if not name:
            raise ProfileError("a profile field needs a name")
        if len(name) > MAX_FIELD_CHARS or len(value) > MAX_FIELD_CHARS:
            raise ProfileError(f"profile field too long (at most {MAX_FIELD_CHARS} characters)")
    return [{"name": name, "value": value} for name, value in kept]


def actor_of(rt: Runtime, account: Account) -> dict[str, Any]:
    """The actor document the account serves now."""
    return actor_document(account, rt.urls, rt.settings.host, rt.settings.generator.model)


async def federate_actor(session: AsyncSession, rt: Runtime, account: Account) -> None:
    """Send `Update{the full actor}` to the followers; nothing while `account` is suspended
    (its followers were sent the minimal suspended actor, which a full one would undo; the
    actor route serves the minimal one, with the current key: instance/content/
    suspensions.py)."""
    if account.suspended_at is not None:
        return
    activity = build_update(
        activity_id=rt.urls.activity(account.username, new_public_id()),
        actor=account.uri,
        obj=actor_of(rt, account),
        to=[AS_PUBLIC],
        cc=[account.followers_uri or ""],
    )
    await enqueue(session, rt, account, activity, to_followers=True, object_uri=account.uri)
