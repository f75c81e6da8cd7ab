"""OAuth scopes as Mastodon defines them, and which granted scopes cover a required one.

Top-level scopes cover their granular children: `read` covers `read:statuses`, `write` covers
`write:media`. `follow` is Mastodon's old shorthand for reading and changing blocks, follows
and mutes. `profile` (Mastodon 4.3) allows only `GET /api/v1/accounts/verify_credentials`.
An endpoint names the granular scope it needs; a token granted `read` or `read:statuses`
passes `read:statuses`, a token granted `read:accounts` does not.
"""

from __future__ import annotations

from collections.abc import Iterable

READ = (
    "accounts", "blocks", "bookmarks", "favourites", "filters", "follows", "lists", "mutes",
    "notifications", "search", "statuses",
)  # fmt: skip
WRITE = (
    "accounts", "blocks", "bookmarks", "conversations", "favourites", "filters", "follows",
    "lists", "media", "mutes", "notifications", "reports", "statuses",
)  # fmt: skip
FOLLOW = frozenset(
    {"read:blocks", "read:follows", "read:mutes", "write:blocks", "write:follows", "write:mutes"}
)
TOP = ("read", "write", "follow", "push", "profile")

SUPPORTED: tuple[str, ...] = (
    *TOP,
    *(f"read:{s}" for s in READ),
    *(f"write:{s}" for s in WRITE),
)
DEFAULT = "read"  # what an app gets when it registers or asks without naming scopes


def parse(text: str | None) -> list[str]:
    """Scopes from a space-separated string (`+` also separates, as some clients send it),
    in order, without duplicates."""
    seen: dict[str, None] = {}
    for part in (text or "").replace("+", " ").split():
        seen.setdefault(part, None)
    return list(seen)


def unknown(scopes: Iterable[str]) -> list[str]:
    return [s for s in scopes if s not in SUPPORTED]


def covers(granted: Iterable[str], required: str) -> bool:
    """Whether a token with `granted` scopes may do what needs `required`."""
    have = set(granted)
    if required in have:
        return True
    top, _, _ = required.partition(":")
    if top in ("read", "write") and top in have and required != "profile":
        return True
    return "follow" in have and required in FOLLOW


def within(requested: Iterable[str], allowed: Iterable[str]) -> bool:
    """Whether every requested scope is one the app registered (or covered by one)."""
    allowed = list(allowed)
    return all(covers(allowed, s) for s in requested)


def text(scopes: Iterable[str]) -> str:
    return " ".join(scopes)
