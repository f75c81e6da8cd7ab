"""Rows as the Mastodon client API's entities: Account, Status, MediaAttachment, Notification.

The shapes are Mastodon's (app/serializers/rest/*.rb, as of 4.5); every id is a string:
a status's is `Post.public_id` (a boost's `Boost.public_id`), an attachment's
`MediaAttachment.public_id`, an account's `str(Account.id)`, a notification's
`str(Notification.id)`.

For the other modules of instance/api:

    await account(rt, session, acct)            one Account
    await accounts(rt, session, accts)          many Accounts, in order
    await status(rt, session, post, viewer)     one Status
    await statuses(rt, session, posts, viewer)  many Statuses, in order
    await timeline(rt, session, items, viewer)  Posts and Boosts mixed, in order: a Boost is
                                                a reblog, the Status Mastodon gives a boost
    await reblog_status(rt, session, boost, viewer)   one boost as its reblog Status
    media_attachment(rt, media)                 one MediaAttachment (no query)
    await notifications(rt, session, rows, viewer)    Notifications of `viewer`, in order
    NOTIFICATION_TYPES                          our notification kinds -> Mastodon's types
    iso(dt)                                     a time as Mastodon writes it

**Few queries.** Rows come in without their relations loaded; each call loads what it needs
for the whole batch at once (authors, boosters, attachments, mentions, hashtags, the posts
replied to and quoted, the viewer's likes and boosts, account counters): a timeline of 40
posts costs the same dozen queries as one post.

**Reblogs.** A boost is a Status of its own: id `Boost.public_id` (time-sortable like post
ids, so posts and boosts page together), uri the Announce's id, account the booster,
created_at when it was boosted, and `reblog` the boosted post's Status; its counters are 0
and its `favourited`/`reblogged` are the boosted post's, which is what clients act on.

**Viewer fields.** `favourited`, `reblogged`, `muted`, `bookmarked` and `filtered` are there
only with a signed-in viewer, `pinned` only on the viewer's own posts, and `text` (the
source the author typed) only on the viewer's own local posts, as Mastodon does. There are
no bookmarks, mutes or filters here: those are always false or empty.

**Quotes** (our remixes, FEP-044f) as Mastodon 4.5 shows them: `quote` is null for a post
that quotes nothing, else `{"state", "quoted_status"}`, the quoted post's Status only when
the state is `accepted` (and a quoted status's own quote only as `{"state",
"quoted_status_id"}`, Mastodon's ShallowQuote). States, from Post.quote_* (rules:
instance/content/quotes.py): a remix of ours approved by the parent's author is
`accepted`; waiting for the approval `pending`; published as a plain link (refused,
unanswered or taken back) `rejected`; a quote of a post whose server cannot approve quotes,
published as such (`unapproved`), `accepted`; a remote post's quote counts (`accepted`) only
with a verified stamp (`quote_id` set), else `pending`. An accepted quote of a post that is
gone is `deleted`, of one the viewer may not see `unauthorized`. `quote_approval` says who
may quote the post (instance/content/visibility.py `can_quote`: anyone, for public and
unlisted posts; remote posts' own servers decide, so `unknown` there).

**Media URLs.** A local image is served from the media store (`rt.urls.media`), its
`preview_url` its largest rendition at most 640 px wide (instance/content/renditions.py);
a remote one from our cache (`rt.urls.remote_media`, never hotlinked, as the web pages
show it: instance/web/cards.py), with `remote_url` its origin.

**Accounts.** Counters are what this instance knows: accepted follows in both directions and
posts not deleted (a remote account's totals on its own server are not fetched). An account
without an avatar or header gets the instance's placeholder images (/static/missing-*.png).
`fields` are the profile fields of the account's actor document (ours:
instance/content/render.py; remote ones: the PropertyValues of the actor it published).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from activitypub.addressing import Visibility
from activitypub.urls import safe_link
from instance.content import renditions
from instance.content.render import actor_document, bio_html
from instance.content.sanitize import clean_html, plain_label
from instance.content.visibility import can_quote, served_unsigned_rows, visible_to
from instance.moderation.domains import shown_domain
from instance.moderation.suspension import shown_author
from instance.runtime import Runtime
from instance.storage.models import (
    Account,
    Boost,
    Follow,
    Like,
    MediaAttachment,
    Mention,
    Notification,
    NotificationKind,
    Post,
    PostTag,
)

API_VISIBILITY: dict[Visibility, str] = {
    "public": "public", "unlisted": "unlisted", "followers": "private", "direct": "direct",
}  # fmt: skip
"""Our visibilities -> Mastodon's (a followers-only post is Mastodon's `private`)."""

NOTIFICATION_TYPES: dict[NotificationKind, str] = {
    "follow": "follow",
    "follow_request": "follow_request",
    "like": "favourite",
    "boost": "reblog",
    "mention": "mention",
    "reply": "mention",  # Mastodon notifies a reply as a mention
    "remix": "quote",  # Mastodon 4.5: someone quoted one of your posts
}
STATUS_TYPES = frozenset({"favourite", "reblog", "mention", "quote"})
"""Notification types that carry the status they are about."""

PREVIEW_WIDTH = 640  # Mastodon's `small` is about this size
MISSING_AVATAR = "/static/missing-avatar.png"
MISSING_HEADER = "/static/missing-header.png"


def readable(viewer: Account | None) -> ColumnElement[bool]:
    """The posts `viewer` may read by id through the API: those it may see
    (instance/content/visibility.py `visible_to`); without a viewer, those anyone may fetch
    unsigned (public and unlisted), as the post's own page and JSON serve them."""
    return visible_to(viewer) if viewer is not None else served_unsigned_rows()


