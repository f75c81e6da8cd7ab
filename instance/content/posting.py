"""Create, edit and delete local posts: the row, the local surfacing, the federation.

`publish()` writes the post with its media, tags and mentions, notifies local accounts, and
enqueues one Create to the followers and to everyone the post mentions or replies to (the
mentioned server notifies its user only when it receives the post), all in the caller's
transaction, so the post and its deliveries commit together. `edit()` sends an Update whose
Note carries `updated` (Mastodon ignores an edit without it); `delete()` sends a Delete of a
Tombstone to everyone who received the post, whose URL then answers 410 Gone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete as delete_rows
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from activitypub import addressing as audience
from activitypub.addressing import Visibility
from activitypub.notes import NOTE_CONTEXT
from activitypub.objects import build_delete, build_update
from activitypub.urls import safe_link
from instance.content.ai_label import ai_labelled
from instance.content.counters import recount
from instance.content.notes import create_json, note_json
from instance.content.notifications import notify
from instance.content.text import TOKEN, MentionTarget, Rendered, mention_handles, render
from instance.content.visibility import VISIBILITIES
from instance.errors import PostingError
from instance.outbound.fanout import enqueue
from instance.runtime import Runtime
from instance.storage.ids import new_public_id
from instance.storage.models import (
    Account,
    MediaAttachment,
    Mention,
    NotificationKind,
    Post,
    PostTag,
    QuoteState,
)
from instance.urls import LocalUrls

MAX_MEDIA = 4  # the most images Mastodon and Pixelfed show on one post


MAX_SUMMARY = 500
MAX_TEXT = 4000  # the characters of a post's text (the web forms' maxlength), counted as below
URL_CHARACTERS = 23  # a link counts as this many however long it is, as Mastodon counts
MAX_LANGUAGE = 16  # the posts.language column
LANGUAGE = re.compile(r"[a-z]{2,3}(-[a-z0-9]{2,8})*", re.IGNORECASE)  # BCP 47, as Mastodon takes


def content_warning(text: str | None) -> str | None:
    """A content warning as typed: stripped, at most MAX_SUMMARY characters; "" is none."""
    cleaned = (text or "").strip()
    if len(cleaned) > MAX_SUMMARY:
        raise PostingError(f"content warning too long (at most {MAX_SUMMARY} characters)")
    return cleaned or None


def text_length(text: str) -> int:
    """A post's length as Mastodon counts it (and clients show it): each link is
    URL_CHARACTERS, a mention `@user@host` counts only `@user`."""
    length, last = 0, 0
    for token in TOKEN.finditer(text):
        length += token.start() - last
        last = token.end()
        if token["url"]:
            length += URL_CHARACTERS
        elif token["mention"]:
            length += 1 + len(token["mention"].split("@")[0])
        else:
            length += token.end() - token.start()
    return length + len(text) - last


def check_text(text: str) -> None:
    """PostingError for a text longer than MAX_TEXT (as text_length counts it)."""
    if text_length(text) > MAX_TEXT:
        raise PostingError(f"text too long (at most {MAX_TEXT} characters)")


def language_code(code: str) -> str:
    """A post's language ("en", "pt-BR"); PostingError for anything else."""
    cleaned = code.strip()
    if not LANGUAGE.fullmatch(cleaned) or len(cleaned) > MAX_LANGUAGE:
        raise PostingError(f"{code!r} is not a language code (like en, de or pt-BR)")
    return cleaned


@dataclass
class Draft:
    text: str
    visibility: Visibility = "public"
    summary: str | None = None  # content warning
    sensitive: bool = False
    language: str | None = "en"
    media: list[MediaAttachment] = field(default_factory=list)  # unattached rows
    mentions: list[Account] = field(default_factory=list)
    in_reply_to: Post | None = None
    quote: Post | None = None  # the remix parent
    quote_state: QuoteState | None = None
    quote_authorization_uri: str | None = None
    recipe: dict[str, Any] | None = None
    extra_tags: list[dict[str, Any]] = field(default_factory=list)
    prefix_html: str = ""  # e.g. the visible "remix of" line
    suffix_html: str = ""  # e.g. the quote-inline "RE:" fallback


def addressing(
    visibility: str, author: Account, mentioned: list[str]
) -> tuple[list[str], list[str]]:
    """`to`/`cc` for each visibility (the full Public IRI; mentioned actors always addressed)."""
    followers = author.followers_uri or ""
    audiences = {
        "public": lambda: audience.public(followers, mentioned),
        "unlisted": lambda: audience.unlisted(followers, mentioned),
        "followers": lambda: audience.followers_only(followers, mentioned),
        "direct": lambda: audience.direct(mentioned),
    }
    if visibility not in audiences:
        raise PostingError(
            f"unknown visibility {visibility!r} (use one of {', '.join(VISIBILITIES)})"
        )
    chosen = audiences[visibility]()
    return list(chosen.to), list(chosen.cc)


