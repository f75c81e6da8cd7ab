"""Deleting a local account for good, as Mastodon does it.

1. **Federate.** One `Delete{object: the actor}`, signed with the account's key, goes to
   every inbox we know (every remote account's server, through its shared inbox when it has
   one, de-duplicated), not only to the followers: any server may hold its posts. Never to
   a suspended domain (instance/moderation/domains.py): nothing is sent there, and a
   delivery queued for it would never end, so the key would never be dropped (rule 4).
2. **Purge.** Its posts (with their media files), likes, boosts, follows both ways,
   notifications, pictures, profile, password and persona are removed.
3. **Tombstone.** The account row stays with `deleted_at`: the actor, its posts and WebFinger
   answer 410 Gone and the name stays taken (a new account could otherwise inherit the
   old one's followers on servers that cached it).
4. **The key** stays until every Delete delivery has ended (receivers verify the signature
   and may fetch the key); `forget_spent_keys` drops it afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from activitypub.objects import AS_CONTEXT, AS_PUBLIC
from activitypub.urls import authority_of
from instance.content import renditions
from instance.errors import UserError
from instance.moderation import domains
from instance.outbound.domains import unavailable_hosts
from instance.outbound.fanout import serialise
from instance.runtime import Runtime
from instance.storage.ids import new_public_id
from instance.storage.models import (
    DELIVERY_ENDED,
    Account,
    Boost,
    Delivery,
    Follow,
    GenerationJob,
    Like,
    MediaAttachment,
    Notification,
    OutboundActivity,
    Post,
)
from instance.urls import INSTANCE_ACTOR_USERNAME


@dataclass(frozen=True)
class Deleted:
    account: str  # the actor URI
    activity_id: int  # the OutboundActivity of the Delete
    inboxes: int
    posts: int
    media_files: int


async def known_inboxes(session: AsyncSession) -> list[str]:
    """Every remote inbox we know, one per shared inbox (Mastodon's
    `Account.remote.inboxes`): a server's shared inbox, else each account's own."""
    rows = await session.scalars(
        select(func.coalesce(Account.shared_inbox_uri, Account.inbox_uri))
        .where(
            Account.local.is_(False),
            Account.deleted_at.is_(None),
            or_(Account.shared_inbox_uri.is_not(None), Account.inbox_uri.is_not(None)),
        )
        .distinct()
    )
    return sorted(str(r) for r in rows if r)


def delete_actor_activity(rt: Runtime, account: Account) -> dict[str, Any]:
    """Mastodon's shape: `Delete{object: actor}` to Public, its id the actor's `#delete`."""
    return {
        "@context": AS_CONTEXT,
        "id": f"{account.uri}#delete-{new_public_id()}",
        "type": "Delete",
        "actor": account.uri,
        "to": [AS_PUBLIC],
        "object": account.uri,
    }


async def _media_files(session: AsyncSession, rt: Runtime, account: Account) -> list[str]:
    names = set(
        await session.scalars(
            select(MediaAttachment.file_name).where(
                MediaAttachment.account_id == account.id, MediaAttachment.file_name.is_not(None)
            )
        )
    )
    prefix = rt.urls.media("")
    for url in (account.avatar_url, account.header_url):
        if url and url.startswith(prefix):
            names.add(url[len(prefix) :])
    names |= {r for n in names if n for r in renditions.names_of(n)}  # their smaller copies
    return sorted(n for n in names if n and "/" not in n)  # keys in the media store


async def _remove(rt: Runtime, keys: list[str]) -> None:
    for key in keys:
        await rt.media.delete(key)


async def delete_account(rt: Runtime, account: Account) -> Deleted:
    """Federate the Delete, purge, tombstone (see the module docstring)."""
    if account.username == INSTANCE_ACTOR_USERNAME or not account.local:
        raise UserError("only a local account (not the instance actor) can be deleted")
    async with rt.session() as s:
        row = await s.get(Account, account.id)
        if row is None or row.deleted_at is not None:
            raise UserError(f"the account {account.username!r} is already deleted")
        suspended = await domains.suspended_domains(s)
        inboxes = [
            i
            for i in await known_inboxes(s)
            if not rt.urls.is_local(i) and not domains.under(authority_of(i), suspended)
        ]
        activity = delete_actor_activity(rt, row)
        outbound = OutboundActivity(
            uri=activity["id"], account_id=row.id, kind="Delete", object_uri=row.uri,
            body=serialise(activity), created_at=rt.now(),
        )  # fmt: skip
        s.add(outbound)
        await s.flush()
        now = rt.now()
        for inbox in inboxes:
            s.add(Delivery(activity_id=outbound.id, inbox_uri=inbox, host=authority_of(inbox),
                           run_at=now, created_at=now))  # fmt: skip
        # anything else it still had queued will never be sent: the actor is gone
        others = select(OutboundActivity.id).where(
            OutboundActivity.account_id == row.id, OutboundActivity.id != outbound.id
        )
        await s.execute(
            update(Delivery)
            .where(Delivery.activity_id.in_(others), Delivery.status == "queued")
            .values(status="cancelled", last_error="the account was deleted")
            .execution_options(synchronize_session=False)
        )
        files = await _media_files(s, rt, row)
        posts = await s.scalar(select(func.count()).where(Post.account_id == row.id)) or 0
        await _purge(s, row)
        row.deleted_at = now
        row.display_name, row.summary = "", ""
        row.avatar_url = row.header_url = None
        row.password_hash = None
        row.persona, row.schedule_minutes, row.next_post_at = None, None, None
        deleted = Deleted(row.uri, outbound.id, len(inboxes), int(posts), len(files))
    await _remove(rt, files)
    return deleted


async def _purge(s: AsyncSession, row: Account) -> None:
    mine = select(Post.id).where(Post.account_id == row.id)
    # what other posts point at stays, pointing at nothing
    await s.execute(
        update(Post).where(Post.in_reply_to_id.in_(mine)).values(in_reply_to_id=None)
        .execution_options(synchronize_session=False)
    )  # fmt: skip
    await s.execute(
        update(Post).where(Post.quote_id.in_(mine)).values(quote_id=None)
        .execution_options(synchronize_session=False)
    )  # fmt: skip
    for stmt in (
        delete(Notification).where(
            or_(Notification.account_id == row.id, Notification.from_account_id == row.id)
        ),
        delete(Like).where(or_(Like.account_id == row.id, Like.post_id.in_(mine))),
        delete(Boost).where(or_(Boost.account_id == row.id, Boost.post_id.in_(mine))),
        delete(Follow).where(or_(Follow.follower_id == row.id, Follow.followee_id == row.id)),
        update(GenerationJob)
        .where(GenerationJob.account_id == row.id, GenerationJob.status.in_(("queued", "running")))
        .values(status="cancelled", last_error="the account was deleted"),
        delete(MediaAttachment).where(MediaAttachment.account_id == row.id),
        delete(Post).where(Post.account_id == row.id),
    ):
        await s.execute(stmt.execution_options(synchronize_session=False))


@dataclass(frozen=True)
class Progress:
    ended: int  # done, failed, gone (or cancelled)
    paused: int  # waiting for a paused or blocked server (instance/outbound/domains.py)
    total: int

    @property
    def settled(self) -> bool:
        """Nothing more will happen soon: every delivery ended or waits for a paused server."""
        return self.ended + self.paused >= self.total


async def delivery_progress(rt: Runtime, activity_id: int) -> Progress:
    """Where the Delete's deliveries stand."""
    ours = Delivery.activity_id == activity_id
    open_ = Delivery.status.not_in(DELIVERY_ENDED)
    async with rt.sessions() as s:
        total = await s.scalar(select(func.count()).where(ours))
        ended = await s.scalar(select(func.count()).where(ours, ~open_))
        paused = await s.scalar(
            select(func.count()).where(ours, open_, Delivery.host.in_(unavailable_hosts()))
        )
    return Progress(int(ended or 0), int(paused or 0), int(total or 0))


async def forget_spent_keys(rt: Runtime) -> int:
    """Drop the private key of every deleted account whose Delete deliveries have all
    ended; how many keys were dropped. The public key stays for the 410 tombstone's sake."""
    async with rt.session() as s:
        pending = (
            select(OutboundActivity.account_id)
            .join(Delivery, Delivery.activity_id == OutboundActivity.id)
            .where(Delivery.status.not_in(DELIVERY_ENDED))
        )
        result = await s.execute(
            update(Account)
            .where(
                Account.local.is_(True),
                Account.deleted_at.is_not(None),
                Account.private_key_pem.is_not(None),
                Account.id.not_in(pending),
            )
            .values(private_key_pem=None)
            .execution_options(synchronize_session=False)
        )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