def iso(moment: datetime) -> str:
    """A time as Mastodon writes it: UTC, milliseconds, `Z` (2026-12-03T15:07:49.000Z)."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _iso_or_none(moment: datetime | None) -> str | None:
    return iso(moment) if moment is not None else None


def api_visibility(visibility: str) -> str:
    return {str(k): v for k, v in API_VISIBILITY.items()}.get(visibility, visibility)


# -- media ---------------------------------------------------------------------------------
def media_type_of(media: MediaAttachment) -> str:
    """Mastodon's attachment types by MIME type (ours are images; remote ones may not be)."""
    major = (media.media_type or "").split("/", 1)[0]
    return {"image": "image", "video": "video", "audio": "audio"}.get(major, "unknown")


def _dimensions(width: int | None, height: int | None) -> dict[str, Any] | None:
    if not width or not height:
        return None
    return {"width": width, "height": height, "size": f"{width}x{height}",
            "aspect": width / height}  # fmt: skip


def media_attachment(rt: Runtime, media: MediaAttachment) -> dict[str, Any]:
    """Mastodon's MediaAttachment. An attachment without its image yet (a generation still
    running) has url and preview_url null, as Mastodon's are while it processes."""
    url: str | None = None
    preview: str | None = None
    small = None
    if media.file_name:
        url = rt.urls.media(media.file_name)
        widths = [w for w in renditions.widths_for(media.width) if w <= PREVIEW_WIDTH]
        if widths and media.width and media.height:
            w = max(widths)
            preview = rt.urls.media(renditions.rendition_name(media.file_name, w))
            small = _dimensions(w, max(1, round(media.height * w / media.width)))
        else:
            preview, small = url, _dimensions(media.width, media.height)
    elif media.remote_url:
        url = preview = rt.urls.remote_media(media.public_id)
        small = _dimensions(media.width, media.height)
    meta: dict[str, Any] = {}
    original = _dimensions(media.width, media.height)
    if original is not None:
        meta["original"] = original
    if small is not None:
        meta["small"] = small
    meta["focus"] = {"x": media.focal_x or 0.0, "y": media.focal_y or 0.0}
    return {
        "id": media.public_id,
        "type": media_type_of(media),
        "url": url,
        "preview_url": preview,
        "remote_url": None if media.file_name else safe_link(media.remote_url),
        "preview_remote_url": None,
        "text_url": None,
        "meta": meta,
        "description": media.description,
        "blurhash": media.blurhash,
    }


