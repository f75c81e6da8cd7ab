"""Admitting a verified activity: origin policy, then one durable row (writer.py).

`admit(activity, signer, urls)` is the origin policy (one place): it returns the document to
store, None for "accept and drop" (types we do not handle: answering 202 keeps the sender
from retrying them), or raises `Refused`:

- ids are strings we can store: http(s) URLs of at most MAX_ID_CHARS, without control
  characters or unpaired surrogates (which JSON allows and databases refuse);
- the activity's id lives on its actor's server (FEP-fe34): nobody can claim another
  server's future ids, such as Mastodon's predictable `<actor>#delete`, so that the real
  one would be dropped as a duplicate;
- the signer must be the activity's actor: a valid signature only proves who signed. The one
  exception is a forwarded `Create` (Mastodon forwards replies to the thread's author):
  only the object's id is kept, and the inbox worker fetches the object from its origin, so
  nothing the forwarder wrote is trusted;
- a remote activity may not claim a local actor, object or author;
- `Create`/`Update`: the object and its `attributedTo` live on the actor's server (nobody
  writes posts in another server's name).

`Intake` holds what the inbox route shares across requests: the overload bound (past it,
503 with Retry-After rather than a queue that grows without end), the local account names
already seen, and the `InboxWriter` (writer.py). One Intake per runtime:
`rt.service(Intake)`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Any

from activitypub.errors import InvalidURLError
from activitypub.objects import Activity, APObject, ids_of
from activitypub.urls import Origin, origin_of
from instance.accounts import find_local
from instance.errors import Refused
from instance.inbound.writer import InboxWriter
from instance.runtime import Runtime
from instance.urls import LocalUrls

log = logging.getLogger("dreamloom.inbox")

MAX_ID_CHARS = 2048  # the id columns' length
HANDLED_TYPES = frozenset({
    "Follow", "Accept", "Reject", "Undo", "Like", "EmojiReact", "Announce",
    "Create", "Update", "Delete", "Block", "Flag", "QuoteRequest", "Move",
})  # fmt: skip
MAX_PENDING = 256  # requests verifying or awaiting their commit at once
READS_PER_IP = 32  # bodies read at once from one client address
WRITE_TIMEOUT_S = 10.0


@functools.lru_cache(maxsize=8192)
def origin(url: str) -> Origin | None:
    """The normalised origin of an id we can store, None when unusable (memoised: actor URLs
    repeat on every request)."""
    if not storable(url):
        return None
    try:
        return origin_of(url)
    except InvalidURLError:
        return None


def storable(value: str) -> bool:
    """A string every database column takes as it is: not too long, valid UTF-8 (no unpaired
    surrogate), no NUL or other control character."""
    if len(value) > MAX_ID_CHARS or not value.isprintable():
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def admit(document: dict[str, Any], signer: str, urls: LocalUrls) -> dict[str, Any] | None:
    """The document to store for a verified request from `signer` (an actor URI)."""
    activity = Activity(document) if isinstance(document, dict) else None
    if activity is not None and activity.type and activity.type not in HANDLED_TYPES:
        return None  # accepted and dropped, id or not (Mastodon's Add/Remove of a pin has none)
    if activity is None or activity.id is None:
        raise Refused(400, "an activity needs an id")
    if origin(activity.id) is None:
        raise Refused(400, "the activity id is not an http(s) URL that we can store")
    actor = activity.actor
    if actor is None or origin(actor) is None or not activity.type:
        raise Refused(400, "an activity needs an actor and a type")
    if urls.is_local(actor) or urls.is_local(activity.id):
        raise Refused(403, "a remote server cannot send activities of a local actor")
    if origin(activity.id) != origin(actor):
        raise Refused(403, f"the activity id {activity.id} is not on the actor's server")
    if actor != signer:
        return _forwarded(activity, signer)
    if activity.type in ("Create", "Update"):
        _check_object_origin(activity, urls)
    return document


def _forwarded(activity: Activity, signer: str) -> dict[str, Any]:
    """Keep only the object's id of a forwarded Create; refuse anything else."""
    actor, object_id = activity.actor or "", activity.object_id
    if activity.type != "Create" or object_id is None or origin(object_id) != origin(actor):
        raise Refused(403, f"the signer {signer} is not the actor {actor}")
    return {"id": activity.id, "type": "Create", "actor": actor, "object": object_id}


def _check_object_origin(activity: Activity, urls: LocalUrls) -> None:
    actor = activity.actor or ""
    embedded = activity.object
    object_id = activity.object_id
    if object_id is None:
        raise Refused(400, f"{activity.type} without an object id")
    authors = ids_of(embedded.get("attributedTo")) if embedded is not None else []
    for uri in (object_id, *authors):
        if urls.is_local(uri):
            raise Refused(403, f"a remote actor cannot {activity.type} local object {uri}")
        if origin(uri) != origin(actor):
            raise Refused(403, f"{uri} is not on the origin of the actor {actor}")


def object_type(activity: Activity) -> str | None:
    embedded = activity.object
    return embedded.type if isinstance(embedded, APObject) else None


class Intake:
    """Per-runtime state of the inbox route: the admission bound and the writer."""

    def __init__(self, rt: Runtime, max_pending: int = MAX_PENDING) -> None:
        self.rt = rt
        self.max_pending = max_pending
        self.pending = 0
        self.reading: dict[str, int] = {}  # client address -> bodies being read
        self.writer = InboxWriter(rt)
        self.usernames: set[str] = set()  # local accounts seen: their inboxes exist

    async def aclose(self) -> None:
        """The writer's own connections (Runtime.aclose calls this)."""
        await self.writer.aclose()

    def start_reading(self, address: str) -> bool:
        """Count one body being read from `address`; False past READS_PER_IP."""
        now = self.reading.get(address, 0)
        if now >= READS_PER_IP:
            return False
        self.reading[address] = now + 1
        return True

    def done_reading(self, address: str) -> None:
        left = self.reading.pop(address, 1) - 1
        if left > 0:
            self.reading[address] = left

    def try_enter(self) -> bool:
        if self.pending >= self.max_pending:
            return False
        self.pending += 1
        return True

    def leave(self) -> None:
        self.pending -= 1

    async def has_account(self, username: str) -> bool:
        """Whether a personal inbox exists: `username` is a local account."""
        key = username.casefold()
        if key in self.usernames:
            return True
        async with self.rt.sessions() as session:
            found = await find_local(session, key) is not None
        if found:
            self.usernames.add(key)
        return found

    async def store(
        self, activity: dict[str, Any], body: str, key_id: str, signer: str,
        scheme: str = "cavage",
    ) -> None:  # fmt: skip
        """Write the inbox row, once per (signer, activity id); returns once it is committed
        (TimeoutError when stuck). `scheme`: how the request was signed (a server that signs
        RFC 9421 gets our deliveries signed that way)."""
        now = self.rt.now()
        row = {
            "activity_uri": activity["id"],
            "actor_uri": Activity(activity).actor,
            "signer_key_id": key_id,
            "body": body,
            "status": "queued",
            "attempts": 0,
            "run_at": now,
            "created_at": now,
        }
        await asyncio.wait_for(self.writer.write(row, sender=signer, scheme=scheme),
                               WRITE_TIMEOUT_S)  # fmt: skip
