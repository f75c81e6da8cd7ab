"""The inbox worker: a stored, verified activity -> one handler -> storage.

Each claimed `InboxItem` (instance/jobs.py, the inbox queue of instance/queues.py) is handled
in two steps, so no transaction is ever held open across a network request (on SQLite that
would stall every other writer):

1. `dereference`: resolve the actor's account (fetched through the safe fetcher when we have
   never seen it) and, when the activity only names its object, fetch that object from its
   origin (a forwarded `Create`, an `Announce` of a post we do not have). Our own URLs are
   never fetched: what is ours comes from the database, whatever a remote server claims.
2. A short transaction: the items are marked done first (on SQLite the write lock is taken
   before anything is read), then `dispatch` (dispatch.py) runs the one handler for
   (activity type, object type). Handlers (handlers/) only touch the database and the
   outbound queue.

Consecutive items of one lane that are ready share a transaction, closed once it has run
GROUP_HOLD_S, or at once when the web has 202s waiting for SQLite's one write lock
(instance/inbound/write_turns.py): a session, the marking done and a commit per item cost
as much as a plain Note's own statements. When one item's handler fails inside a group,
the group is rolled back, the items before it are applied again without it, and it is
settled alone (skipped, retried or failed, with its error), as if each had had its own
transaction. An activity that may
change its actor's row (CHANGES_ACTOR) closes its group, so the next item is dereferenced
with that change committed.

A step takes a batch of due items, round-robin across sending servers (claim.py: one
server's flood never fills every batch), and handles up to `[federation] inbox_concurrency`
at once: one lane per sending actor, so an actor's activities are handled in the order they
arrived (a Create before its Update, a Follow before its Undo), and at most half the slots
for the actors of one server, so neither one actor nor one server whose objects are slow to
fetch holds up the others.

Claimed items are leased for the inbox queue's short lease (instance/queues.py), renewed
every RENEW_EVERY_S while the step handles them, so after a crash another worker takes them
again within the lease, not minutes later. Network trouble while dereferencing (no answer,
429, 5xx) is retried on the inbox queue's schedule; anything else fails the item with its
error, for the admin to see.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from activitypub.errors import FetchError, FetchTimeoutError, RemoteHTTPError
from activitypub.objects import ACTOR_TYPES, Activity, Actor, APObject, id_of
from instance import jobs
from instance.errors import ActorUnavailable, Skip
from instance.generation.recipes import warm_prompt_check
from instance.inbound.claim import claim_fair, sender_host
from instance.inbound.context import Inbound
from instance.inbound.dispatch import dispatch
from instance.inbound.keyring import KeyRing
from instance.inbound.remote import find_actor, resolve_actor
from instance.inbound.write_turns import WriteTurns
from instance.moderation.gate import InboxGate
from instance.queues import INBOX
from instance.runtime import Runtime
from instance.storage.models import Account, InboxItem, Post
from instance.urls import site_of

log = logging.getLogger("dreamloom.inbox")

BATCH = 32
GROUP_HOLD_S = 0.010  # a group's transaction takes no more items after this long
RENEW_EVERY_S = INBOX.fixed_lease.total_seconds() / 3


CHANGES_ACTOR = frozenset({"Update", "Delete", "Move"})
"""Activity types that may change their actor's row: its account is read again after one."""


async def dereference(
    rt: Runtime, activity: Activity, known: dict[str, Account] | None = None
) -> tuple[Account, APObject | None]:
    """The actor's account and the activity's object, fetched before any transaction.
    `known`: actors already read in this worker step (filled here), so a flood from one
    actor costs one read of its row per step, not one per activity."""
    actor_uri = activity.actor or ""
    if activity.type == "Delete":  # never fetch a deleted actor (its key would be a 410)
        async with rt.sessions() as session:
            deleting = await find_actor(session, actor_uri)
        if deleting is None or deleting.local:
            raise Skip(f"Delete from unknown actor {actor_uri}")
        return deleting, activity.object
    actor = known.get(actor_uri) if known is not None else None
    if actor is None:
        actor = await resolve_actor(rt, actor_uri)
        if known is not None and activity.type not in CHANGES_ACTOR:
            known[actor_uri] = actor
    if actor.local:
        raise Skip("a local actor's activity arrived in the inbox")
    await _refuse_moderated(rt, actor)
    embedded, object_id = activity.object, activity.object_id
    if activity.type == "Update" and embedded is not None and _announces_new_key(actor, embedded):
        # a signed Update announcing a new key (a rotation): the key is taken only from the
        # actor document on its own server, never from the Update's body
        actor = await resolve_actor(rt, actor.uri, refresh=True)
        rt.service(KeyRing).forget_owner(actor.uri)
    if activity.type == "Create" and embedded is None and object_id:
        return actor, await fetch_object(rt, object_id)
    if activity.type == "Move":  # the object is the new account, as its own server has it
        target = id_of(activity.raw.get("target"))
        if not target or rt.urls.is_local(target):
            raise Skip("a Move needs a remote target")
        moved_to = await fetch_object(rt, target)
        await resolve_actor(rt, target, refresh=True)
        return actor, moved_to
    if activity.type == "Announce" and object_id and not await _known_post(rt, object_id):
        if rt.urls.is_local(object_id):
            raise Skip(f"Announce of {object_id}: not one of our posts")
        fetched = await fetch_object(rt, object_id)
        if fetched.attributed_to:
            await resolve_actor(rt, fetched.attributed_to)
        return actor, fetched
    return actor, embedded


