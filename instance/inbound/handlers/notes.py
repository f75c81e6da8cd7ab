"""Create/Update/Delete of Notes: remote posts stored with sanitised HTML and their images.

A stored post links to its parent when we have it (replies to our posts bump the parent's
reply count and notify its author); an unknown parent is kept as `in_reply_to_uri` only,
and children arriving before their parent are linked when it comes. Reply chains are never
walked from here: a remote server could make one as long as it likes. Mentions of our
accounts notify them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import nh3
from sqlalchemy import bindparam, delete, insert, select, update

from activitypub.addressing import visibility_of
from activitypub.notes import QUOTE_FIELDS
from activitypub.objects import APObject, Attachment, as_list, id_of
from activitypub.urls import safe_link, same_origin
from instance.content import quotes
from instance.content.counters import recount
from instance.content.notifications import notify
from instance.content.sanitize import clean_html
from instance.errors import Skip
from instance.generation import asks
from instance.inbound.context import Inbound
from instance.inbound.handlers import lookup
from instance.inbound.media_cache import drop_remote_media
from instance.storage.idempotent import insert_entity, insert_rows
from instance.storage.models import (
    Account,
    MediaAttachment,
    Mention,
    NotificationKind,
    Post,
    PostTag,
)

MAX_ATTACHMENTS = 16
# A Note may carry thousands of tags; past these, Mentions of our accounts and Hashtags are
# ignored (each is a row, and the worker holds the database's write lock while it stores them)
MAX_MENTIONS = 50
MAX_HASHTAGS = 64
# Stored as posts: Notes, and the types Mastodon also shows (an Article as its text, ...)
POST_TYPES = frozenset(
    {"Note", "Article", "Page", "Question", "Image", "Video", "Audio", "Document", "Event"}
)

# Built once (each is run for every Note; building one cost as much as running it)
OURS_BY_URI = select(Account).where(
    Account.uri.in_(bindparam("uris", expanding=True)),
    Account.local.is_(True), Account.deleted_at.is_(None),
)  # fmt: skip
ADOPT_CHILDREN = (  # replies that came before their parent
    update(Post).where(Post.in_reply_to_uri == bindparam("reply_to"))
    .values(in_reply_to_id=bindparam("parent_id")).execution_options(synchronize_session=False)
)  # fmt: skip

EDITS = ("content", "summary", "sensitive", "language")
"""The fields whose change makes an Update an edit (shown as "edited"); media too."""


def _media_changed(note: APObject, stored: list[str]) -> bool:
    urls = [safe_link(Attachment.from_raw(a).url) for a in as_list(note.get("attachment"))
            if isinstance(a, dict)][:MAX_ATTACHMENTS]  # fmt: skip
    return [u for u in urls if u] != stored


async def _media_urls(ctx: Inbound, post: Post) -> list[str]:
    rows = await ctx.session.scalars(
        select(MediaAttachment.remote_url)
        .where(MediaAttachment.post_id == post.id)
        .order_by(MediaAttachment.position)
    )
    return [url for url in rows if url]


def plain_summary(summary: str | None) -> str | None:
    """A content warning is text: markup is dropped, what remains stays HTML-escaped."""
    return nh3.clean(summary or "", tags=set()).strip()[:1000] or None


def parse_time(value: str | None, now: datetime) -> datetime:
    """A remote post's time, read as UTC when it names no zone, and never later than `now`:
    a post dated in the future would stay on top of every timeline until that date."""
    try:
        moment = datetime.fromisoformat(value) if value else now
    except ValueError:
        return now
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return min(moment, now)


def _fields(note: APObject, author: Account) -> dict[str, Any]:
    content_map = note.get("contentMap")
    content_map = content_map if isinstance(content_map, dict) and content_map else {}
    language = next(iter(content_map), None)
    mapped = next((v for v in content_map.values() if isinstance(v, str)), None)
    quote = next((q for f in QUOTE_FIELDS if (q := id_of(note.get(f)))), None)
    return {
        "url": safe_link(note.url, note.id),
        "content": clean_html(note.content or mapped),  # some servers send contentMap only
        "summary": plain_summary(note.summary),
        "sensitive": note.sensitive,
        "visibility": visibility_of(note.raw, author.followers_uri),
        "language": language[:16] if isinstance(language, str) else None,
        "to": note.to,
        "cc": note.cc,
        "tags": [t for t in as_list(note.get("tag")) if isinstance(t, dict)],
        "in_reply_to_uri": note.in_reply_to,
        "quote_uri": quote,
        "raw": dict(note.raw),
    }


async def store_note(ctx: Inbound, note: APObject, author: Account) -> Post | None:
    """Insert a remote Note once (by its id); the stored post either way (None when it was
    deleted before). The insert comes first: a new Note, the common case, costs one
    statement instead of a lookup, the insert and a read back."""
    if not note.id or note.attributed_to != author.uri:
        return None
    post = await insert_entity(
        ctx.session, Post, uri=note.id, account_id=author.id, local=False,
        published=parse_time(note.published, ctx.now), **_fields(note, author),
    )  # fmt: skip
    if post is None:  # stored before (or a tombstone): the stored one, if not deleted
        return await lookup.post(ctx.session, note.id)
    await _store_media(ctx, post, note)
    await _store_tags(ctx, post, note)
    await _link_thread(ctx, post)
    await _surface(ctx, post, note, author)
    return post


async def _store_media(ctx: Inbound, post: Post, note: APObject) -> None:
    rows = []
    raw = [a for a in as_list(note.get("attachment")) if isinstance(a, dict)]
    for position, entry in enumerate(raw[:MAX_ATTACHMENTS]):
        item = Attachment.from_raw(entry)
        url = safe_link(item.url)
        if url is None:
            continue
        focal = entry.get("focalPoint")
        fx, fy = focal if isinstance(focal, list) and len(focal) == 2 else (0.0, 0.0)
        rows.append({
            "post_id": post.id, "account_id": post.account_id, "position": position,
            "remote_url": url, "media_type": (item.media_type or "image/png")[:64],
            "width": item.width, "height": item.height, "blurhash": item.blurhash,
            "description": item.alt_text, "focal_x": _float(fx), "focal_y": _float(fy),
        })  # fmt: skip
    if rows:
        await ctx.session.execute(insert(MediaAttachment), rows)


def _float(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and -1 <= value <= 1 else 0.0


async def _store_tags(ctx: Inbound, post: Post, note: APObject) -> None:
    names = dict.fromkeys(t.name.lstrip("#").lower()[:255] for t in note.tags
                          if t.type == "Hashtag" and t.name and t.name.lstrip("#"))  # fmt: skip
    rows = [{"post_id": post.id, "name": n} for n in list(names)[:MAX_HASHTAGS]]
    await insert_rows(ctx.session, PostTag, rows)


async def _mentioned(ctx: Inbound, note: APObject) -> list[Account]:
    """Our accounts among the Note's Mention tags, in order, at most MAX_MENTIONS: at most
    one query, for hrefs on our origin only that this worker step has not read yet."""
    local = ctx.rt.urls.is_local
    hrefs = dict.fromkeys(t.href for t in note.tags if t.type == "Mention" and t.href)
    wanted = [href for href in hrefs if local(href)][:MAX_MENTIONS]
    unread = [uri for uri in wanted if uri not in ctx.ours]
    if unread:
        found = {a.uri: a for a in await ctx.session.scalars(OURS_BY_URI, {"uris": unread})}
        ctx.ours.update({uri: found.get(uri) for uri in unread})
    return [account for uri in wanted if (account := ctx.ours[uri]) is not None]


async def _link_thread(ctx: Inbound, post: Post) -> None:
    """Parent known: link it and recount it. Children that came first: link them to us and
    count them (a new post has no other counts to make: likes and boosts need its row)."""
    parent = await lookup.post(ctx.session, post.in_reply_to_uri)
    if parent is not None:
        post.in_reply_to_id = parent.id
        await ctx.session.flush()
        await recount(ctx.session, parent.id)
    adopted = {"reply_to": post.uri, "parent_id": post.id}
    children = await ctx.session.execute(ADOPT_CHILDREN, adopted)
    if children.rowcount:  # type: ignore[attr-defined]
        await recount(ctx.session, post.id)
    await _link_quote(ctx, post)


async def _link_quote(ctx: Inbound, post: Post) -> None:
    """A quote counts (as a remix, in lineage and notifications) only when approved: of one
    of our posts, by a stamp we issued for exactly this post and not revoked; of a remote
    post, by a `quoteAuthorization` on that post's server."""
    quoted = await lookup.post(ctx.session, post.quote_uri) if post.quote_uri else None
    stamp = id_of((post.raw or {}).get("quoteAuthorization"))
    approved = quoted is not None and stamp is not None and (
        await quotes.issued(ctx.session, ctx.rt, stamp, quoting=post.uri, quoted=quoted)
        if quoted.local else same_origin(stamp, quoted.uri)
    )  # fmt: skip
    quote_id = quoted.id if approved and quoted is not None else None
    if post.quote_id != quote_id:  # unchanged: no flush to make
        post.quote_id = quote_id