# -- accounts ------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Counts:
    followers: int = 0
    following: int = 0
    statuses: int = 0
    last_status_at: datetime | None = None


async def _counts(session: AsyncSession, ids: set[int]) -> dict[int, _Counts]:
    """Followers, following, posts and the last post's time of many accounts: 3 queries."""
    if not ids:
        return {}
    followers: dict[int, int] = {
        followee: int(n)
        for followee, n in await session.execute(
            select(Follow.followee_id, func.count())
            .where(Follow.followee_id.in_(ids), Follow.accepted.is_(True))
            .group_by(Follow.followee_id)
        )
    }
    following: dict[int, int] = {
        follower: int(n)
        for follower, n in await session.execute(
            select(Follow.follower_id, func.count())
            .where(Follow.follower_id.in_(ids), Follow.accepted.is_(True))
            .group_by(Follow.follower_id)
        )
    }
    posts = {
        account_id: (n, last)
        for account_id, n, last in await session.execute(
            select(Post.account_id, func.count(), func.max(Post.published))
            .where(Post.account_id.in_(ids), Post.deleted_at.is_(None))
            .group_by(Post.account_id)
        )
    }
    out = {}
    for i in ids:
        n, last = posts.get(i, (0, None))
        if isinstance(last, datetime) and last.tzinfo is None:
            last = last.replace(tzinfo=UTC)  # SQLite's max() comes back as a naive UTC time
        elif isinstance(last, str):
            last = datetime.fromisoformat(last).replace(tzinfo=UTC)
        out[i] = _Counts(int(followers.get(i, 0)), int(following.get(i, 0)), int(n), last)
    return out


def acct_of(acct: Account) -> str:
    """Mastodon's `acct`: the username for our accounts, user@domain for remote ones."""
    return acct.username if acct.local else f"{acct.username}@{acct.domain}"


def _profile_url(rt: Runtime, acct: Account) -> str:
    if acct.local:
        return acct.url or rt.urls.profile(acct.username)
    return safe_link(acct.url, safe_link(acct.uri)) or acct.uri


def _fields(rt: Runtime, acct: Account) -> list[dict[str, Any]]:
    """The profile fields of the account's actor document (PropertyValue attachments)."""
    if acct.local:
        if not acct.public_key_pem or not acct.inbox_uri or not acct.outbox_uri:
            return []
        if not acct.followers_uri or not acct.following_uri:
            return []
        doc = actor_document(acct, rt.urls, rt.settings.host, rt.settings.generator.model)
        attachments = doc.get("attachment") or []
    else:
        attachments = (acct.raw or {}).get("attachment") or []
    if isinstance(attachments, dict):
        attachments = [attachments]
    fields = []
    for item in attachments if isinstance(attachments, list) else []:
        if not isinstance(item, dict) or item.get("type") != "PropertyValue":
            continue
        name, value = item.get("name"), item.get("value")
        if isinstance(name, str) and isinstance(value, str):
            fields.append({"name": plain_label(name, 255),
                           "value": value if acct.local else clean_html(value),
                           "verified_at": None})  # fmt: skip
    return fields


