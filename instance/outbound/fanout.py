"""Outbound activities -> one durable delivery row per target inbox.

`enqueue(...)` is the only way anything leaves this instance: the activity is serialised once
(every delivery signs those exact bytes, so every receiver verifies the same digest) and a
Delivery row is written per inbox in the same transaction as the change that caused it, so a
crash after commit loses nothing and a crash before commit sends nothing. The delivery worker
(instance/outbound/delivery.py) does the sending.

Which inboxes (`activitypub.addressing.delivery_inboxes`, the one de-duplication): followers
through their server's shared inbox when it has one; the accounts named in `to` (mentioned,
replied to, the object of a Follow or Like) through their personal inbox, unless their
server's shared inbox already gets this activity: a shared inbox hands an activity to every
local account it addresses, so a mention is never sent twice to one server. Our own inboxes
are never targets.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from sqlalchemy import case, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from activitypub.addressing import Recipient, delivery_inboxes
from activitypub.urls import authority_of
from instance.moderation import domains
from instance.runtime import Runtime
from instance.storage.models import Account, Delivery, Follow, OutboundActivity


def serialise(activity: dict[str, Any]) -> str:
    return json.dumps(activity, ensure_ascii=False, separators=(",", ":"))


def recipient(account: Account) -> Recipient | None:
    """Where a remote account receives activities; None for ours and for inbox-less rows."""
    if account.local or not account.inbox_uri:
        return None
    return Recipient(account.uri, account.inbox_uri, account.shared_inbox_uri)


async def follower_inboxes(session: AsyncSession, account: Account) -> list[Recipient]:
    """Where the accepted remote followers of `account` that still exist are reached: each
    follower's shared inbox, else its own, one entry per inbox, in follow order.

    The database does the de-duplication (GROUP BY), so a fan-out to 100,000 followers on
    10,000 servers reads 10,000 rows, not 100,000. An entry is marked shared when some
    follower is reached through it as a shared inbox, which is what `delivery_inboxes`
    needs to know of a follower."""
    shared = func.nullif(Account.shared_inbox_uri, "")
    target = func.coalesce(shared, func.nullif(Account.inbox_uri, ""))
    rows = await session.execute(
        select(target, func.max(case((shared.is_not(None), 1), else_=0)))
        .join(Follow, Follow.follower_id == Account.id)
        .where(
            Follow.followee_id == account.id,
            Follow.accepted.is_(True),
            Account.local.is_(False),
            Account.deleted_at.is_(None),
            target.is_not(None),
        )
        .group_by(target)
        .order_by(func.min(Follow.id))
    )
    return [
        Recipient("", "", inbox) if is_shared else Recipient("", inbox, None)
        for inbox, is_shared in rows.all()
    ]


async def enqueue(
    session: AsyncSession,
    rt: Runtime,
    account: Account,
    activity: dict[str, Any],
    *,
    to: Iterable[Account] = (),
    to_followers: bool = False,
    object_uri: str | None = None,
    inboxes: Iterable[str] = (),
) -> OutboundActivity:
    """Store `activity` (sent as `account`) and one queued Delivery per target inbox, due
    now. `to`: accounts that get it in person; `to_followers`: the account's followers;
    `inboxes`: inboxes named outright (a Flag goes to the reported server's shared inbox)."""
    personal = [r for r in map(recipient, to) if r is not None]
    crowd = await follower_inboxes(session, account) if to_followers else []
    row = OutboundActivity(
        uri=activity["id"],
        account_id=account.id,
        kind=str(activity.get("type", "")),
        object_uri=object_uri,
        body=serialise(activity),
        created_at=rt.now(),
    )
    session.add(row)
    await session.flush()
    now = rt.now()
    suspended = await domains.suspended_domains(session)  # never delivered to
    targets = []
    for inbox in dict.fromkeys([*delivery_inboxes(crowd, personal), *inboxes]):
        host = authority_of(inbox)
        if rt.urls.is_local(inbox) or domains.under(host, suspended):
            continue
        targets.append({"activity_id": row.id, "inbox_uri": inbox, "host": host,
                        "status": "queued", "attempts": 0, "run_at": now,
                        "created_at": now})  # fmt: skip
    if targets:  # one multi-row INSERT (executemany), not an ORM object per inbox
        await session.execute(insert(Delivery), targets)
    return row
