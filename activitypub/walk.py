"""Bounded walks over remote structures: collections and reply chains.

A hostile server can serve an endless reply chain or a collection whose pages loop, so every
walk is capped.

Both take the fetch function as an argument (usually `SafeFetcher.fetch_json`, or the
application's cached lookup), remember every URL they have seen so self-references and
cycles terminate, and stop at a page/item/depth cap instead of recursing without end
(CVE-2022-46405 class).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

from activitypub.objects import APObject, Collection, id_of

__all__ = ["FetchJson", "iter_collection", "reply_chain"]

FetchJson = Callable[[str], Awaitable[dict[str, Any]]]

MAX_PAGES = 10
MAX_ITEMS = 1000
MAX_DEPTH = 20


async def iter_collection(
    fetch: FetchJson,
    collection: str | Mapping[str, Any],
    *,
    max_pages: int = MAX_PAGES,
    max_items: int = MAX_ITEMS,
) -> AsyncIterator[Any]:
    """Yield the items of a (paged) collection: at most `max_pages` fetches/pages and
    `max_items` items; a page already seen ends the walk."""
    seen: set[str] = set()
    yielded = 0
    page: Any = collection
    for _ in range(max_pages + 1):
        document = await _resolve(fetch, page, seen)
        if document is None:
            return
        view = Collection(document)
        for item in view.items:
            if yielded >= max_items:
                return
            yielded += 1
            yield item
        page = view.next if view.items or not view.first else view.first


async def _resolve(fetch: FetchJson, page: Any, seen: set[str]) -> Mapping[str, Any] | None:
    """A page given by URL or embedded; None when absent or already seen."""
    if page is None:
        return None
    page_id = id_of(page)
    if page_id is not None:
        if page_id in seen:
            return None
        seen.add(page_id)
    if isinstance(page, Mapping) and ("items" in page or "orderedItems" in page
                                      or "first" in page or page_id is None):
        return page
    return await fetch(page_id) if page_id is not None else None


async def reply_chain(
    fetch: FetchJson, start: Mapping[str, Any], *, max_depth: int = MAX_DEPTH
) -> list[dict[str, Any]]:
    """The ancestors of `start` following `inReplyTo`, nearest first, at most `max_depth`;
    a cycle or a missing `inReplyTo` ends the chain."""
    ancestors: list[dict[str, Any]] = []
    seen = {id_of(start.get("id"))}
    parent = APObject(start).in_reply_to
    while parent is not None and parent not in seen and len(ancestors) < max_depth:
        seen.add(parent)
        document = await fetch(parent)
        ancestors.append(document)
        parent = APObject(document).in_reply_to
    return ancestors