def _account_json(rt: Runtime, acct: Account, counts: _Counts) -> dict[str, Any]:
    avatar = safe_link(acct.avatar_url) or rt.urls.base + MISSING_AVATAR
    header = safe_link(acct.header_url) or rt.urls.base + MISSING_HEADER
    created = acct.created_at.astimezone(UTC)
    data: dict[str, Any] = {
        "id": str(acct.id),
        "username": acct.username,
        "acct": acct_of(acct),
        "display_name": acct.display_name or "",
        "locked": acct.manually_approves_followers,
        "bot": acct.bot or acct.kind in ("Service", "Application"),
        "discoverable": acct.discoverable,
        "indexable": acct.discoverable,
        "group": acct.kind == "Group",
        "created_at": iso(created.replace(hour=0, minute=0, second=0, microsecond=0)),
        "note": bio_html(acct),
        "url": _profile_url(rt, acct),
        "uri": acct.uri,
        "avatar": avatar,
        "avatar_static": avatar,
        "header": header,
        "header_static": header,
        "followers_count": counts.followers,
        "following_count": counts.following,
        "statuses_count": counts.statuses,
        "last_status_at": (
            counts.last_status_at.astimezone(UTC).date().isoformat()
            if counts.last_status_at
            else None
        ),
        "hide_collections": False,
        "noindex": not acct.discoverable,
        "emojis": [],
        "roles": [],
        "fields": _fields(rt, acct),
    }
    if acct.suspended_at is not None:
        data["suspended"] = True
    return data


async def accounts(
    rt: Runtime, session: AsyncSession, accts: Sequence[Account]
) -> list[dict[str, Any]]:
    """Mastodon's Account of each row, in order (its counters: 3 queries for them all)."""
    counts = await _counts(session, {a.id for a in accts})
    return [_account_json(rt, a, counts.get(a.id, _Counts())) for a in accts]


async def account(rt: Runtime, session: AsyncSession, acct: Account) -> dict[str, Any]:
    (data,) = await accounts(rt, session, [acct])
    return data


