"""Pinned posts: `dreamloom pin` / `unpin`, the featured collection (which Mastodon syncs,
though it never reads outboxes), Add/Remove."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from instance.accounts import get_local
from instance.cli import app
from instance.content import pins
from instance.content.posting import Draft, publish
from instance.runtime import open_runtime
from instance.settings import load_settings
from instance.storage.models import Account, Delivery, OutboundActivity, Post
from tests.instance.delivery_helpers import add_follower
from tests.instance.generation_fixtures import Clock
from tests.instance_fixtures import AP_ACCEPT

runner = CliRunner()


async def make_posts(rt, username: str, n: int, visibility: str = "public") -> list[Post]:
    async with rt.session() as s:
        author = await get_local(s, username)
        return [
            await publish(s, rt, author, Draft(text=f"picture {i}", visibility=visibility))
            for i in range(n)
        ]


async def featured(client, username: str) -> dict:
    r = await client.get(f"/users/{username}/collections/featured", headers=AP_ACCEPT)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/activity+json")
    return r.json()


async def set_pin(rt, username: str, post: Post, on: bool = True) -> bool:
    async with rt.session() as s:
        account = await get_local(s, username)
        act = pins.pin if on else pins.unpin
        return await act(s, rt, account, await s.get(Post, post.id))


async def test_pins_fill_featured_and_federate(runtime, client, new_account) -> None:
    clock = runtime.clock = Clock()
    painter = await new_account("painter", ai=True)
    await add_follower(runtime, painter, "mo", "m.example")
    first, _, third = await make_posts(runtime, "painter", 3)
    assert (await featured(client, "painter"))["totalItems"] == 0

    assert await set_pin(runtime, "painter", first) is True
    assert await set_pin(runtime, "painter", first) is False  # already pinned
    clock.advance(minutes=1)
    assert await set_pin(runtime, "painter", third) is True
    doc = await featured(client, "painter")
    assert doc["type"] == "OrderedCollection" and doc["id"] == painter.featured_uri
    assert doc["totalItems"] == 2
    assert [n["id"] for n in doc["orderedItems"]] == [third.uri, first.uri]  # newest pin first
    assert all(n["type"] == "Note" for n in doc["orderedItems"])

    assert await set_pin(runtime, "painter", first, on=False) is True
    assert await set_pin(runtime, "painter", first, on=False) is False
    assert [n["id"] for n in (await featured(client, "painter"))["orderedItems"]] == [third.uri]

    async with runtime.sessions() as s:
        rows = list(await s.scalars(
            select(OutboundActivity).where(OutboundActivity.kind.in_(("Add", "Remove")))
            .order_by(OutboundActivity.id)))  # fmt: skip
        inboxes = set(await s.scalars(select(Delivery.inbox_uri).where(
            Delivery.activity_id.in_([r.id for r in rows]))))  # fmt: skip
    sent = [json.loads(r.body) for r in rows]
    assert [(a["type"], a["object"]) for a in sent] == [
        ("Add", first.uri), ("Add", third.uri), ("Remove", first.uri)
    ]  # fmt: skip
    assert all(a["target"] == painter.featured_uri and a["actor"] == painter.uri for a in sent)
    assert inboxes == {"https://m.example/inbox"}


async def test_pin_refusals(runtime, new_account) -> None:
    await new_account("painter", ai=True)
    await new_account("alice")
    posts = await make_posts(runtime, "painter", pins.MAX_PINNED + 1)
    (private,) = await make_posts(runtime, "painter", 1, visibility="followers")
    (hers,) = await make_posts(runtime, "alice", 1)
    for post in posts[: pins.MAX_PINNED]:
        assert await set_pin(runtime, "painter", post)
    with pytest.raises(pins.PinError, match="already has 5 pinned posts, the most; unpin"):
        await set_pin(runtime, "painter", posts[-1])
    with pytest.raises(pins.PinError, match="only public or unlisted posts"):
        await set_pin(runtime, "painter", private)
    with pytest.raises(pins.PinError, match="painter can only pin its own posts"):
        await set_pin(runtime, "painter", hers)
    async with runtime.sessions() as s:
        painter = await s.scalar(select(Account).where(Account.username == "painter"))
        assert await pins.pinned_count(s, painter) == pins.MAX_PINNED
        with pytest.raises(pins.PinError, match="no post of this instance at"):
            await pins.find_local_post(s, "https://elsewhere.example/notes/1")
        assert (await pins.find_local_post(s, posts[0].url)).id == posts[0].id  # page URL too


# -- the CLI ---------------------------------------------------------------------------------
def dl(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


@pytest.fixture
def inst(tmp_path: Path) -> Path:
    d = tmp_path / "inst"
    for args in (
        ["init", "--domain", "127.0.0.1:8125", "--scheme", "http"],
        ["account", "create", "painter", "--ai"],
        ["account", "create", "alice"],
    ):
        assert dl(*args, "--dir", str(d)).exit_code == 0
    return d


def posts_on(inst: Path, username: str, n: int) -> list[Post]:
    async def go() -> list[Post]:
        rt = await open_runtime(load_settings(inst / "config.toml"))
        try:
            return await make_posts(rt, username, n)
        finally:
            await rt.aclose()

    return asyncio.run(go())


def test_pin_and_unpin_commands(inst: Path) -> None:
    (mine,) = posts_on(inst, "painter", 1)
    (hers,) = posts_on(inst, "alice", 1)
    r = dl("pin", "painter", mine.url, "--dir", str(inst), "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == {"account": "painter", "action": "pin", "post": mine.uri,
                                    "changed": True, "pinned": 1}  # fmt: skip
    r = dl("pin", "painter", mine.uri, "--dir", str(inst))
    assert r.exit_code == 0 and "already pinned" in r.stdout
    r = dl("unpin", "painter", mine.uri, "--dir", str(inst))
    assert r.exit_code == 0 and "painter: unpinned" in r.stdout and "(0 pinned)" in r.stdout

    for args, message in (
        (["pin", "painter", hers.uri], "painter can only pin its own posts"),
        (["pin", "painter", "http://127.0.0.1:8125/users/painter/posts/nope"], "no post of"),
        (["pin", "nobody", mine.uri], "no local account named 'nobody'"),
    ):
        r = dl(*args, "--dir", str(inst))
        assert r.exit_code == 1 and message in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
