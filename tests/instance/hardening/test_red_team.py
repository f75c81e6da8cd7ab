"""What a second adversarial pass found after the 23 review findings were closed
(docs/security.md, "Red-team pass"). Each test replays the attack that worked.

- R1: a huge audience de-duplicated in quadratic time (tests/activitypub/test_ap_addressing.py).
- R2: a Note with thousands of Mention tags cost one database query each, inside the write
  lock; now our accounts are found with one query, among at most MAX_MENTIONS of our URLs,
  and at most MAX_HASHTAGS hashtags are kept.
- R3: an activity id taken by a forwarded Create (tests/instance/hardening/test_intake.py).
- R4: remote images were fetched through the pool that object fetches use, with their long
  deadline: a slow image host could hold it. They have their own pool, a short deadline, at
  most PER_HOST fetches per host, and a failing host is left alone for a while.
- R5: the remote-image cache had no size cap and ignored the free-disk watermark.
- R6: a deleted remote post's images were still served (and fetched when not cached yet).
"""

from __future__ import annotations

import asyncio
import io
import math
from typing import Any

import httpx
import pytest
from PIL import Image
from sqlalchemy import event, select

from instance.inbound import media_cache
from instance.inbound.handlers.notes import MAX_HASHTAGS, MAX_MENTIONS
from instance.inbound.limits import InboxLimits
from instance.inbound.media_cache import PER_HOST, RemoteMedia
from instance.inbound.worker import InboxWorker
from instance.runtime import MEDIA_DEADLINE_S, Runtime, open_runtime
from instance.storage.models import MediaAttachment, Mention, Post, PostTag
from tests.instance.fediverse import Body, FakeFediverse, RemoteActor
from tests.instance.inbox_helpers import count, post


def png(colour: str = "teal") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(out, "PNG")
    return out.getvalue()


class ImageHost:
    """Remote image servers behind a mock transport: what each was asked, and hosts that
    hang (until released) or fail."""

    def __init__(self, fedi: FakeFediverse) -> None:
        self.fedi = fedi
        self.image = png()
        self.asked: list[str] = []
        self.hanging: set[str] = set()
        self.failing: set[str] = set()
        self.released = asyncio.Event()
        self.in_flight: dict[str, int] = {}
        self.most_in_flight: dict[str, int] = {}

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        if not request.url.path.endswith(".png"):
            return self.fedi(request)
        host = request.url.host
        self.asked.append(str(request.url))
        if host in self.failing:
            raise httpx.ConnectError("refused", request=request)
        self.in_flight[host] = self.in_flight.get(host, 0) + 1
        self.most_in_flight[host] = max(self.most_in_flight.get(host, 0), self.in_flight[host])
        try:
            if host in self.hanging:
                await self.released.wait()
        finally:
            self.in_flight[host] -= 1
        return httpx.Response(200, stream=Body(self.image), headers={"content-type": "image/png"})


@pytest.fixture
async def images(runtime: Runtime, fedi: FakeFediverse) -> ImageHost:
    host = ImageHost(fedi)
    await runtime.use_http(httpx.AsyncClient(transport=httpx.MockTransport(host)))
    return host


async def image_post(
    client: Any, runtime: Runtime, actor: RemoteActor, urls: list[str]
) -> list[str]:
    """`actor` posts a Note with these image URLs; the public ids of its attachments."""
    note = actor.note("<p>pictures</p>", attachment=[
        {"type": "Image", "mediaType": "image/png", "url": url} for url in urls])  # fmt: skip
    assert (await post(client, runtime, actor, actor.create(note))).status_code == 202
    await InboxWorker(runtime).run_once()
    async with runtime.sessions() as s:
        post_id = await s.scalar(select(Post.id).where(Post.uri == note["id"]))
        rows = await s.scalars(select(MediaAttachment).where(MediaAttachment.post_id == post_id)
                               .order_by(MediaAttachment.position))  # fmt: skip
        return [row.public_id for row in rows]


async def test_r2_thousands_of_mention_tags_cost_one_query(client, runtime, fedi, new_account):
    carol = await new_account("carol")
    mallory = fedi.actor("mallory", "evil.example")
    ours = runtime.settings.base_url
    tags: list[dict[str, Any]] = [
        {"type": "Mention", "href": f"https://evil.example/users/u{i}"} for i in range(6000)
    ]
    tags += [{"type": "Mention", "href": carol.uri}] * 2
    tags += [{"type": "Mention", "href": f"{ours}/users/ghost{i}"} for i in range(3000)]
    tags += [{"type": "Hashtag", "name": f"#t{i}"} for i in range(3000)]
    note = mallory.note("<p>hi</p>", tag=tags)
    assert (await post(client, runtime, mallory, mallory.create(note))).status_code == 202
    statements: list[str] = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(runtime.engine.sync_engine, "before_cursor_execute", listener)
    try:
        assert await InboxWorker(runtime).run_once() == 1
    finally:
        event.remove(runtime.engine.sync_engine, "before_cursor_execute", listener)
    assert len(statements) < 60, f"{len(statements)} statements for one Note"
    assert await count(runtime, Mention) == 1  # carol, once: remote hrefs never crowd her out
    assert await count(runtime, PostTag) == MAX_HASHTAGS
    assert MAX_MENTIONS < 3000


async def test_r4_image_fetches_have_their_own_pool_and_short_deadline(settings) -> None:
    rt = await open_runtime(settings)
    try:
        assert rt.media_fetcher.client not in (rt.http, rt.fetcher.client, rt.key_fetcher.client)
        assert rt.media_fetcher.deadline == MEDIA_DEADLINE_S < rt.fetcher.deadline
    finally:
        await rt.aclose()