# -- statuses ------------------------------------------------------------------------------
@dataclass
class _Batch:
    """Everything the Statuses of a batch of posts need, loaded once."""

    rt: Runtime
    viewer: Account | None
    posts: dict[int, Post] = field(default_factory=dict)
    accounts: dict[int, dict[str, Any]] = field(default_factory=dict)
    media: dict[int, list[MediaAttachment]] = field(default_factory=dict)
    mentions: dict[int, list[Account]] = field(default_factory=dict)
    tags: dict[int, list[str]] = field(default_factory=dict)
    replied: dict[int, tuple[str, int]] = field(default_factory=dict)  # id -> public, author
    quoted_visible: set[int] = field(default_factory=set)
    shallow: dict[int, Post] = field(default_factory=dict)  # quotes of quoted posts
    quotes_count: dict[int, int] = field(default_factory=dict)
    liked: set[int] = field(default_factory=set)
    boosted: set[int] = field(default_factory=set)

    @classmethod
    async def load(
        cls,
        rt: Runtime,
        session: AsyncSession,
        posts: Sequence[Post],
        viewer: Account | None,
        more_accounts: Sequence[int] = (),
    ) -> _Batch:
        batch = cls(rt, viewer, {p.id: p for p in posts})
        top = list(batch.posts.values())
        # the posts they quote: a full Status when the viewer may see them
        quoted_ids = {p.quote_id for p in top if p.quote_id} - set(batch.posts)
        if quoted_ids:
            for q in await session.scalars(select(Post).where(Post.id.in_(quoted_ids))):
                batch.posts[q.id] = q
        quoted_ids = {p.quote_id for p in top if p.quote_id}
        if quoted_ids:
            batch.quoted_visible = set(
                await session.scalars(
                    select(Post.id).where(
                        Post.id.in_(quoted_ids), Post.deleted_at.is_(None), readable(viewer),
                        shown_author(), shown_domain(),
                    )
                )
            )  # fmt: skip
        # a quoted post's own quote is only named (ShallowQuote): its public id
        nested = {
            batch.posts[i].quote_id for i in quoted_ids if i in batch.posts
        } - {None} - set(batch.posts)  # fmt: skip
        if nested:
            found = await session.scalars(select(Post).where(Post.id.in_(nested)))
            batch.shallow = {p.id: p for p in found}
        ids = set(batch.posts)
        every = list(batch.posts.values())
        # the posts replied to: their public id and author
        reply_ids = {p.in_reply_to_id for p in every if p.in_reply_to_id}
        if reply_ids:
            rows = await session.execute(
                select(Post.id, Post.public_id, Post.account_id).where(Post.id.in_(reply_ids))
            )
            batch.replied = {i: (public, author) for i, public, author in rows}
        # mentions (the accounts, for their handles), hashtags, attachments
        for post_id, mentioned in await session.execute(
            select(Mention.post_id, Account)
            .join(Account, Account.id == Mention.account_id)
            .where(Mention.post_id.in_(ids))
            .order_by(Account.id)
        ):
            batch.mentions.setdefault(post_id, []).append(mentioned)
        for post_id, name in await session.execute(
            select(PostTag.post_id, PostTag.name).where(PostTag.post_id.in_(ids))
            .order_by(PostTag.name)
        ):  # fmt: skip
            batch.tags.setdefault(post_id, []).append(name)
        for m in await session.scalars(
            select(MediaAttachment).where(MediaAttachment.post_id.in_(ids))
            .order_by(MediaAttachment.post_id, MediaAttachment.position, MediaAttachment.id)
        ):  # fmt: skip
            batch.media.setdefault(m.post_id or 0, []).append(m)
        # authors (and boosters) with their counters
        author_ids = {p.account_id for p in every} | set(more_accounts)
        authors = list(await session.scalars(select(Account).where(Account.id.in_(author_ids))))
        batch.accounts = {
            a.id: data
            for a, data in zip(authors, await accounts(rt, session, authors), strict=True)
        }
        # approved quotes of each post
        batch.quotes_count = {
            quoted: int(n)
            for quoted, n in await session.execute(
                select(Post.quote_id, func.count())
                .where(Post.quote_id.in_(ids), Post.deleted_at.is_(None), _counted_quote())
                .group_by(Post.quote_id)
            )
            if quoted is not None
        }
        if viewer is not None:
            batch.liked = set(
                await session.scalars(
                    select(Like.post_id).where(Like.account_id == viewer.id, Like.post_id.in_(ids))
                )
            )
            batch.boosted = set(
                await session.scalars(
                    select(Boost.post_id).where(
                        Boost.account_id == viewer.id, Boost.post_id.in_(ids)
                    )
                )
            )
        return batch

    # -- building --------------------------------------------------------------------------
    def status(self, post: Post, *, nested: bool = False) -> dict[str, Any]:
        rt, viewer = self.rt, self.viewer
        mine = viewer is not None and viewer.id == post.account_id
        replied = self.replied.get(post.in_reply_to_id) if post.in_reply_to_id else None
        data: dict[str, Any] = {
            "id": post.public_id,
            "uri": post.uri,
            "url": safe_link(post.url, safe_link(post.uri)) or post.uri,
            "created_at": iso(post.published),
            "edited_at": _iso_or_none(post.edited_at),
            "account": self.accounts[post.account_id],
            "content": post.content or "",
            "text": post.source if mine and post.local else None,
            "visibility": api_visibility(post.visibility),
            "sensitive": post.sensitive or bool(post.summary),
            "spoiler_text": _spoiler(post),
            "language": post.language,
            "media_attachments": [media_attachment(rt, m) for m in self.media.get(post.id, [])],
            "application": None,
            "mentions": [self._mention(a) for a in self.mentions.get(post.id, [])],
            "tags": [{"name": n, "url": rt.urls.tag(n)} for n in self.tags.get(post.id, [])],
            "emojis": [],
            "reblogs_count": post.boosts_count,
            "favourites_count": post.likes_count,
            "replies_count": post.replies_count,
            "quotes_count": self.quotes_count.get(post.id, 0),
            "in_reply_to_id": replied[0] if replied else None,
            "in_reply_to_account_id": str(replied[1]) if replied else None,
            "reblog": None,
            "poll": None,
            "card": None,
            "quote": self._shallow_quote(post) if nested else self._quote(post),
            "quote_approval": self._quote_approval(post),
        }
        if viewer is not None:
            data.update(
                favourited=post.id in self.liked,
                reblogged=post.id in self.boosted,
                muted=False,
                bookmarked=False,
                filtered=[],
            )
            if mine and post.local:
                data["pinned"] = post.pinned_at is not None
        return data

    def reblog(self, boost: Boost) -> dict[str, Any] | None:
        post = self.posts.get(boost.post_id)
        if post is None:
            return None
        inner = self.status(post)
        data: dict[str, Any] = {
            "id": boost.public_id,
            "uri": boost.uri,
            "url": None,
            "created_at": iso(boost.published),
            "edited_at": None,
            "account": self.accounts[boost.account_id],
            "content": "",
            "text": None,
            "visibility": "public",  # a boost is addressed to Public (content/actions.py)
            "sensitive": False,
            "spoiler_text": "",
            "language": None,
            "media_attachments": [],
            "application": None,
            "mentions": [],
            "tags": [],
            "emojis": [],
            "reblogs_count": 0,
            "favourites_count": 0,
            "replies_count": 0,
            "quotes_count": 0,
            "in_reply_to_id": None,
            "in_reply_to_account_id": None,
            "reblog": inner,
            "poll": None,
            "card": None,
            "quote": None,
            "quote_approval": {"automatic": [], "manual": [], "current_user": "denied"},
        }
        if self.viewer is not None:
            data.update({k: inner[k] for k in ("favourited", "reblogged", "muted", "bookmarked")})
            data["filtered"] = []
        return data

    def _mention(self, acct: Account) -> dict[str, Any]:
        return {"id": str(acct.id), "username": acct.username,
                "url": _profile_url(self.rt, acct), "acct": acct_of(acct)}  # fmt: skip

    def _quote(self, post: Post) -> dict[str, Any] | None:
        state = quote_state(post)
        if state is None:
            return None
        quoted = self.posts.get(post.quote_id) if post.quote_id else None
        if state == "accepted":
            if quoted is None or quoted.deleted_at is not None:
                state = "deleted"
            elif quoted.id not in self.quoted_visible:
                state = "unauthorized"
        shown = state == "accepted" and quoted is not None
        return {"state": state, "quoted_status": self.status(quoted, nested=True)
                if shown and quoted is not None else None}  # fmt: skip

    def _shallow_quote(self, post: Post) -> dict[str, Any] | None:
        state = quote_state(post)
        if state is None:
            return None
        quoted = None
        if post.quote_id is not None:
            quoted = self.posts.get(post.quote_id) or self.shallow.get(post.quote_id)
        if state == "accepted" and (quoted is None or quoted.deleted_at is not None):
            state = "deleted"
        shown = state == "accepted" and quoted is not None
        return {"state": state,
                "quoted_status_id": quoted.public_id if shown and quoted else None}  # fmt: skip

    def _quote_approval(self, post: Post) -> dict[str, Any]:
        """Mastodon 4.5's QuoteApproval: who may quote this post, and whether the viewer may."""
        if not can_quote(post) or post.deleted_at is not None:
            return {"automatic": [], "manual": [], "current_user": "denied"}
        if not post.local:  # the post's own server decides
            return {"automatic": [], "manual": [], "current_user": "unknown"}
        you = "automatic" if self.viewer is not None else "unknown"
        return {"automatic": ["public"], "manual": [], "current_user": you}