async def publish(
    session: AsyncSession, rt: Runtime, author: Account, draft: Draft, *, federate: bool = True
) -> Post:
    """Write a local post and (unless `federate=False`) enqueue its Create. The caller
    commits."""
    urls = rt.urls
    addressing(draft.visibility, author, [])  # an unknown visibility fails before any write
    check_text(draft.text)
    if len(draft.media) > MAX_MEDIA:
        raise PostingError(f"at most {MAX_MEDIA} images per post")
    parent = draft.in_reply_to
    parent_author = await session.get(Account, parent.account_id) if parent else None
    mentions: list[Account] = []
    for who in (*draft.mentions, parent_author, await _quote_author(session, draft)):
        if who is not None and who.id != author.id and who.id not in {m.id for m in mentions}:
            mentions.append(who)
    # a post of a generated image (it has a recipe) says so (instance/content/ai_label.py)
    text = ai_labelled(draft.text, rt.settings) if draft.recipe else draft.text
    rendered = _render(text, urls, mentions)
    to, cc = addressing(draft.visibility, author, [a.uri for a in mentions])
    public_id = new_public_id()
    post = Post(
        public_id=public_id,
        uri=urls.post(author.username, public_id),
        url=urls.post_page(author.username, public_id),
        account_id=author.id,
        local=True,
        content=draft.prefix_html + rendered.html + draft.suffix_html,
        source=draft.text,
        summary=draft.summary,
        sensitive=draft.sensitive or bool(draft.summary),
        visibility=draft.visibility,
        language=draft.language,
        to=to,
        cc=cc,
        tags=rendered.tags + draft.extra_tags,
        in_reply_to_uri=parent.uri if parent else None,
        in_reply_to_id=parent.id if parent else None,
        quote_uri=draft.quote.uri if draft.quote else None,
        quote_id=draft.quote.id if draft.quote else None,
        quote_state=draft.quote_state,
        quote_authorization_uri=draft.quote_authorization_uri,
        recipe=draft.recipe,
        published=rt.now(),
    )
    session.add(post)
    await session.flush()
    for position, media in enumerate(draft.media):
        media.post_id, media.position = post.id, position
    session.add_all(PostTag(post_id=post.id, name=name) for name in rendered.hashtags)
    session.add_all(Mention(post_id=post.id, account_id=a.id) for a in mentions)
    if parent is not None:
        await session.flush()
        await recount(session, parent.id)
    await _surface(session, rt, author, post, mentions, parent_author, draft)
    if federate:
        await federate_post(session, rt, author, post, draft.media, mentions)
    return post


def _render(text: str, urls: LocalUrls, mentions: list[Account]) -> Rendered:
    """The post's HTML and tags; each mentioned account is mentioned in the text too (replies
    and remixes name the author), so its Mention tag is there."""
    targets = {
        urls.handle(a).lstrip("@"): MentionTarget(a.uri, safe_link(a.url, a.uri) or a.uri,
                                                  urls.handle(a))
        for a in mentions
    }  # fmt: skip
    for handle in targets:
        if f"@{handle}".lower() not in text.lower():
            text = f"@{handle} {text}"
    return render(text, urls, targets)


async def federate_post(
    session: AsyncSession,
    rt: Runtime,
    author: Account,
    post: Post,
    media: list[MediaAttachment] | None = None,
    mentions: list[Account] | None = None,
) -> None:
    """Enqueue the Create of a stored post: to followers (unless direct) and to the remote
    accounts it mentions. Remixes waiting for a quote approval call this once the approval
    (or its refusal) is known."""
    if media is None:
        media = await load_media(session, post)
    if mentions is None:
        mentions = await mentioned(session, post)
    note = note_json(post, author, media, rt.urls, with_context=False)
    await enqueue(
        session, rt, author, create_json(post, note),
        to=mentions, to_followers=post.visibility != "direct", object_uri=post.uri,
    )  # fmt: skip


async def _quote_author(session: AsyncSession, draft: Draft) -> Account | None:
    return await session.get(Account, draft.quote.account_id) if draft.quote else None


