"""Link previews: the OpenGraph and Twitter card `<meta>` tags of post and profile pages, so
a link shared on Mastodon (or elsewhere) previews as the picture, its prompt and its AI label.

The rule: only what anyone may see goes into a preview. A post page gets tags only when the
post is public (followers-only, direct and unlisted posts get none: a preview is fetched by a
crawler, and a link pasted into another app must not carry a private picture or prompt); a
sensitive post's preview has no image and its content warning instead of the prompt. A
profile's preview shows its avatar, or else its latest *public* image, never one the
logged-in viewer happens to be allowed to see. Values are plain text; the template
(preview_tags.html) autoescapes them into the `content` attribute.
"""

from __future__ import annotations

from typing import Any

from instance.content.sanitize import plain_label
from instance.content.text import plain_text
from instance.runtime import Runtime
from instance.storage.models import Account, Post

Tags = list[tuple[str, str]]
DESCRIPTION_LIMIT = 300
AI_LABEL = "AI-generated image"
AVATAR_SIZE = (400, 400)  # instance/content/pictures.py stores avatars at this size


def post_tags(rt: Runtime, post: Post, author: Account, view: dict[str, Any]) -> Tags:
    """The preview of a post page (see the module docstring); [] for a non-public post."""
    if post.visibility != "public" or post.deleted_at is not None:
        return []
    name = view["author_name"]
    prompt = (post.recipe or {}).get("prompt") or plain_text(post.content or "")
    if view["sensitive"]:
        described = f"Content warning: {view['summary'] or 'sensitive image'}"
    else:
        described = f"{AI_LABEL}: {prompt}" if view["ai"] else prompt
    tags: Tags = [
        ("og:type", "article"),
        ("og:site_name", rt.settings.instance.name),
        ("og:title", f"{name} ({view['author']})"),
        ("og:description", plain_label(described, DESCRIPTION_LIMIT)),
        ("og:url", view["url"]),
    ]
    media = view["media"][0] if view["media"] and not view["sensitive"] else None
    return tags + _image(media)


def profile_tags(rt: Runtime, account: Account, views: list[dict[str, Any]]) -> Tags:
    """The preview of a profile page: name, bio (with the AI account label), avatar or the
    latest public image (`views` are the page's cards; only public, unflagged ones count)."""
    bio = plain_text(account.summary or "")
    label = "AI account" if account.kind == "Service" else ""
    described = " · ".join(part for part in (label, bio) if part) or f"@{account.username}"
    tags: Tags = [
        ("og:type", "profile"),
        ("og:site_name", rt.settings.instance.name),
        ("og:title", f"{account.display_name or account.username} ({rt.urls.handle(account)})"),
        ("og:description", plain_label(described, DESCRIPTION_LIMIT)),
        ("og:url", account.url or account.uri),
        ("profile:username", account.username),
    ]
    if account.avatar_url and account.avatar_url.startswith(rt.urls.media("")):
        width, height = AVATAR_SIZE
        alt = f"Avatar of {account.display_name or account.username}"
        avatar = {"src": account.avatar_url, "width": width, "height": height, "description": alt}
        return tags + _image(avatar)
    shown = [v for v in views if v["visibility"] == "public" and not v["sensitive"]]
    public = next((v["media"][0] for v in shown if v["media"]), None)
    return tags + _image(public)


def _image(media: dict[str, Any] | None) -> Tags:
    if media is None:
        return [("twitter:card", "summary")]
    tags: Tags = [("og:image", media["src"])]
    if media.get("width") and media.get("height"):
        tags += [("og:image:width", str(media["width"])), ("og:image:height", str(media["height"]))]
    alt = plain_label(media.get("description") or "", DESCRIPTION_LIMIT)
    if alt:
        tags.append(("og:image:alt", alt))
    tags += [("twitter:card", "summary_large_image"), ("twitter:image", media["src"])]
    if alt:
        tags.append(("twitter:image:alt", alt))
    return tags
