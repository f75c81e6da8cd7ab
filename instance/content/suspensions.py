"""Suspending and unsuspending an account, and what each federates (the rule of what a
suspended account may still do: instance/moderation/suspension.py).

- **Local account, suspend**: `suspended_at` is set; the followers get Mastodon's `Update`
  of a minimal actor with `"suspended": true` (no name, bio, pictures or fields); actor
  Updates still queued from before are cancelled (they would undo that news). Its other
  queued deliveries are held by the delivery worker, not lost.
- **Local account, unsuspend**: `suspended_at` cleared; the followers get the full actor in a
  normal `Update`; the held deliveries go out again.
- **Remote account**: only `suspended_at` changes; the inbox refuses it and timelines hide it.

Follows are kept both ways. Both functions return True when something changed.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from activitypub.objects import AS_PUBLIC, build_update
from instance.content.profiles import actor_of, federate_actor
from instance.errors import UserError
from instance.moderation import epoch
from instance.outbound.fanout import enqueue
from instance.runtime import Runtime
from instance.storage.ids import new_public_id
from instance.storage.models import Account, Delivery, OutboundActivity
from instance.urls import INSTANCE_ACTOR_USERNAME

SUSPENDED_EXTENSION = {"suspended": "toot:suspended"}


def suspended_actor(rt: Runtime, account: Account) -> dict[str, Any]:
    """The actor document of a suspended local account, as Mastodon serves it: the ids,
    inboxes and key (so its Deletes and Undos still verify), the username as its name,
    nothing a person wrote, not discoverable, and `suspended: true`."""
    doc = actor_of(rt, account)
    for key in ("icon", "image"):
        doc.pop(key, None)
    doc.update(name=account.username, summary="", attachment=[], tag=[], suspended=True)
    for key in ("discoverable", "indexable", "manuallyApprovesFollowers"):
        if key in doc:
            doc[key] = False  # as Mastodon's ActorSerializer has them for a suspended account
    context = list(doc.get("@context") or [])
    context.append(SUSPENDED_EXTENSION)
    doc["@context"] = context
    return doc


async def _fresh(session: AsyncSession, account: Account) -> Account:
    row = await session.get(Account, account.id)
    if row is None:
        raise UserError(f"the account {account.uri} is gone")
    return row


def _refuse_instance_actor(account: Account) -> None:
    if account.local and account.username == INSTANCE_ACTOR_USERNAME:
        raise UserError("the instance actor cannot be suspended")
    if account.deleted_at is not None:
        raise UserError(f"{account.uri} was deleted")


async def _cancel_queued_actor_updates(session: AsyncSession, account: Account) -> None:
    stale = select(OutboundActivity.id).where(
        OutboundActivity.account_id == account.id,
        OutboundActivity.kind == "Update",
        OutboundActivity.object_uri == account.uri,
    )
    await session.execute(
        update(Delivery)
        .where(Delivery.activity_id.in_(stale), Delivery.status == "queued")
        .values(status="cancelled", last_error="superseded: the account was suspended")
        .execution_options(synchronize_session=False)
    )


async def suspend(rt: Runtime, account: Account) -> bool:
    """Suspend `account` (local or remote); False when it already was."""
    _refuse_instance_actor(account)
    async with rt.session() as session:
        row = await _fresh(session, account)
        if row.suspended_at is not None:
            return False
        row.suspended_at = rt.now()
        account.suspended_at = row.suspended_at
        if row.local:
            await _cancel_queued_actor_updates(session, row)
            activity = build_update(
                activity_id=rt.urls.activity(row.username, new_public_id()),
                actor=row.uri,
                obj=suspended_actor(rt, row),
                to=[AS_PUBLIC],
                cc=[row.followers_uri or ""],
            )
            await enqueue(session, rt, row, activity, to_followers=True, object_uri=row.uri)
    epoch.bump(rt)  # this process's inbox gate reads suspensions again at once
    return True


async def unsuspend(rt: Runtime, account: Account) -> bool:
    """Lift the suspension of `account`; False when it was not suspended."""
    _refuse_instance_actor(account)
    async with rt.session() as session:
        row = await _fresh(session, account)
        if row.suspended_at is None:
            return False
        row.suspended_at = None
        account.suspended_at = None
        if row.local:
            await federate_actor(session, rt, row)
    epoch.bump(rt)
    return True
