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


def apply_profile(
    account: Account,
    *,
    display_name: str | None = None,
    bio: str | None = None,
    locked: bool | None = None,
) -> None:
    """Change what is given (None leaves a field as it is; "" resets the display name)."""
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
