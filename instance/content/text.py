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
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from html.parser import HTMLParser
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


_BLOCKS = frozenset({"p", "br", "li", "ul", "ol", "blockquote", "pre",
                     "h1", "h2", "h3", "h4", "h5", "h6"})  # fmt: skip


class _TextOf(HTMLParser):
    """Collects the text of (sanitised) post HTML. With `mentions` given, it also leaves out
    mention links, read from the markup rather than the text: an `<a>` whose class says
    "mention" (not "hashtag"), or whose href is one of `mentions`, and quote-inline fallbacks.
    Mastodon, GoToSocial, Akkoma and Fedify write a mention as
    `<span class="h-card"><a class="u-url mention" href="...">@<span>name</span></a></span>`."""

    def __init__(self, mentions: Collection[str] | None) -> None:
        super().__init__(convert_charrefs=True)
        self.mentions = mentions
        self.parts: list[str] = []
        self._skipping: str | None = None  # the tag whose element is being left out
        self._depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._skipping is not None:
            self._depth += tag == self._skipping
            return
        if tag in _BLOCKS:
            self.parts.append("\n")
        if self.mentions is not None and self._left_out(tag, dict(attrs)):
            self._skipping, self._depth = tag, 1

    def _left_out(self, tag: str, attrs: dict[str, str | None]) -> bool:
        classes = set((attrs.get("class") or "").split())
        if "quote-inline" in classes:
            return True
        if tag != "a":
            return False
        mention = "mention" in classes and "hashtag" not in classes
        return mention or (attrs.get("href") or "") in (self.mentions or ())

    def handle_endtag(self, tag: str) -> None:
        if self._skipping is not None:
            if tag == self._skipping:
                self._depth -= 1
                if self._depth == 0:
                    self._skipping = None
            return
        if tag in _BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._skipping is None:
            self.parts.append(data)


def plain_text(markup: str, *, without_mentions: Collection[str] | None = None) -> str:
    """The text of a post's HTML: tags dropped (inline ones join their text: `@<span>a</span>`
    reads "@a"), paragraphs and line breaks as new lines, entities decoded. With
    `without_mentions` (the hrefs of the post's Mention tags, possibly none), mention links
    and quote-inline fallbacks are left out too."""
    parser = _TextOf(without_mentions)
    parser.feed(markup)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).split("\n"))
    return "\n".join(line for line in lines if line)


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