async def _refuse_moderated(rt: Runtime, actor: Account) -> None:
    """An actor an admin suspended, or of a suspended domain, is refused here too: the inbox
    route only checks the signer and the hosts it can read before verifying, and a Create
    forwarded by another (allowed) signer, or an actor given as a list, gets past those."""
    gate = rt.service(InboxGate)  # a per-process snapshot: a suspension or block made here
    # applies at once, one made by another process within a second; no query per item
    if actor.suspended_at is not None or await gate.refuses_actor(actor.uri):
        raise Skip(f"{actor.uri} is suspended here")
    if await gate.first_suspended([actor.domain]) is not None:
        raise Skip(f"{actor.uri} is on a domain this instance does not federate with")


def _announces_new_key(actor: Account, embedded: APObject) -> bool:
    if embedded.id != actor.uri or not embedded.is_type(*ACTOR_TYPES):
        return False
    keys = Actor(dict(embedded.raw)).own_keys
    return any(k.owner == actor.uri and k.public_pem.strip() != (actor.public_key_pem or "").strip()
               for k in keys)  # fmt: skip


async def fetch_object(rt: Runtime, uri: str) -> APObject:
    """An object from its origin (the safe fetcher checks that the document's id is the URL
    asked for, and that its author lives on the same server)."""
    return APObject(await rt.fetch_json(uri))


async def _known_post(rt: Runtime, uri: str) -> bool:
    async with rt.sessions() as session:
        return await session.scalar(select(Post.id).where(Post.uri == uri)) is not None


@dataclass(frozen=True)
class Ready:
    """An item dereferenced (step 1), waiting for its transaction (step 2)."""

    item_id: int
    attempts: int
    sender: str
    activity: Activity
    actor: Account
    obj: APObject | None
    now: datetime