def _counted_quote() -> ColumnElement[bool]:
    """Quotes that count in `quotes_count`: accepted ones (a remote post's `quote_id` is set
    only with a verified stamp; ours keep it while pending or as a link)."""
    return or_(Post.local.is_(False), Post.quote_state.in_(("accepted", "unapproved")))


def quote_state(post: Post) -> str | None:
    """The Mastodon quote state of a post's quote before the quoted post is looked at (the
    mapping: the module docstring); None when the post quotes nothing."""
    if post.quote_uri is None and post.quote_id is None:
        return None
    if post.local:
        return {
            "accepted": "accepted", "unapproved": "accepted", "pending": "pending",
            "link": "rejected",
        }.get(post.quote_state or "", "pending")  # fmt: skip
    return "accepted" if post.quote_id is not None else "pending"


def _spoiler(post: Post) -> str:
    """The content warning as text (a remote one is stored HTML-escaped, as cards read it)."""
    if post.local:
        return post.summary or ""
    return html.unescape(post.summary or "")


async def statuses(
    rt: Runtime, session: AsyncSession, posts: Sequence[Post], viewer: Account | None
) -> list[dict[str, Any]]:
    """Mastodon's Status of each post, in order, as `viewer` (None: anonymous) sees it."""
    batch = await _Batch.load(rt, session, posts, viewer)
    return [batch.status(p) for p in posts]


