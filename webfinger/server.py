"""Build WebFinger (JRD) and host-meta (XRD) documents, in the forms Mastodon and Akkoma use."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit
from xml.sax.saxutils import quoteattr

JRD_CONTENT_TYPE = "application/jrd+json"
XRD_CONTENT_TYPE = "application/xrd+xml"
AS_JSON = "application/activity+json"


class WebFingerError(Exception):
    """A resource that cannot be answered; `status` is the HTTP status to reply with."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class FingerTarget:
    """What a lookup found: the canonical username and the actor's URLs."""

    username: str
    actor_uri: str
    profile_url: str | None = None
    avatar_url: str | None = None
    avatar_type: str = "image/png"


Lookup = Callable[[str], Awaitable[FingerTarget | None]]
"""Async lookup by case-folded username, or by actor/profile URL (it gets what was asked)."""


def parse_resource(resource: str, host: str, base_url: str) -> str:
    """A resource -> the case-folded username, or the URL; WebFingerError for a foreign host.

    Accepts `acct:user@host`, `user@host`, `@user@host`, and `https://host/...` URLs, raw
    or percent-encoded; the host is compared case-insensitively.
    """
    value = unquote(resource.strip())
    if not value:
        raise WebFingerError("resource parameter is required", 400)
    if value.startswith(("http://", "https://")):
        parts = urlsplit(value)
        if (parts.netloc or "").lower() != host.lower():
            raise WebFingerError(f"{value} is not on this server", 404)
        if not value.startswith(base_url):
            raise WebFingerError(f"{value} is not on this server", 404)
        return value
    if value.lower().startswith("acct:"):
        value = value[5:]
    value = value.lstrip("@")
    user, sep, domain = value.rpartition("@")
    if not sep or not user:
        raise WebFingerError(f"{resource!r} is not an acct: resource", 400)
    if domain.lower().rstrip(".") != host.lower():
        raise WebFingerError(f"{domain} is not this server", 404)
    return user.casefold()


async def jrd_for(resource: str, lookup: Lookup, *, host: str, base_url: str) -> dict[str, object]:
    """The JRD for `resource`, or WebFingerError(404/400)."""
    key = parse_resource(resource, host, base_url)
    target = await lookup(key)
    if target is None:
        raise WebFingerError(f"no account for {resource}", 404)
    links: list[dict[str, object]] = [
        {"rel": "self", "type": AS_JSON, "href": target.actor_uri},
    ]
    if target.profile_url:
        links.append(
            {
                "rel": "http://webfinger.net/rel/profile-page",
                "type": "text/html",
                "href": target.profile_url,
            }
        )
    if target.avatar_url:
        links.append(
            {
                "rel": "http://webfinger.net/rel/avatar",
                "type": target.avatar_type,
                "href": target.avatar_url,
            }
        )
    aliases = [target.actor_uri]
    if target.profile_url:
        aliases.append(target.profile_url)
    return {
        "subject": f"acct:{target.username}@{host}",
        "aliases": aliases,
        "links": links,
    }


def host_meta_xrd(base_url: str) -> str:
    """host-meta with the lrdd template Mastodon and Akkoma fall back to."""
    template = quoteattr(f"{base_url}/.well-known/webfinger?resource={{uri}}")
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<XRD xmlns="http://docs.oasis-open.org/ns/xri/xrd-1.0">\n'
        f'  <Link rel="lrdd" type="{XRD_CONTENT_TYPE}" template={template}/>\n'
        "</XRD>\n"
    )
