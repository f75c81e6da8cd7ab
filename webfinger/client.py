"""Resolve `user@host` to an actor URL with WebFinger at the handle's host.

There is no host-meta fallback: a server whose WebFinger lives on another domain than its
handles is not found this way (Mastodon would follow host-meta's template there). A lookup
has an overall deadline, and every way it can fail (no answer in time, an address the
client refuses to reach, a bad document) is a `WebFingerLookupError` saying why.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any
from urllib.parse import quote

import httpx

from activitypub.errors import FetchError

ACTIVITY_TYPES = (
    "application/activity+json",
    'application/ld+json; profile="https://www.w3.org/ns/activitystreams"',
    "application/ld+json",
)
_HANDLE = re.compile(r"^@?(?P<user>[^@\s/]+)@(?P<host>[^@\s/]+)$")
MAX_JRD_BYTES = 64 * 1024
DEADLINE_S = 10.0


class WebFingerLookupError(Exception):
    """The handle could not be resolved; the message says why."""


def split_handle(handle: str) -> tuple[str, str]:
    """`@user@host`, `user@host` or `acct:user@host` -> (user, host)."""
    value = handle.strip()
    if value.lower().startswith("acct:"):
        value = value[5:]
    match = _HANDLE.match(value)
    if not match:
        raise WebFingerLookupError(f"{handle!r} is not a handle like user@host")
    return match["user"], match["host"].lower()


def self_link(jrd: dict[str, Any]) -> str | None:
    for link in jrd.get("links") or []:
        if (
            isinstance(link, dict)
            and link.get("rel") == "self"
            and link.get("type") in ACTIVITY_TYPES
            and isinstance(link.get("href"), str)
        ):
            return str(link["href"])
    return None


async def finger(
    client: httpx.AsyncClient, handle: str, *, scheme: str = "https",
    deadline: float | None = None,
) -> tuple[str, dict[str, Any]]:
    """Return (actor URL, the JRD) for a handle, within `deadline` seconds (DEADLINE_S by
    default). `client` should be the SSRF-guarded one."""
    user, host = split_handle(handle)
    deadline = deadline or DEADLINE_S
    try:
        async with asyncio.timeout(deadline):
            body = await _fetch(client, user, host, scheme)
    except TimeoutError:
        raise WebFingerLookupError(
            f"WebFinger for {user}@{host} did not answer within {deadline:g} s"
        ) from None
    try:
        jrd = json.loads(body)
    except ValueError as exc:
        raise WebFingerLookupError(f"WebFinger for {user}@{host} is not JSON") from exc
    if not isinstance(jrd, dict):
        raise WebFingerLookupError(f"WebFinger for {user}@{host} is not a JRD object")
    href = self_link(jrd)
    if href is None:
        raise WebFingerLookupError(f"WebFinger for {user}@{host} has no ActivityPub self link")
    return href, jrd


async def _fetch(client: httpx.AsyncClient, user: str, host: str, scheme: str) -> bytes:
    resource = quote(f"acct:{user}@{host}", safe="")
    url = f"{scheme}://{host}/.well-known/webfinger?resource={resource}"
    try:
        async with client.stream("GET", url, headers={"Accept": "application/jrd+json"}) as r:
            if r.status_code != 200:
                raise WebFingerLookupError(
                    f"WebFinger for {user}@{host} answered HTTP {r.status_code}"
                )
            body = b""
            async for chunk in r.aiter_bytes():
                body += chunk
                if len(body) > MAX_JRD_BYTES:
                    raise WebFingerLookupError(
                        f"WebFinger for {user}@{host} answered too large a document"
                    )
            return body
    except (httpx.HTTPError, FetchError, OSError) as exc:  # FetchError: the SSRF guard said no
        raise WebFingerLookupError(f"WebFinger for {user}@{host} failed: {exc}") from exc
