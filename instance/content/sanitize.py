"""Remote HTML -> HTML safe to show: Mastodon's allow-list, applied with nh3 (ammonia).

Every piece of markup that arrives from another server (post content, profile summaries)
passes through `clean_html` before it is stored.
"""

from __future__ import annotations

import re
import unicodedata

import nh3

TAGS = {
    "p", "br", "span", "a", "del", "s", "pre", "code", "em", "strong", "b", "i", "u",
    "ul", "ol", "li", "blockquote", "h1", "h2", "h3", "h4", "h5", "h6", "sup", "sub",
}  # fmt: skip
ATTRIBUTES = {
    "a": {"href", "rel"},  # `class` is filtered by CLASSES below
    "ol": {"start", "reversed"},
    "li": {"value"},
}
CLASSES = {
    "a": {"mention", "hashtag", "u-url", "status-link", "quote-inline"},
    "span": {"h-card", "invisible", "ellipsis", "quote-inline"},
}
URL_SCHEMES = {"http", "https", "dat", "dweb", "ipfs", "ipns", "ssb", "gopher", "xmpp",
               "magnet", "gemini"}  # fmt: skip


_SURROGATES = re.compile("[\ud800-\udfff]")


def plain_label(text: str | None, limit: int) -> str:
    """A name to show as text (a remote display name): no control or format characters
    (bidi overrides and zero-width marks can make a name read as another), no unpaired
    surrogates, at most `limit` characters."""
    kept = "".join(
        c for c in _SURROGATES.sub("\ufffd", text or "")
        if unicodedata.category(c) not in ("Cc", "Cf", "Co", "Cn")
    )
    return " ".join(kept.split())[:limit]


def clean_html(html: str | None) -> str:
    """Strip everything outside the allow-list; links keep only safe schemes. Unpaired
    surrogates (JSON allows them, UTF-8 cannot hold them) become U+FFFD first."""
    if not html:
        return ""
    return nh3.clean(
        _SURROGATES.sub("\ufffd", html),
        tags=TAGS,
        attributes=ATTRIBUTES,
        allowed_classes=CLASSES,
        url_schemes=URL_SCHEMES,
        link_rel=None,
        strip_comments=True,
    )
