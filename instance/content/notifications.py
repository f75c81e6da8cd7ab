"""Notifications for local accounts: follow, like, boost, mention, reply, remix.

One row per (kind, recipient, sender, post): `dedupe_key` is unique, so the same activity
delivered many times, or a like undone and redone, notifies once. The list leaves out
notifications from a suspended account or an account of a suspended domain. Dismissing a
notification (the client API) deletes its row.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, get_args

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement

from instance.moderation.domains import author_domain_hidden
from instance.storage.idempotent import insert_rows
from instance.storage.models import Account, Notification, NotificationKind, Post
from instance.urls import LocalUrls

KINDS = frozenset(get_args(NotificationKind))


async def notify(
    session: AsyncSession,
    *,
    recipient: Account,
    kind: NotificationKind,
    sender: Account,
    post: Post | None = None,
    now: datetime,
) -> None:
    """Notify a local account (remote recipients and self-notifications are ignored)."""
    if kind not in KINDS:
        raise ValueError(f"unknown notification kind {kind!r}")
    if not recipient.local or recipient.id == sender.id:
        return
    key = f"{kind}:{recipient.id}:{sender.id}:{post.id if post else ''}"
    values: dict[str, Any] = {
        "account_id": recipient.id,
        "kind": kind,
        "from_account_id": sender.id,
        "post_id": post.id if post else None,
        "dedupe_key": key,
        "created_at": now,
    }
    await insert_rows(session, Notification, [values])


def shown_to(account: Account) -> list[ColumnElement[bool]]:
    """WHERE clauses over `Notification`: `account`'s, leaving out those from a suspended
    account or an account of a suspended domain (moderation/domains.py); `list_for` and the
    client API (which pages by id) list these."""
    suspended = select(Account.id).where(Account.suspended_at.is_not(None))
    return [
        Notification.account_id == account.id,
        Notification.from_account_id.not_in(suspended),
        ~author_domain_hidden(Notification.from_account_id),
    ]


async def dismiss(session: AsyncSession, account: Account, notification_id: int) -> bool:
    """Delete one of `account`'s notifications; whether there was one."""
    result = await session.execute(
        delete(Notification).where(
            Notification.id == notification_id, Notification.account_id == account.id
        )
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def clear(session: AsyncSession, account: Account) -> int:
    """Delete all of `account`'s notifications; how many there were."""
    result = await session.execute(
        delete(Notification).where(Notification.account_id == account.id)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def list_for(
    session: AsyncSession,
    account: Account,
    urls: LocalUrls,
    *,
    limit: int = 40,
    before_id: int | None = None,
) -> list[dict[str, Any]]:
    sender = aliased(Account)
    query = (
        select(Notification, sender, Post)
        .join(sender, Notification.from_account_id == sender.id)
        .outerjoin(Post, Notification.post_id == Post.id)
        .where(*shown_to(account))
        .order_by(Notification.id.desc())
        .limit(limit)
    )
    if before_id is not None:
        query = query.where(Notification.id < before_id)
    rows = await session.execute(query)
    return [
        {
            "id": n.id,
            "kind": n.kind,
            "from": urls.handle(s),
            "from_uri": s.uri,
            "post": p.uri if p is not None else None,
            "created_at": n.created_at.isoformat(),
            "read": n.read_at is not None,
        }
        for n, s, p in rows
    ]
