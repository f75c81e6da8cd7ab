"""Our post rows -> the Note and Create JSON we send and serve (shapes: activitypub/notes.py)."""

from __future__ import annotations

from typing import Any

from activitypub.notes import QuoteForm, build_image, build_note, build_note_create
from instance.content.visibility import can_quote
from instance.storage.models import Account, MediaAttachment, Post
from instance.urls import LocalUrls

QUOTE_FORMS: dict[str | None, QuoteForm] = {
    "accepted": "approved", "pending": "asking", "unapproved": "unapproved",
}  # fmt: skip
"""How a remix in each quote state is sent; "link" (refused, unanswered) is a plain link."""


def attachment_json(media: MediaAttachment, urls: LocalUrls) -> dict[str, Any]:
    return build_image(
        url=urls.media(media.file_name) if media.file_name else media.remote_url,
        media_type=media.media_type,
        alt=media.description or "",
        blurhash=media.blurhash,
        width=media.width,
        height=media.height,
        focal=(media.focal_x, media.focal_y),
    )


def note_json(
    post: Post,
    author: Account,
    media: list[MediaAttachment],
    urls: LocalUrls,
    *,
    with_context: bool = True,
) -> dict[str, Any]:
    """The Note of a local post. A remix is a quote while we ask its parent's author for
    approval, once they gave it, and when their server cannot approve quotes; refused or
    unanswered, a plain remix link."""
    quote = QUOTE_FORMS.get(post.quote_state) if post.quote_uri else None
    if quote == "approved" and not post.quote_authorization_uri:
        quote = None  # never claimed as approved without the stamp
    return build_note(
        note_id=post.uri,
        author=author.uri,
        url=post.url,
        published=post.published,
        to=post.to,
        cc=post.cc,
        content=post.content,
        sensitive=post.sensitive,
        summary=post.summary,
        language=post.language,
        attachments=[attachment_json(m, urls) for m in media],
        tags=post.tags or [],
        in_reply_to=post.in_reply_to_uri,
        likes=post.likes_count,
        shares=post.boosts_count,
        updated=post.edited_at,
        recipe=post.recipe,
        remix_of=post.quote_uri,
        quote=quote,
        quote_authorization=post.quote_authorization_uri if quote == "approved" else None,
        quotable=can_quote(post),
        with_context=with_context,
    )


def create_json(post: Post, note: dict[str, Any]) -> dict[str, Any]:
    """The Create of a post's Note; its id is the post's `/activity` URL."""
    return build_note_create(f"{post.uri}/activity", note)
