"""`dreamloom remote refresh`: fetch a remote actor or post again and update its row.

A handle goes through WebFinger to its actor; a URL is a stored actor or post, or else
whatever its document is. Everything is fetched through the one safe fetcher, so a domain an
admin suspended is refused (instance/moderation/domains.py), as is an address we never fetch.
An unreachable or refused target is a NotFound that says why; nothing is changed then.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import or_, select

from activitypub.errors import FetchError
from activitypub.objects import ACTOR_TYPES, Activity, APObject
from activitypub.urls import host_of
from instance.errors import ActorUnavailable, NotFound, UserError
from instance.inbound.context import Inbound
from instance.inbound.handlers.notes import on_update, store_note
from instance.inbound.remote import resolve_actor
from instance.moderation import domains
from instance.runtime import Runtime
from instance.storage.models import Account, Post
from webfinger.client import WebFingerLookupError, finger, split_handle


@dataclass(frozen=True)
class Refreshed:
    kind: str  # "actor" or "post"
    uri: str
    handle: str  # the actor's, or the post author's


async def refresh(rt: Runtime, target: str) -> Refreshed:
    """Re-fetch `target` (`@user@host`, `user@host`, an actor or post URL) and store it."""
    target = target.strip()
    if not target.startswith(("http://", "https://")):
        return await _actor(rt, await _finger(rt, target))
    if rt.urls.is_local(target):
        raise UserError(f"{target} is on this instance; only remote ones are refreshed")
    await _refuse_blocked(rt, target)
    async with rt.sessions() as session:
        actor = await session.scalar(select(Account.id).where(Account.uri == target))
        post = await session.scalar(
            select(Post.id).where(or_(Post.uri == target, Post.url == target))
        )
    if actor is not None:
        return await _actor(rt, target)
    if post is None:
        document = await _fetch(rt, target)
        if document.get("type") in ACTOR_TYPES:
            return await _actor(rt, target)
    return await _post(rt, target)


async def _refuse_blocked(rt: Runtime, url: str) -> None:
    host = host_of(url)
    async with rt.sessions() as session:
        if await domains.is_suspended_host(session, host):
            raise NotFound(f"{host} is blocked by this instance's admin; nothing was fetched")


async def _finger(rt: Runtime, handle: str) -> str:
    if "@" not in handle.lstrip("@"):
        raise UserError(f"{handle!r} is not a remote handle (use @user@host or a URL)")
    user, host = split_handle(handle)
    async with rt.sessions() as session:
        if await domains.is_suspended_host(session, host):
            raise NotFound(f"{host} is blocked by this instance's admin; nothing was fetched")
    private = rt.settings.federation.allow_private_addresses
    scheme = rt.settings.instance.scheme if private else "https"
    try:
        uri, _ = await finger(rt.http, f"{user}@{host}", scheme=scheme)
    except WebFingerLookupError as exc:
        raise NotFound(f"cannot look up {handle}: {exc}") from None
    await _refuse_blocked(rt, uri)
    return uri


async def _fetch(rt: Runtime, url: str) -> dict[str, object]:
    try:
        return await rt.fetch_json(url)
    except FetchError as exc:
        raise NotFound(f"cannot fetch {url}: {exc.message}") from None


async def _actor(rt: Runtime, uri: str) -> Refreshed:
    try:
        account = await resolve_actor(rt, uri, refresh=True)
    except ActorUnavailable as exc:
        raise NotFound(f"cannot refresh {uri}: {exc}") from None
    return Refreshed("actor", account.uri, f"@{account.username}@{account.domain}")


async def _post(rt: Runtime, url: str) -> Refreshed:
    note = APObject(await _fetch(rt, url))
    if not note.id or not note.attributed_to:
        raise NotFound(f"{url} is neither an actor nor a post")
    await _refuse_blocked(rt, note.attributed_to)
    author = await _actor(rt, note.attributed_to)
    async with rt.session() as session:
        account = await session.scalar(select(Account).where(Account.uri == author.uri))
        if account is None:
            raise NotFound(f"{note.attributed_to} could not be stored")
        update = Activity({"type": "Update", "actor": account.uri, "object": note.raw})
        context = Inbound(rt, session, update, account, note, rt.now())
        if await session.scalar(select(Post.id).where(Post.uri == note.id)) is None:
            stored = await store_note(context, note, account)
            if stored is None:
                raise NotFound(f"{url} could not be stored (deleted here before?)")
        else:
            await on_update(context)
    return Refreshed("post", note.id, author.handle)
