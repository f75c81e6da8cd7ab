"""Bounded walks: hostile reply chains and collections cannot make us fetch without end."""

from __future__ import annotations

from activitypub.walk import iter_collection, reply_chain


class Remote:
    def __init__(self, documents: dict) -> None:
        self.documents = documents
        self.fetched: list[str] = []

    async def __call__(self, url: str) -> dict:
        self.fetched.append(url)
        return self.documents[url]


async def test_deep_reply_chain_stops_at_the_cap() -> None:
    """A 1,000-deep reply chain -> stops at N fetches."""
    docs = {
        f"https://x/{i}": {"id": f"https://x/{i}", "inReplyTo": f"https://x/{i + 1}"}
        for i in range(1000)
    }
    remote = Remote(docs)
    ancestors = await reply_chain(remote, docs["https://x/0"], max_depth=25)
    assert len(ancestors) == 25 and len(remote.fetched) == 25


async def test_reply_cycle_terminates() -> None:
    docs = {
        "https://x/a": {"id": "https://x/a", "inReplyTo": "https://x/b"},
        "https://x/b": {"id": "https://x/b", "inReplyTo": "https://x/a"},
    }
    remote = Remote(docs)
    assert [d["id"] for d in await reply_chain(remote, docs["https://x/a"])] == ["https://x/b"]


async def test_self_referencing_collection_terminates() -> None:
    """A collection whose `next` points at itself -> terminates."""
    docs = {
        "https://x/c": {"id": "https://x/c", "type": "OrderedCollection", "first": "https://x/p1"},
        "https://x/p1": {"id": "https://x/p1", "orderedItems": [1, 2], "next": "https://x/p2"},
        "https://x/p2": {"id": "https://x/p2", "orderedItems": [3], "next": "https://x/p1"},
    }
    remote = Remote(docs)
    assert [i async for i in iter_collection(remote, "https://x/c")] == [1, 2, 3]
    assert remote.fetched == ["https://x/c", "https://x/p1", "https://x/p2"]


async def test_collection_caps_and_embedded_first_page() -> None:
    docs = {
        f"https://x/p{i}": {
            "id": f"https://x/p{i}",
            "items": [i] * 10,
            "next": f"https://x/p{i + 1}",
        }
        for i in range(100)
    }
    root = {"id": "https://x/c", "type": "Collection", "first": docs["https://x/p0"]}
    remote = Remote(docs)
    items = [i async for i in iter_collection(remote, root, max_pages=3)]
    assert len(items) == 30 and len(remote.fetched) == 2
    remote = Remote(docs)
    assert len([i async for i in iter_collection(remote, root, max_items=15)]) == 15