class InboxWorker:
    """Claims inbox rows and handles them, one lane per sending actor (module docstring)."""

    name = INBOX.name

    def __init__(self, rt: Runtime, batch: int = BATCH) -> None:
        self.rt = rt
        self.batch = batch
        self.concurrency = rt.settings.federation.inbox_concurrency
        self.actors: dict[str, Account] = {}  # read in this step (`dereference`'s `known`)
        self.ours: dict[str, Account | None] = {}  # our accounts read in this step (Inbound.ours)

    async def start(self) -> None:
        """Load, before the first claim, what handling an ask loads on first use: the
        prompt's tokenizer (instance/generation/asks.py refuses prompts it would truncate)
        and the public suffix list (quotas per site)."""
        await asyncio.to_thread(warm_prompt_check, self.rt.settings)
        site_of("warm-up.example")

    async def run_once(self) -> int:
        self.actors, self.ours = {}, {}
        async with self.rt.session() as session:
            items = await claim_fair(session, now=self.rt.now(), limit=self.batch)
        lanes: dict[str, list[InboxItem]] = {}
        for item in items:
            lanes.setdefault(item.actor_uri, []).append(item)
        slots = asyncio.Semaphore(self.concurrency)
        per_server = max(1, self.concurrency // 2)
        servers: dict[str, asyncio.Semaphore] = {}
        held = {item.id for item in items}

        async def lane(actor: str, queue: list[InboxItem]) -> None:
            server = servers.setdefault(sender_host(actor), asyncio.Semaphore(per_server))
            ready: list[Ready] = []
            for item in queue:
                item_id = item.id  # a failed transaction expires the row's attributes
                async with server, slots:
                    one = await self.prepare(item)
                if one is None:
                    held.discard(item_id)
                    continue
                ready.append(one)
                if one.activity.type in CHANGES_ACTOR:
                    await self.apply(ready, held)
                    ready = []
            await self.apply(ready, held)

        done = asyncio.Event()
        renewing = asyncio.create_task(self._renew(held, done))
        try:
            await asyncio.gather(*(lane(actor, queue) for actor, queue in lanes.items()))
        finally:
            done.set()  # never cancelled mid-UPDATE: a cancelled query can strand its connection
            await renewing
        return len(items)

    async def _renew(self, held: set[int], done: asyncio.Event) -> None:
        """Keep the lease of the items still being handled (or waiting for a slot), until
        `done` is set."""
        while True:
            try:
                await asyncio.wait_for(done.wait(), RENEW_EVERY_S)
                return
            except TimeoutError:
                pass
            if not held:
                continue
            try:
                async with self.rt.session() as session:
                    await session.execute(
                        update(InboxItem)
                        .where(InboxItem.id.in_(list(held)), InboxItem.status == "running")
                        .values(locked_until=self.rt.now() + INBOX.fixed_lease)
                        .execution_options(synchronize_session=False)
                    )
            except OperationalError as exc:  # a busy database: try again next time
                log.warning("could not renew inbox leases: %s", exc)

    async def prepare(self, item: InboxItem) -> Ready | None:
        """Step 1: the activity parsed and dereferenced, or None when the item was settled
        here (skipped, retried or failed, with why)."""
        item_id, attempts, now, sender = item.id, item.attempts, self.rt.now(), item.actor_uri
        try:
            activity = Activity(json.loads(item.body))
            if activity.type in CHANGES_ACTOR:
                self.actors.pop(sender, None)  # its next activity reads the row again
            actor, obj = await dereference(self.rt, activity, self.actors)
        except Exception as exc:
            await self._settle_failure(item_id, attempts, sender, now, exc)
            return None
        return Ready(item_id, attempts, sender, activity, actor, obj, now)

    async def apply(self, ready: list[Ready], held: set[int]) -> None:
        """Step 2 for `ready`, in order, in groups (module docstring); each item leaves
        `held` once settled."""
        start, limit = 0, len(ready)
        while start < len(ready):
            applied, error = await self._group(ready[start:limit])
            if error is None:
                for one in ready[start : start + applied]:
                    _log_item("handled", one.item_id, one.sender, one.activity.type)
                    held.discard(one.item_id)
                start += applied
            elif applied == 0:  # the first item failed: settled alone, with its error
                one = ready[start]
                await self._settle_failure(one.item_id, one.attempts, one.sender, one.now, error)
                held.discard(one.item_id)
                start += 1
            else:  # the items before the one that failed, again without it
                limit = start + applied
                continue
            if start >= limit:
                limit = len(ready)

    async def _group(self, ready: list[Ready]) -> tuple[int, Exception | None]:
        """Apply the first items of `ready` in one transaction, as many as GROUP_HOLD_S
        allows: (how many were committed, None), or, with nothing committed, (the position
        of the item whose handler failed, its error); a failed commit is the first item's."""
        turns = self.rt.service(WriteTurns)
        await turns.wait_turn()  # SQLite: a batch of 202s waiting for the lock goes first
        began, taken, failed_at = time.monotonic(), 0, 0
        try:
            async with self.rt.sessions() as session, session.begin():
                for one in ready:
                    if taken and (time.monotonic() - began > GROUP_HOLD_S or turns.wanted()):
                        break
                    if not taken:  # write first: SQLite's write lock before any read
                        await _finish(session, ready[:1])
                    failed_at = taken
                    ctx = Inbound(self.rt, session, one.activity, one.actor, one.obj, one.now,
                                  self.ours)  # fmt: skip
                    await dispatch(ctx)
                    await session.flush()
                    session.expunge_all()  # the next item reads the database afresh, as alone
                    taken += 1
                failed_at = 0
                await _finish(session, ready[1:taken])
        except Exception as exc:
            return failed_at, exc
        return taken, None

    async def _settle_failure(
        self, item_id: int, attempts: int, sender: str, now: datetime, exc: Exception
    ) -> None:
        """An item that could not be handled: skipped (why kept), retried later on network
        trouble, or failed with its error."""
        if isinstance(exc, Skip):
            why = str(exc)
            await self._settle(item_id, lambda row: _skipped(row, now, why))
            _log_item("skipped", item_id, sender, None, why)
            return
        error = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, ActorUnavailable | FetchError | OperationalError):
            delay = retry_delay(attempts, exc)
            _log_item("failed" if delay is None else "failed, retried later", item_id, sender,
                      None, error)  # fmt: skip
            if delay is not None:
                await self._settle(item_id, lambda row: jobs.retry(row, now, delay, error))
                return
        else:
            log.error("inbox item %s failed", item_id, exc_info=exc)
        await self._settle(item_id, lambda row: jobs.fail(row, now, error))

    async def _settle(self, item_id: int, change: Callable[[InboxItem], None]) -> None:
        async with self.rt.session() as session:
            change(await session.get_one(InboxItem, item_id))


async def _finish(session: AsyncSession, ready: list[Ready]) -> None:
    """Mark `ready` done (those still held by this worker), in one statement."""
    if ready:
        held = [{"id": one.item_id, "attempts": one.attempts} for one in ready]
        await jobs.finish_held(session, InboxItem, held, ready[0].now)


def _log_item(what: str, item_id: int, actor: str, kind: str | None, reason: str = "") -> None:
    """One info line per inbox item: handled, skipped or failed (with why), and from where."""
    host = sender_host(actor)
    log.info(
        "inbox item %s%s from %s %s%s", item_id, f" ({kind})" if kind else "", host, what,
        f": {reason}" if reason else "",
        extra={"item": item_id, "kind": kind, "host": host, "outcome": what, "reason": reason},
    )  # fmt: skip


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
    return INBOX.retry_delay(attempts) if transient else None
