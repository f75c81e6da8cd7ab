"""Turn what a person types (a handle, a profile or post URL) into rows we can act on.

Local targets come from the database; remote ones are found through WebFinger and fetched
through the one safe fetcher (signed by the instance actor), then stored like anything that
arrives in the inbox (remote.py for actors, handlers/notes.py for posts).
"""

from __future__ import annotations

from sqlalchemy import or_, select

from activitypub.errors import FetchError, InvalidURLError
from activitypub.objects import Activity, Actor, APObject
from activitypub.urls import host_of
from instance.accounts import find_local
from instance.errors import ActorUnavailable, NotFound
from instance.inbound.context import Inbound
from instance.inbound.handlers.notes import store_note
from instance.inbound.remote import resolve_actor, upsert_actor
from instance.moderation import domains
from instance.runtime import Runtime
from instance.storage.models import Account, Post
from webfinger.client import WebFingerLookupError, finger, split_handle


async def account(rt: Runtime, who: str) -> Account:
    """`@user@host`, `user@host`, a local name, or an actor URL -> its Account."""
    who = who.strip()
    if who.startswith(("http://", "https://")):
        uri = who
    else:
        user, host = split_handle(who) if "@" in who.lstrip("@") else (who.lstrip("@"), "")
        if not host or host == rt.settings.host:
            async with rt.sessions() as session:
                found = await find_local(session, user)
            if found is None:
                raise NotFound(f"no local account named {user!r}")
            return found
        await _refuse_blocked(rt, host)
        try:
            uri, _ = await finger(
                rt.http,
                f"{user}@{host}",
                scheme=rt.settings.instance.scheme
                if rt.settings.federation.allow_private_addresses
                else "https",
            )
        except WebFingerLookupError as exc:
            raise NotFound(str(exc)) from None
    await _refuse_blocked(rt, uri)
    try:
        return await resolve_actor(rt, uri)
    except ActorUnavailable as exc:
        raise NotFound(str(exc)) from None


async def _refuse_blocked(rt: Runtime, host_or_url: str) -> None:
    """A suspended domain (instance/moderation/domains.py) is neither looked up nor acted on."""
    try:
        host = host_of(host_or_url) if "://" in host_or_url else host_or_url
    except InvalidURLError:
        return
    async with rt.sessions() as session:
        if await domains.is_suspended_host(session, host):
            raise NotFound(f"{host} is blocked by this instance's admin")


async def post(rt: Runtime, url: str) -> Post:
    """A post by its id or URL: ours from the database, a remote one fetched and stored."""
    async with rt.sessions() as session:
        known = await session.scalar(select(Post).where(or_(Post.uri == url, Post.url == url)))
    if known is not None:
        if known.deleted_at is not None:
            raise NotFound(f"{url} was deleted")
        return known
    if rt.urls.is_local(url):
        raise NotFound(f"no post at {url}")
    try:
        note = APObject(await rt.fetch_json(url))
    except FetchError as exc:
        raise NotFound(f"cannot fetch {url}: {exc.message}") from None
    return await _store_fetched_note(rt, url, note)


async def by_url(rt: Runtime, url: str) -> Account | Post:
    """What a pasted URL names (a profile or a post, as Mastodon's search resolves one):
    a row we hold under that id or URL, else the document fetched once and stored as an
    actor (remote.py) or a post (handlers/notes.py). A suspended domain is not fetched."""
    async with rt.sessions() as session:
        known = await session.scalar(
            select(Post).where(or_(Post.uri == url, Post.url == url)).limit(1)
        )
        if known is not None:
            if known.deleted_at is not None:
                raise NotFound(f"{url} was deleted")
            return known
        holder = await session.scalar(
            select(Account).where(or_(Account.uri == url, Account.url == url),
                                  Account.deleted_at.is_(None)).limit(1)
        )  # fmt: skip
    if holder is not None:
        return holder
    if rt.urls.is_local(url):
        raise NotFound(f"nothing here at {url}")
    await _refuse_blocked(rt, url)
    try:
        document = await rt.fetch_json(url)
    except FetchError as exc:
        raise NotFound(f"cannot fetch {url}: {exc.message}") from None
    if Actor(document).is_actor:
        try:
            async with rt.session() as session:
                return await upsert_actor(session, document, rt.now(), trusted_key=True)
        except ActorUnavailable as exc:
            raise NotFound(str(exc)) from None
    return await _store_fetched_note(rt, url, APObject(document))


async def _store_fetched_note(rt: Runtime, url: str, note: APObject) -> Post:
    """A post fetched from its server, stored as one that arrived in the inbox."""
    if not note.id or not note.attributed_to:
        raise NotFound(f"{url} is not a post")
    author = await account(rt, note.attributed_to)
    async with rt.session() as session:
        author = await session.get_one(Account, author.id)
        context = Inbound(rt, session, Activity({"type": "Fetch"}), author, note, rt.now())
        stored = await store_note(context, note, author)
        if stored is None:
            stored = await session.scalar(select(Post).where(Post.uri == note.id))
    if stored is None:
        raise NotFound(f"{url} could not be stored")
    return stored