async def test_r4_a_hanging_image_host_holds_only_its_own_slots(client, runtime, fedi, images):
    alice = fedi.actor("alice")
    slow_urls = [f"https://slow.example/{i}.png" for i in range(3 * PER_HOST)]
    slow = await image_post(client, runtime, alice, slow_urls)
    (good,) = await image_post(client, runtime, alice, ["https://good.example/a.png"])
    images.hanging.add("slow.example")
    cache = runtime.service(RemoteMedia)
    waiting = [asyncio.create_task(cache.get(public_id)) for public_id in slow]
    await asyncio.sleep(0.05)
    found = await asyncio.wait_for(cache.get(good), 5)  # not stuck behind the slow host
    assert found is not None
    assert images.most_in_flight["slow.example"] == PER_HOST
    images.released.set()
    assert all(await asyncio.gather(*waiting))


async def test_r4_a_failing_image_host_is_left_alone(client, runtime, fedi, images):
    alice = fedi.actor("alice")
    urls = [f"https://down.example/{i}.png" for i in range(media_cache.HOST_FAILURES + 3)]
    ids = await image_post(client, runtime, alice, urls)
    images.failing.add("down.example")
    cache = runtime.service(RemoteMedia)
    for public_id in ids:
        assert await cache.get(public_id) is None
    assert len(images.asked) == media_cache.HOST_FAILURES  # then no more tries for a while


async def test_r5_nothing_is_fetched_while_the_disk_is_nearly_full(client, runtime, fedi, images):
    alice = fedi.actor("alice")
    (public_id,) = await image_post(client, runtime, alice, ["https://remote.example/a.png"])
    disk = runtime.service(InboxLimits).disk
    disk.free = lambda path: 10**6  # 1 MB free, below the watermark
    disk._checked_at = -math.inf
    assert (await client.get(f"/media/remote/{public_id}")).status_code == 404
    assert images.asked == []
    disk.free = lambda path: 10**12  # room again: the image is fetched now, not refused
    disk._checked_at = -math.inf
    assert (await client.get(f"/media/remote/{public_id}")).status_code == 200
    assert len(images.asked) == 1


async def test_r5_the_cache_keeps_to_its_size_dropping_the_least_used(
    client, runtime, fedi, images
):
    alice = fedi.actor("alice")
    ids = await image_post(client, runtime, alice,
                           [f"https://remote.example/{i}.png" for i in range(8)])  # fmt: skip
    cache = runtime.service(RemoteMedia)
    cache.max_bytes = 4 * len(images.image)
    first = ids[0]
    for public_id in ids:
        assert await cache.get(public_id) is not None
        assert await cache.get(first) is not None  # viewed again each time: the most used
    files = list(cache.directory.iterdir())
    assert sum(p.stat().st_size for p in files) <= cache.max_bytes
    kept = {p.stem for p in files}
    assert first in kept and ids[-1] in kept and ids[1] not in kept
    assert await cache.get(ids[1]) is not None  # an evicted image is fetched again
    assert len(images.asked) == 9


async def test_r5_a_remote_image_past_the_size_limit_is_refused(
    client, runtime, fedi, images, monkeypatch
):
    monkeypatch.setattr(media_cache, "MAX_BYTES", len(images.image) - 1)
    alice = fedi.actor("alice")
    (public_id,) = await image_post(client, runtime, alice, ["https://remote.example/a.png"])
    assert (await client.get(f"/media/remote/{public_id}")).status_code == 404
    assert not runtime.service(RemoteMedia).directory.exists() or not any(
        runtime.service(RemoteMedia).directory.iterdir()
    )


async def test_r6_a_deleted_posts_images_are_gone(client, runtime, fedi, images):
    alice = fedi.actor("alice")
    note = alice.note("<p>regret</p>", attachment=[
        {"type": "Image", "mediaType": "image/png", "url": f"https://remote.example/{i}.png"}
        for i in range(2)])  # fmt: skip
    assert (await post(client, runtime, alice, alice.create(note))).status_code == 202
    await InboxWorker(runtime).run_once()
    async with runtime.sessions() as s:
        cached, never = list(await s.scalars(select(MediaAttachment.public_id)))
    assert (await client.get(f"/media/remote/{cached}")).status_code == 200  # now on disk
    delete = alice.activity("Delete", {"id": note["id"], "type": "Tombstone"})
    assert (await post(client, runtime, alice, delete)).status_code == 202
    await InboxWorker(runtime).run_once()
    for public_id in (cached, never):
        assert (await client.get(f"/media/remote/{public_id}")).status_code == 404
    assert len(images.asked) == 1  # the never-viewed one was not fetched after the Delete
    assert not any(runtime.service(RemoteMedia).directory.iterdir())


async def test_r6_a_deleted_actors_images_are_gone(client, runtime, fedi, images):
    alice = fedi.actor("alice")
    (public_id,) = await image_post(client, runtime, alice, ["https://remote.example/a.png"])
    assert (await client.get(f"/media/remote/{public_id}")).status_code == 200
    gone = alice.activity("Delete", alice.uri)
    assert (await post(client, runtime, alice, gone)).status_code == 202
    await InboxWorker(runtime).run_once()
    assert (await client.get(f"/media/remote/{public_id}")).status_code == 404
    assert await count(runtime, MediaAttachment) == 0
    assert not any(runtime.service(RemoteMedia).directory.iterdir())