async def _surface(
    session: AsyncSession,
    rt: Runtime,
    author: Account,
    post: Post,
    mentions: list[Account],
    parent_author: Account | None,
    draft: Draft,
) -> None:
    """Local notifications for a new post: surface it here first, then federate it."""
    for account in mentions:
        kind: NotificationKind = "mention"
        if parent_author is not None and account.id == parent_author.id:
            kind = "reply"
        elif draft.quote is not None and account.id == draft.quote.account_id:
            kind = "remix"
        await notify(session, recipient=account, kind=kind, sender=author, post=post,
                     now=rt.now())  # fmt: skip


async def load_media(session: AsyncSession, post: Post) -> list[MediaAttachment]:
    rows = await session.scalars(
        select(MediaAttachment)
        .where(MediaAttachment.post_id == post.id)
        .order_by(MediaAttachment.position)
    )
    return list(rows)


async def mentioned_accounts(session: AsyncSession, urls: LocalUrls, text: str) -> list[Account]:
    """The accounts a typed text mentions as `@user@host` that this instance knows: ours
    (by our host) and remote ones already fetched, in order (others stay plain text)."""
    found: list[Account] = []
    for handle in mention_handles(text):
        user, _, host = handle.rpartition("@")
        domain = "" if host.lower() == urls.host.lower() else host.lower()
        account = await session.scalar(
            select(Account).where(
                Account.username_key == user.casefold(), Account.domain == domain,
                Account.deleted_at.is_(None), Account.suspended_at.is_(None),
            )
        )  # fmt: skip
        if account is not None and account.id not in {a.id for a in found}:
            found.append(account)
    return found


async def mentioned(session: AsyncSession, post: Post) -> list[Account]:
    """The remote accounts a post mentions (its followers are reached through the fan-out)."""
    rows = await session.scalars(
        select(Account)
        .join(Mention, Mention.account_id == Account.id)
        .where(Mention.post_id == post.id, Account.local.is_(False))
    )
    return list(rows)


async def edit(
    session: AsyncSession,
    rt: Runtime,
    author: Account,
    post: Post,
    *,
    text: str,
    summary: str | None = None,
    sensitive: bool | None = None,
    language: str | None = None,
) -> Post:
    """Change a post's text (and, when given, its content warning: "" removes it, its
    sensitive flag and language) and send Update{Note} with `updated`."""
    if post.account_id != author.id or not post.local:
        raise PostingError("only the author can edit a post")
    if post.deleted_at is not None:
        raise PostingError("a deleted post cannot be edited")
    check_text(text)
    if summary is not None:
        post.summary = content_warning(summary)
    if sensitive is not None or summary is not None:
        post.sensitive = bool(sensitive) or bool(post.summary)
    if language is not None:
        post.language = language_code(language)
    rendered = _render(text, rt.urls, await mentioned(session, post))
    post.source = text
    post.content = rendered.html
    # the Update lists the tags of the new text (a removed hashtag is gone), and keeps the
    # others (a quote's Link tag)
    kept = [t for t in post.tags or [] if t.get("type") not in ("Hashtag", "Mention")]
    post.tags = rendered.tags + kept
    await session.execute(delete_rows(PostTag).where(PostTag.post_id == post.id))
    session.add_all(PostTag(post_id=post.id, name=name) for name in rendered.hashtags)
    post.edited_at = rt.now()
    await federate_update(session, rt, author, post)
    return post


async def federate_update(session: AsyncSession, rt: Runtime, author: Account, post: Post) -> None:
    """Send Update{Note} of the post as it is now to everyone who received it."""
    note = note_json(post, author, await load_media(session, post), rt.urls, with_context=False)
    activity = build_update(
        activity_id=rt.urls.activity(author.username, new_public_id()),
        actor=author.uri,
        obj={"@context": NOTE_CONTEXT, **note},
    )
    await enqueue(
        session, rt, author, activity, to=await mentioned(session, post),
        to_followers=post.visibility != "direct", object_uri=post.uri,
    )  # fmt: skip


async def delete(session: AsyncSession, rt: Runtime, author: Account, post: Post) -> None:
    """Tombstone the post and send Delete to everyone who received it."""
    if post.account_id != author.id or not post.local:
        raise PostingError("only the author can delete a post")
    if post.deleted_at is not None:
        return
    post.deleted_at = rt.now()
    if post.in_reply_to_id is not None:  # the parent's replies_count counts live replies
        await session.flush()
        await recount(session, post.in_reply_to_id)
    activity = build_delete(
        activity_id=rt.urls.activity(author.username, new_public_id()),
        actor=author.uri,
        object_id=post.uri,
        to=list(post.to),
        cc=list(post.cc),
    )
    await enqueue(
        session, rt, author, activity, to=await mentioned(session, post),
        to_followers=post.visibility != "direct", object_uri=post.uri,
    )  # fmt: skip