async def _surface(ctx: Inbound, post: Post, note: APObject, author: Account) -> None:
    """Mentions of our accounts, replies to and remixes of our posts -> one notification each
    (a remix that also mentions the author is a remix); a plain mention of an AI account asks
    it for a picture (instance/generation/asks.py)."""
    mentioned = await _mentioned(ctx, note)
    await insert_rows(ctx.session, Mention,
                      [{"post_id": post.id, "account_id": a.id} for a in mentioned])  # fmt: skip
    kinds: dict[int, tuple[Account, NotificationKind]] = {a.id: (a, "mention") for a in mentioned}
    links: tuple[tuple[int | None, NotificationKind], ...] = (
        (post.in_reply_to_id, "reply"), (post.quote_id, "remix"),
    )  # fmt: skip
    for parent_id, kind in links:
        parent = await ctx.session.get(Post, parent_id) if parent_id else None
        if parent is not None and parent.local:
            parent_author = await ctx.session.get_one(Account, parent.account_id)
            kinds[parent_author.id] = (parent_author, kind)
    for account, kind in kinds.values():
        await notify(ctx.session, recipient=account, kind=kind, sender=author, post=post,
                     now=ctx.now)  # fmt: skip
        if kind != "remix" and account.kind == "Service":
            await asks.on_mention(ctx.session, ctx.rt, post, account, author)


