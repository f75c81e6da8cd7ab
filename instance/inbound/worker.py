"""The inbox worker: a stored, verified activity -> one handler -> storage.

Each claimed `InboxItem` (instance/jobs.py) is handled in two steps, so no transaction is
ever held open across a network request (on SQLite that would stall every other writer):

1. `dereference`: resolve the actor's account (fetched through the safe fetcher when we have
   never seen it) and, when the activity only names its object, fetch that object from its
   origin (a forwarded `Create`, an `Announce` of a post we do not have). SECURITY 13: local
   URLs are never fetched.
2. One short transaction: the item is marked done first (on SQLite the write lock is taken
   before anything is read), then `dispatch` runs the one handler for (activity type,
   object type), DESIGN style 8. Handlers live in instance/handlers/ and only touch the DB
   and the outbound queue (instance/fanout.py).

A network failure while dereferencing is retried on activitypub.delivery's schedule (a few
attempts); anything else fails the item with its error, for the admin to see.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from activitypub.delivery import next_attempt_delay
from activitypub.errors import FetchError, FetchTimeoutError, RemoteHTTPError
from activitypub.objects import ACTOR_TYPES, Activity, Actor, APObject
from instance import jobs
from instance.inbound.handlers import actors, follows, interactions, moderation, notes, quoting
from instance.inbound.keyring import keyring
from instance.inbound.remote import ActorUnavailable, find_actor, resolve_actor
from instance.runtime import Runtime
from instance.storage.models import Account, InboxItem, Post

log = logging.getLogger("dreamloom.inbox")

BATCH = 32
MAX_ATTEMPTS = 5


class Skip(Exception):
    """Nothing to do for this activity (an unknown actor's Delete, a vanished object)."""


@dataclass
class Inbound:
    """What a handler gets: the activity, its actor's account, its object, a session."""

    rt: Runtime
    session: AsyncSession
    activity: Activity
    actor: Account
    obj: APObject | None  # the embedded object, or the one fetched from its origin
    now: datetime

    @property
    def type(self) -> str | None:
        return self.activity.type

    @property
    def object_type(self) -> str | None:
        return self.obj.type if self.obj is not None else None

    @property
    def object_id(self) -> str | None:
        return self.activity.object_id

    @property
    def raw(self) -> dict[str, Any]:
        return dict(self.activity.raw)


async def dispatch(ctx: Inbound) -> None:
    match (ctx.type, ctx.object_type):
        case ("Follow", _):
            await follows.on_follow(ctx)
        case ("Accept", _) if quoting.answers_quote_request(ctx):
            await quoting.on_accept(ctx)
        case ("Reject", _) if quoting.answers_quote_request(ctx):
            await quoting.on_reject(ctx)
        case ("Accept", _):
            await follows.on_accept(ctx)
        case ("Reject", _):
            await follows.on_reject(ctx)
        case ("Undo", "Follow"):
            await follows.on_undo(ctx)
        case ("Undo", "Like" | "EmojiReact"):
            await interactions.on_undo_like(ctx)
        case ("Undo", "Announce"):
            await interactions.on_undo_announce(ctx)
        case ("Undo", None):
            await interactions.on_undo_reference(ctx)
        case ("Like" | "EmojiReact", _):
            await interactions.on_like(ctx)
        case ("Announce", _):
            await interactions.on_announce(ctx)
        case ("Create", kind) if kind in notes.POST_TYPES:
            await notes.on_create(ctx)
        case ("Update", kind) if kind in notes.POST_TYPES:
            await notes.on_update(ctx)
        case ("Update", kind) if kind in ACTOR_TYPES:
            await actors.on_update(ctx)
        case ("Delete", _) if ctx.object_id == ctx.actor.uri:
            await actors.on_delete(ctx)
        case ("Delete", _):
            await notes.on_delete(ctx)
        case ("Block", _):
            await actors.on_block(ctx)
        case ("Flag", _):
            await moderation.on_flag(ctx)
        case ("QuoteRequest", _):
            await quoting.on_quote_request(ctx)
        case _:  # 202 and dropped, with the reason on the inbox row
            raise Skip(f"{ctx.type} of {ctx.object_type or 'an object without a type'} "
                       "is not handled")  # fmt: skip


async def dereference(rt: Runtime, activity: Activity) -> tuple[Account, APObject | None]:
    """The actor's account and the activity's object, fetched before any transaction."""
    actor_uri = activity.actor or ""
    if activity.type == "Delete":  # never fetch a deleted actor (its key would be a 410)
        async with rt.sessions() as session:
            known = await find_actor(session, actor_uri)
        if known is None or known.local:
            raise Skip(f"Delete from unknown actor {actor_uri}")
        return known, activity.object
    actor = await resolve_actor(rt, actor_uri)
    if actor.local:
        raise Skip("a local actor's activity arrived in the inbox")
    embedded, object_id = activity.object, activity.object_id
    if activity.type == "Update" and embedded is not None and _announces_new_key(actor, embedded):
        # INTEROP 13 / SECURITY 8: a signed Update announces a rotation; the new key is taken
        # only from the actor's own origin, never from the Update's body
        actor = await resolve_actor(rt, actor.uri, refresh=True)
        keyring(rt).forget_owner(actor.uri)
    if activity.type == "Create" and embedded is None and object_id:
        return actor, await fetch_object(rt, object_id)
    if activity.type == "Announce" and object_id and not await _known_post(rt, object_id):
        if rt.urls.is_local(object_id):
            raise Skip(f"Announce of {object_id}: not one of our posts")  # SECURITY 13
        fetched = await fetch_object(rt, object_id)
        if fetched.attributed_to:
            await resolve_actor(rt, fetched.attributed_to)
        return actor, fetched
    return actor, embedded


def _announces_new_key(actor: Account, embedded: APObject) -> bool:
    if embedded.id != actor.uri or not embedded.is_type(*ACTOR_TYPES):
        return False
    keys = Actor(dict(embedded.raw)).public_keys
    return any(k.owner == actor.uri and k.public_pem.strip() != (actor.public_key_pem or "").strip()
               for k in keys)  # fmt: skip


async def fetch_object(rt: Runtime, uri: str) -> APObject:
    """An object from its origin (the safe fetcher checks id and attribution, SECURITY 9/12)."""
    return APObject(await rt.fetch_json(uri))


async def _known_post(rt: Runtime, uri: str) -> bool:
    async with rt.sessions() as session:
        return await session.scalar(select(Post.id).where(Post.uri == uri)) is not None


class InboxWorker:
    """Claims inbox rows and handles them one at a time, in order of arrival."""

    name = "inbox"

    def __init__(self, rt: Runtime, batch: int = BATCH) -> None:
        self.rt = rt
        self.batch = batch

    async def run_once(self) -> int:
        async with self.rt.session() as session:
            items = await jobs.claim(session, InboxItem, now=self.rt.now(), limit=self.batch)
        for item in items:
            await self.handle(item)
        return len(items)

    async def handle(self, item: InboxItem) -> None:
        item_id, attempts, now = item.id, item.attempts, self.rt.now()
        try:
            activity = Activity(json.loads(item.body))
            actor, obj = await dereference(self.rt, activity)
            async with self.rt.session() as session:
                session.add(item)
                jobs.finish(item, now)
                await session.flush()  # write first: SQLite's write lock before any read
                await dispatch(Inbound(self.rt, session, activity, actor, obj, now))
        except Skip as skip:
            why = str(skip)
            await self._settle(item_id, lambda row: _skipped(row, now, why))
        except (ActorUnavailable, FetchError, OperationalError) as exc:
            error = f"{type(exc).__name__}: {exc}"
            delay = retry_delay(attempts, exc)
            if delay is None:
                await self._settle(item_id, lambda row: jobs.fail(row, now, error))
            else:
                await self._settle(item_id, lambda row: jobs.retry(row, now, delay, error))
        except Exception as exc:
            log.exception("inbox item %s failed", item_id)
            error = f"{type(exc).__name__}: {exc}"
            await self._settle(item_id, lambda row: jobs.fail(row, now, error))

    async def _settle(self, item_id: int, change: Callable[[InboxItem], None]) -> None:
        async with self.rt.session() as session:
            change(await session.get_one(InboxItem, item_id))


def _skipped(row: InboxItem, now: datetime, why: str) -> None:
    jobs.finish(row, now)
    row.last_error = f"skipped: {why}"


def retry_delay(attempts: int, exc: Exception) -> timedelta | None:
    """Network trouble is worth a few retries; a refusal or a bad document is not."""
    cause = exc.__cause__ if isinstance(exc, ActorUnavailable) else exc
    transient = (
        isinstance(cause, FetchTimeoutError | OperationalError)
        or type(cause) is FetchError
        or (isinstance(cause, RemoteHTTPError) and (cause.status >= 500 or cause.status == 429))
    )
    if not transient or attempts >= MAX_ATTEMPTS:
        return None
    return next_attempt_delay(attempts)
