"""What a suspended or deleted account may still do: the one rule every wing reads.

An admin suspends an account with `dreamloom account suspend` (`Account.suspended_at`) and
deletes one with `dreamloom account delete` (`Account.deleted_at`, a tombstone that keeps the
name taken). As Mastodon does it:

- **Pages.** A suspended local account's actor, profile, posts, collections and media answer
  403; a deleted one's 410 Gone. WebFinger still answers for a suspended account (remote
  servers must still find the actor, to learn it is suspended), 410 for a deleted one.
- **Logging in.** A suspended account cannot log in and its existing web sessions stop
  working; a deleted one has no sessions at all.
- **Deliveries.** A suspended account's outgoing activities are held, not lost: they stay
  queued and the delivery worker skips them until the account is unsuspended, except the
  kinds in FEDERATES_WHILE_SUSPENDED (Delete and Undo take things back, which a
  suspension must never prevent) and the actor Update that announces the suspension.
- **Follows** are kept both ways, so unsuspending restores everything.
- **A suspended remote account**: its activities get 403 at our inbox (nothing stored) and its
  posts are hidden on every timeline and page.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from instance.runtime import Runtime
from instance.storage.models import Account, MediaAttachment, OutboundActivity, Post

FEDERATES_WHILE_SUSPENDED = frozenset({"Delete", "Undo"})
"""Kinds delivered even while their sender is suspended: they only take things back."""

SUSPENDED_STATUS = 403
GONE_STATUS = 410


def is_suspended(account: Account) -> bool:
    return account.suspended_at is not None and account.deleted_at is None


def is_gone(account: Account) -> bool:
    return account.deleted_at is not None


def page_status(account: Account) -> int | None:
    """What a page of `account` (actor, profile, post, collection, media) answers instead of
    its content: 410 once deleted, 403 while suspended, None when it is served."""
    if is_gone(account):
        return GONE_STATUS
    if is_suspended(account):
        return SUSPENDED_STATUS
    return None


def may_log_in(account: Account) -> bool:
    """Web login and existing sessions: refused while suspended or once deleted."""
    return account.suspended_at is None and account.deleted_at is None


def held_activities() -> Any:
    """A subquery of the outbound activities whose deliveries wait: those of suspended
    accounts, except the kinds that take things back and the sender's own actor Update (the
    one that tells followers it is suspended)."""
    return (
        select(OutboundActivity.id)
        .join(Account, Account.id == OutboundActivity.account_id)
        .where(
            Account.suspended_at.is_not(None),
            OutboundActivity.kind.not_in(FEDERATES_WHILE_SUSPENDED),
            or_(
                OutboundActivity.kind != "Update",
                OutboundActivity.object_uri.is_(None),
                OutboundActivity.object_uri != Account.uri,
            ),
        )
    )


def shown_author() -> Any:
    """A WHERE clause for post queries: the author is not suspended (nor deleted)."""
    author = aliased(Account)  # its own FROM, even in a query that joins Account already
    return ~exists().where(
        author.id == Post.account_id,
        or_(author.suspended_at.is_not(None), author.deleted_at.is_not(None)),
    )


async def local_owner(session: AsyncSession, username: str) -> Account | None:
    """The local account named `username`, its tombstone included (a deleted account's name
    stays taken and its pages answer 410; instance.accounts.find_local skips tombstones)."""
    found: Account | None = await session.scalar(
        select(Account)
        .where(Account.local.is_(True), Account.username_key == username.casefold())
        .order_by(Account.deleted_at.is_not(None))
        .limit(1)
    )
    return found


class HiddenMedia:
    """The media file names of suspended local accounts (`rt.service(HiddenMedia)`), which
    the media route answers with 403. Read again every REFRESH_S seconds, so that a
    suspension made by the CLI while the server runs takes effect within that time without
    a query per file served."""

    REFRESH_S = 5.0

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.names: frozenset[str] = frozenset()
        self.read_at = -1.0

    async def hidden(self, name: str) -> bool:
        now = time.monotonic()
        if self.read_at < 0 or now - self.read_at > self.REFRESH_S:
            async with self.rt.sessions() as session:
                self.names = await _suspended_media(session, self.rt.urls.media(""))
            self.read_at = now
        return name in self.names


async def _suspended_media(session: AsyncSession, prefix: str) -> frozenset[str]:
    suspended = select(Account.id).where(Account.local.is_(True), Account.suspended_at.is_not(None))
    names = set(
        await session.scalars(
            select(MediaAttachment.file_name).where(
                MediaAttachment.account_id.in_(suspended), MediaAttachment.file_name.is_not(None)
            )
        )
    )
    for avatar, header in await session.execute(
        select(Account.avatar_url, Account.header_url).where(Account.id.in_(suspended))
    ):
        names.update(u[len(prefix) :] for u in (avatar, header) if u and u.startswith(prefix))
    return frozenset(n for n in names if n)
