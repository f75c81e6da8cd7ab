"""Home timelines (instance/content/timelines.py) and suspended boosters."""

from __future__ import annotations

from instance.content import timelines
from instance.storage.models import Account, Boost
from tests.instance.hardening.test_domain_blocks import (
    create_account_named,
    follow,
    remote_account,
    remote_post,
)
from tests.instance.loopback_peer import HttpActor


async def test_a_suspended_accounts_boosts_leave_its_followers_home_timeline(runtime) -> None:
    """A followed account (remote or local) that an admin suspends: the boosts it made before
    the suspension no longer appear on its followers' home timeline (they did before)."""
    me = await create_account_named(runtime, "painter")
    local_booster = await create_account_named(runtime, "booster")
    remote_booster = await remote_account(runtime, HttpActor("rb", "allowed.example", "", ""))
    author = await remote_account(runtime, HttpActor("author", "fine.example", "", ""))
    boosted = [await remote_post(runtime, author, 1), await remote_post(runtime, author, 2)]
    async with runtime.session() as s:
        s.add_all([follow(me, local_booster, 1), follow(me, remote_booster, 2)])
        for n, (who, post) in enumerate(zip((local_booster, remote_booster), boosted, strict=True)):
            s.add(Boost(uri=f"urn:boost:{n}", account_id=who.id, post_id=post.id,
                        published=runtime.now()))  # fmt: skip

    async def home() -> set[int]:
        async with runtime.sessions() as s:
            viewer = await s.get_one(Account, me.id)
            entries = await timelines.read(s, "home", viewer=viewer, now=runtime.now())
        return {e.post.id for e in entries}

    assert {p.id for p in boosted} <= await home()
    async with runtime.session() as s:
        for who in (local_booster, remote_booster):
            (await s.get_one(Account, who.id)).suspended_at = runtime.now()
    assert not {p.id for p in boosted} & await home()


async def test_replies_and_remixes_from_a_suspended_domain_are_not_listed(runtime) -> None:
    """The replies collection of our post (which other servers backfill threads from) and
    its remixes list leave out posts by accounts of a suspended domain; they listed them
    before the block."""
    from sqlalchemy import update

    from instance.content import collections
    from instance.content.lineage import remixes
    from instance.content.posting import Draft, publish
    from instance.moderation import domains
    from instance.storage.models import Post

    me = await create_account_named(runtime, "painter")
    async with runtime.session() as s:
        ours = await publish(s, runtime, me, Draft(text="hello"), federate=False)
    gone = await remote_account(runtime, HttpActor("g", "gone.example", "", ""))
    reply, quote = await remote_post(runtime, gone, 1), await remote_post(runtime, gone, 2)
    async with runtime.session() as s:
        await s.execute(update(Post).where(Post.id == reply.id).values(in_reply_to_id=ours.id))
        await s.execute(update(Post).where(Post.id == quote.id).values(quote_id=ours.id))

    async def listed() -> tuple[int, int]:
        async with runtime.sessions() as s:
            post = await s.get_one(Post, ours.id)
            total, _ids = await collections.replies(s, post, None)
            return total, len(await remixes(s, post, runtime.urls, None))

    assert await listed() == (1, 1)
    await domains.block_domain(runtime, "gone.example")
    assert await listed() == (0, 0)


async def test_notifications_from_suspended_accounts_and_domains_are_not_listed(
    runtime,
) -> None:
    """A local account's notifications leave out those from a remote account an admin
    suspended and from an account of a suspended domain; they were listed before."""
    from instance.content.notifications import list_for, notify
    from instance.moderation import domains

    me = await create_account_named(runtime, "painter")
    fine = await remote_account(runtime, HttpActor("fine", "fine.example", "", ""))
    bad = await remote_account(runtime, HttpActor("bad", "fine.example", "", ""))
    gone = await remote_account(runtime, HttpActor("gone", "gone.example", "", ""))
    async with runtime.session() as s:
        for who in (fine, bad, gone):
            await notify(s, recipient=me, kind="follow", sender=who, now=runtime.now())

    async def senders() -> set[str]:
        async with runtime.sessions() as s:
            return {n["from_uri"] for n in await list_for(s, me, runtime.urls)}

    assert await senders() == {fine.uri, bad.uri, gone.uri}
    async with runtime.session() as s:
        (await s.get_one(Account, bad.id)).suspended_at = runtime.now()
    await domains.block_domain(runtime, "gone.example")
    assert await senders() == {fine.uri}
