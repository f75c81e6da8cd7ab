"""Plain text a local author (or a prompt) wrote -> the HTML of a Note, with its tags; and
HTML back to plain text.

`render` escapes everything, keeps paragraphs and line breaks, and links URLs, #hashtags
(each also listed as a Hashtag tag, which is how Mastodon indexes them) and @mentions that
were resolved to actors (each also a Mention tag, which is how the mentioned server learns
that its user was mentioned and notifies them).
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from activitypub.urls import safe_link
from instance.urls import LocalUrls

TOKEN = re.compile(
    r"(?P<url>https?://[^\s<>\"']+[^\s<>\"'.,;:!?)\]])"
    r"|(?<![\w@/])#(?P<tag>[^\W\d_][\w]{0,99})"
    r"|(?<![\w@/])@(?P<mention>[a-zA-Z0-9_.-]+(?:@[a-zA-Z0-9.-]+(?::\d+)?)?)"
)


@dataclass(frozen=True)
class MentionTarget:
    actor_uri: str
    profile_url: str
    handle: str  # "@user@host"


@dataclass
class Rendered:
    html: str
    tags: list[dict[str, Any]] = field(default_factory=list)
    hashtags: list[str] = field(default_factory=list)
    mentioned: list[str] = field(default_factory=list)  # actor URIs


_TAGS = re.compile(r"<[^>]+>")


def plain_text(markup: str) -> str:
    """The text of a post's HTML: tags dropped, paragraphs as new lines, entities decoded."""
    return html.unescape(_TAGS.sub(" ", markup.replace("</p><p>", "\n"))).strip()


def mention_handles(text: str) -> list[str]:
    """The @user@host handles in a text, in order, without duplicates."""
    seen: list[str] = []
    for match in TOKEN.finditer(text):
        handle = match["mention"]
        if handle and "@" in handle and handle.lower() not in (h.lower() for h in seen):
            seen.append(handle)
    return seen


def render(
    text: str, urls: LocalUrls, mentions: Mapping[str, MentionTarget] | None = None
) -> Rendered:
    """`mentions` maps a handle as written ("user@host", any case) to its resolved actor."""
    out = Rendered("")
    lowered = {k.lower(): v for k, v in (mentions or {}).items()}

    def replace(match: re.Match[str]) -> str:
        if match["url"]:
            url = html.escape(match["url"])
            return f'<a href="{url}" rel="nofollow noopener" target="_blank">{url}</a>'
        if match["tag"]:
            name = match["tag"]
            href = urls.tag(name.lower())
            if name.lower() not in out.hashtags:
                out.hashtags.append(name.lower())
                out.tags.append({"type": "Hashtag", "name": f"#{name.lower()}", "href": href})
            return (
                f'<a href="{html.escape(href)}" class="mention hashtag" rel="tag">'
                f"#<span>{html.escape(name)}</span></a>"
            )
        target = lowered.get(match["mention"].lower())
        if target is None:
            return html.escape(match.group(0))
        if target.actor_uri not in out.mentioned:
            out.mentioned.append(target.actor_uri)
            out.tags.append({"type": "Mention", "href": target.actor_uri, "name": target.handle})
        user = html.escape(target.handle.lstrip("@").split("@")[0])
        href = safe_link(target.profile_url, safe_link(target.actor_uri)) or ""
        return (
            f'<span class="h-card"><a href="{html.escape(href)}" '
            f'class="u-url mention">@<span>{user}</span></a></span>'
        )

    paragraphs = []
    for block in re.split(r"\n\s*\n", text.strip()):
        lines = []
        for line in block.split("\n"):
            pieces, last = [], 0
            for match in TOKEN.finditer(line):
                pieces.append(html.escape(line[last : match.start()]))
                pieces.append(replace(match))
                last = match.end()
            pieces.append(html.escape(line[last:]))
            lines.append("".join(pieces))
        paragraphs.append(f"<p>{'<br>'.join(lines)}</p>")
    out.html = "".join(p for p in paragraphs if p != "<p></p>")
    return out
