"""Remote media by its own URL's host (instance/inbound/media_cache.py): a block that rejects
media covers an image hosted on that domain even when the post is from an allowed server."""

from __future__ import annotations

from instance.inbound.media_cache import RemoteMedia
from instance.moderation import domains
from instance.storage.models import Account, MediaAttachment
from tests.instance.hardening.test_domain_blocks import remote_account, remote_post
from tests.instance.loopback_peer import HttpActor, loopback_peer


async def test_an_allowed_post_cannot_carry_media_from_a_reject_media_host(runtime) -> None:
    """A post from an allowed domain whose attachment URL is on a domain with reject_media
    (or suspended): the image is not fetched (no GET reaches that host) and a copy cached
    before the block is not served."""
    with loopback_peer() as host:
        author = await remote_account(runtime, HttpActor("friend", "friend.example", "", ""))
        post = await remote_post(runtime, author, 1)
        async with runtime.session() as s:
            media = MediaAttachment(post_id=post.id, account_id=author.id,
                                    remote_url=f"http://{host.host}/i.png",
                                    media_type="image/png")  # fmt: skip
            s.add(media)
            await s.flush()
            public_id = media.public_id
        await domains.block_domain(runtime, "localhost", "noop", reject_media=True)
        cache = RemoteMedia(runtime)
        assert await cache.get(public_id) is None
        assert host.gets() == []
        cache.directory.mkdir(parents=True, exist_ok=True)
        (cache.directory / f"{public_id}.png").write_bytes(b"\x89PNG cached earlier")
        assert await RemoteMedia(runtime).get(public_id) is None
        await domains.unblock_domain(runtime, "localhost")
        found = await RemoteMedia(runtime).get(public_id)  # the control: served without it
        assert found is not None and found.path.name == f"{public_id}.png"


async def test_a_suspended_remote_accounts_media_is_not_served(runtime) -> None:
    """Once an admin suspends a remote account, our media proxy neither fetches nor serves
    its attachments (its posts are hidden; their images must not stay reachable by URL)."""
    with loopback_peer() as host:
        author = await remote_account(runtime, host.actor("alice"))
        post = await remote_post(runtime, author, 1)
        async with runtime.session() as s:
            media = MediaAttachment(post_id=post.id, account_id=author.id,
                                    remote_url=f"http://{host.host}/i.png",
                                    media_type="image/png")  # fmt: skip
            s.add(media)
            await s.flush()
            public_id = media.public_id
        cache = RemoteMedia(runtime)
        cache.directory.mkdir(parents=True, exist_ok=True)
        (cache.directory / f"{public_id}.png").write_bytes(b"\x89PNG cached earlier")
        assert await RemoteMedia(runtime).get(public_id) is not None  # the control
        async with runtime.session() as s:
            (await s.get_one(Account, author.id)).suspended_at = runtime.now()
        assert await RemoteMedia(runtime).get(public_id) is None
        assert host.gets() == []
