"""Remote actors: fetched through the one safe fetcher, cached as `Account` rows.

`resolve_actor(rt, uri)` answers from the database when it can and fetches (a GET signed by
the instance actor, which servers in authorized-fetch mode require) only for actors we have
never seen, or when asked to refresh. `upsert_actor` maps an actor document onto a row; a
key change is taken only from a document fetched from the actor's own server, never from an
`Update` in an inbox.

A remote username must look like one (Mastodon's rule: letters, digits, `_`, and `.` or `-`
inside, at most 255 characters): anything else, such as `painter@our.host` or a name with
invisible characters, could pass for one of our accounts on a page, and is refused.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from activitypub.errors import FetchError
from activitypub.objects import Actor
from activitypub.urls import authority_of, safe_link
from instance.content.sanitize import clean_html, plain_label
from instance.errors import ActorUnavailable
from instance.runtime import Runtime
from instance.storage.idempotent import insert_one
from instance.storage.models import Account, RemoteKey

USERNAME = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,253}[A-Za-z0-9_])?")


async def find_actor(session: AsyncSession, uri: str) -> Account | None:
    return await session.scalar(select(Account).where(Account.uri == uri))


async def resolve_actor(rt: Runtime, uri: str, *, refresh: bool = False) -> Account:
    """The Account for an actor URI, fetching and storing it when unknown (or on refresh)."""
    async with rt.sessions() as session:
        known = await find_actor(session, uri)
    if known is not None and (known.local or not refresh):
        return known
    if rt.urls.is_local(uri):
        raise ActorUnavailable(f"no local actor {uri}")
    try:
        document = await rt.fetch_json(uri)
    except FetchError as exc:
        raise ActorUnavailable(f"cannot fetch actor {uri}: {exc.message}") from exc
    async with rt.session() as session:
        return await upsert_actor(session, document, rt.now(), trusted_key=True)


async def upsert_actor(
    session: AsyncSession, document: dict[str, Any], now: datetime, *, trusted_key: bool
) -> Account:
    """Insert or refresh the row of a remote actor document.

    `trusted_key`: the document was fetched from the actor's origin, so its `publicKey`
    may replace the stored one; otherwise (an `Update` in an inbox) the stored key stays.
    """
    actor = Actor(document)
    if not actor.id or not actor.is_actor or not actor.inbox or not actor.preferred_username:
        raise ActorUnavailable(f"not a usable actor document: {actor.id}")
    if not USERNAME.fullmatch(actor.preferred_username):
        raise ActorUnavailable(
            f"{actor.id} has a username we do not take: {actor.preferred_username[:80]!r}"
        )
    try:
        domain = authority_of(actor.id)
    except ValueError as exc:
        raise ActorUnavailable(f"bad actor id {actor.id!r}") from exc
    fields = _fields(actor, domain, now)
    account = await find_actor(session, actor.id)
    if account is None:
        new_id = await insert_one(session, Account, uri=actor.id, local=False, **fields)
        if new_id is None:  # a racing insert, or a clash on (username, domain)
            account = await find_actor(session, actor.id)
            if account is None:
                raise ActorUnavailable(f"actor {actor.id} clashes with a stored account")
        else:
            account = await session.get_one(Account, new_id)
    else:
        for name, value in fields.items():
            setattr(account, name, value)
        account.deleted_at = None
    if trusted_key:
        await _store_key(session, account, actor, now)
    await session.flush()
    return account


def _fields(actor: Actor, domain: str, now: datetime) -> dict[str, Any]:
    username = actor.preferred_username or ""
    return {
        "username": username,
        "username_key": username.casefold(),
        "domain": domain,
        "kind": actor.type or "Person",
        "display_name": plain_label(actor.name, 255),
        "summary": clean_html(actor.summary),
        "url": safe_link(actor.url),
        "inbox_uri": actor.inbox,
        "shared_inbox_uri": actor.shared_inbox,
        "outbox_uri": actor.outbox,
        "followers_uri": actor.followers,
        "following_uri": actor.following,
        "featured_uri": actor.featured,
        "manually_approves_followers": actor.manually_approves_followers,
        "discoverable": actor.get("discoverable") is True,
        "bot": actor.is_type("Service", "Application"),
        "avatar_url": safe_link(actor.icon_url),
        "header_url": safe_link(actor.image_url),
        "raw": dict(actor.raw),
        "fetched_at": now,
    }


async def _store_key(session: AsyncSession, account: Account, actor: Actor, now: datetime) -> None:
    """Every key the actor owns (`Actor.own_keys`: ids on its own server) goes to
    `remote_keys`; the first also onto the account row. The document was fetched from the
    actor's server, so it is the authority on its keys: a row that another actor had
    claimed for one of them is taken back."""
    keys = actor.own_keys
    for key in keys:
        row = await session.get(RemoteKey, key.key_id)
        if row is None:
            session.add(RemoteKey(key_id=key.key_id, owner_uri=key.owner,
                                  public_key_pem=key.public_pem, fetched_at=now))  # fmt: skip
        else:
            row.owner_uri, row.public_key_pem, row.fetched_at = key.owner, key.public_pem, now
    if keys:
        await session.execute(
            update(Account).where(Account.key_id == keys[0].key_id, Account.id != account.id)
            .values(key_id=None)
        )  # fmt: skip
        account.key_id, account.public_key_pem = keys[0].key_id, keys[0].public_pem