async def on_create(ctx: Inbound) -> None:
    note = ctx.obj
    if note is None or not note.id:
        raise Skip("Create of an object without an id")
    if note.attributed_to != ctx.actor.uri:
        raise Skip(f"the object is attributed to {note.attributed_to!r}, not to the actor")
    await store_note(ctx, note, ctx.actor)


async def on_update(ctx: Inbound) -> None:
    """An edit by the post's own author (anyone else's Update is ignored); media are
    replaced."""
    note = ctx.obj
    post = await lookup.post(ctx.session, ctx.object_id)
    if note is None or post is None or post.account_id != ctx.actor.id or post.local:
        return
    fields = _fields(note, ctx.actor)
    fields.pop("in_reply_to_uri")
    edited = any(fields[name] != getattr(post, name) for name in EDITS) or _media_changed(
        note, await _media_urls(ctx, post)
    )
    for name, value in fields.items():
        setattr(post, name, value)
    await _link_quote(ctx, post)
    if not edited:
        return  # e.g. Mastodon adding the quoteAuthorization once approved: not an edit
    post.edited_at = parse_time(note.updated, ctx.now)
    await drop_remote_media(ctx.session, ctx.rt, MediaAttachment.post_id == post.id)
    await _store_media(ctx, post, note)
    await ctx.session.execute(delete(PostTag).where(PostTag.post_id == post.id))
    await _store_tags(ctx, post, note)


async def on_delete(ctx: Inbound) -> None:
    """A post becomes a tombstone, only when its author deletes it. A Delete of anything
    else may be the revocation of a stamp that approved one of our remixes."""
    post = await ctx.session.scalar(select(Post).where(Post.uri == ctx.object_id))
    if post is None and ctx.object_id:
        await quotes.on_stamp_deleted(ctx.session, ctx.rt, ctx.object_id, ctx.actor)
        return
    if post is None or post.account_id != ctx.actor.id or post.local:
        return
    post.deleted_at = post.deleted_at or ctx.now
    post.content, post.raw = "", None
    await drop_remote_media(ctx.session, ctx.rt, MediaAttachment.post_id == post.id)
    await ctx.session.flush()
    if post.in_reply_to_id is not None:
        await recount(ctx.session, post.in_reply_to_id)
