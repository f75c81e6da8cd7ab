"""Outbound activities -> one durable delivery row per target inbox (shared inboxes deduplicated).

`enqueue(...)` is the only way anything leaves this instance: the activity is serialised once
(every delivery signs those exact bytes, INTEROP 14) and a Delivery row is written per inbox in
the same transaction as the change that caused it, so a crash after commit loses nothing and a
crash before commit sends nothing. Delivery workers (instance/delivery.py) do the sending.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from activitypub.urls import host_of
from instance.storage.models import Account, Delivery, Follow, OutboundActivity, utcnow
from instance.urls import LocalUrls


def serialise(activity: dict[str, Any]) -> str:
    return json.dumps(activity, ensure_ascii=False, separators=(",", ":"))


async def follower_inboxes(session: AsyncSession, account: Account) -> list[str]:
    """Inboxes of the accepted remote followers, a shared inbox standing for all on its host."""
    rows = await session.execute(
        select(Account.shared_inbox_uri, Account.inbox_uri)
        .join(Follow, Follow.follower_id == Account.id)
        .where(
            Follow.followee_id == account.id,
            Follow.accepted.is_(True),
            Account.local.is_(False),
            Account.deleted_at.is_(None),
        )
    )
    return [shared or inbox for shared, inbox in rows if shared or inbox]


async def enqueue(
    session: AsyncSession,
    urls: LocalUrls,
    account: Account,
    activity: dict[str, Any],
    *,
    inboxes: Iterable[str] = (),
    to_followers: bool = False,
    object_uri: str | None = None,
    now: datetime | None = None,
) -> OutboundActivity:
    """Store `activity` and one queued Delivery per distinct remote inbox, due at `now`
    (default: the wall clock; callers holding a Runtime pass `rt.now()`)."""
    targets = list(inboxes)
    if to_followers:
        targets += await follower_inboxes(session, account)
    row = OutboundActivity(
        uri=activity["id"],
        account_id=account.id,
        kind=str(activity.get("type", "")),
        object_uri=object_uri,
        body=serialise(activity),
    )
    session.add(row)
    await session.flush()
    seen: set[str] = set()
    for inbox in targets:
        if not inbox or inbox in seen or urls.is_local(inbox):
            continue
        seen.add(inbox)
        session.add(
            Delivery(
                activity_id=row.id, inbox_uri=inbox, host=host_of(inbox), run_at=now or utcnow()
            )
        )
    await session.flush()
    return row