async def status(
    rt: Runtime, session: AsyncSession, post: Post, viewer: Account | None
) -> dict[str, Any]:
    (data,) = await statuses(rt, session, [post], viewer)
    return data


async def timeline(
    rt: Runtime, session: AsyncSession, items: Sequence[Post | Boost], viewer: Account | None
) -> list[dict[str, Any]]:
    """Statuses of posts and boosts mixed, in order (a boost: its reblog Status). A boost
    whose post no longer exists is left out."""
    posts = [i for i in items if isinstance(i, Post)]
    boosts = [i for i in items if isinstance(i, Boost)]
    have = {p.id for p in posts}
    wanted = {b.post_id for b in boosts} - have
    boosted = list(await session.scalars(select(Post).where(Post.id.in_(wanted)))) if wanted else []
    batch = await _Batch.load(rt, session, [*posts, *boosted], viewer,
                              more_accounts=[b.account_id for b in boosts])  # fmt: skip
    out = []
    for item in items:
        data = batch.reblog(item) if isinstance(item, Boost) else batch.status(item)
        if data is not None:
            out.append(data)
    return out


async def reblog_status(
    rt: Runtime, session: AsyncSession, boost: Boost, viewer: Account | None
) -> dict[str, Any]:
    """One boost as its reblog Status (`reblog`: the boosted post's Status)."""
    found = await timeline(rt, session, [boost], viewer)
    if not found:
        raise LookupError(f"the boosted post of boost {boost.id} is gone")
    return found[0]


# -- notifications -------------------------------------------------------------------------
async def notifications(
    rt: Runtime, session: AsyncSession, rows: Sequence[Notification], viewer: Account
) -> list[dict[str, Any]]:
    """Mastodon's Notification of each row, in order. A notification about a post carries
    its Status; one whose post is gone (deleted, or its row removed) is left out, as
    Mastodon drops the notifications of a deleted status."""
    sender_ids = {n.from_account_id for n in rows}
    senders = list(await session.scalars(select(Account).where(Account.id.in_(sender_ids))))
    by_id = dict(zip((a.id for a in senders), await accounts(rt, session, senders), strict=True))
    post_ids = {n.post_id for n in rows if n.post_id is not None}
    posts = (
        list(await session.scalars(select(Post).where(Post.id.in_(post_ids)))) if post_ids else []
    )
    batch = await _Batch.load(rt, session, posts, viewer)
    out = []
    for n in rows:
        kind = NOTIFICATION_TYPES.get(n.kind, n.kind)
        sender = by_id.get(n.from_account_id)
        if sender is None:
            continue
        data: dict[str, Any] = {
            "id": str(n.id),
            "type": kind,
            "created_at": iso(n.created_at),
            "group_key": f"ungrouped-{n.id}",
            "account": sender,
        }
        if kind in STATUS_TYPES:
            post = batch.posts.get(n.post_id) if n.post_id is not None else None
            if post is None or post.deleted_at is not None:
                continue
            data["status"] = batch.status(post)
        out.append(data)
    return out
