"""Domain blocks (instance/moderation/domains.py), checked over real loopback HTTP.

The remote server is a real HTTP server on 127.0.0.1 addressed as `localhost`
(tests/instance/loopback_peer.py), so blocking `localhost` leaves the instance under test,
at 127.0.0.1, alone.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from activitypub.errors import BlockedAddressError
from instance.accounts import NewAccount, create_account
from instance.content import timelines
from instance.content.posting import Draft, publish
from instance.errors import UserError
from instance.inbound.media_cache import RemoteMedia
from instance.moderation import domains
from instance.moderation import gate as gate_mod
from instance.moderation.gate import InboxGate
from instance.outbound.delivery import DeliveryWorker
from instance.runtime import Runtime, open_runtime
from instance.storage.models import (
    Account,
    Boost,
    Delivery,
    DomainBlock,
    Follow,
    InboxItem,
    MediaAttachment,
    OutboundActivity,
    Post,
)
from tests.instance.loopback_peer import HttpActor, Redirect, loopback_peer


async def signed_post(base: str, actor: HttpActor, activity: dict[str, Any]) -> httpx.Response:
    body = json.dumps(activity).encode()
    headers = actor.signed_headers(base + "/inbox", body)
    async with httpx.AsyncClient() as client:
        return await client.post(base + "/inbox", content=body, headers=headers)


async def rows(rt: Runtime, model: Any, *where: Any) -> int:
    async with rt.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def test_domains_are_normalised_and_garbage_is_refused() -> None:
    """A domain is kept lower-case and IDNA-encoded without scheme, port or path; what is no
    domain at all is a UserError."""
    assert domains.normalize_domain("https://Bad.Example:8443/users/x") == "bad.example"
    assert domains.normalize_domain("BÜCHER.example") == "xn--bcher-kva.example"
    assert domains.normalize_domain("sub.bad.example.") == "sub.bad.example"
    for garbage in ("", "not a domain", "-bad-.example", "a..b", "http://"):
        with pytest.raises(UserError):
            domains.normalize_domain(garbage)


async def test_a_block_covers_subdomains_and_the_most_specific_row_wins(runtime) -> None:
    """`bad.example` covers `a.b.bad.example` (with a port too), not `notbad.example`; a row
    for a subdomain overrides its parent's."""
    await domains.block_domain(runtime, "bad.example")
    await domains.block_domain(runtime, "media.bad.example", "noop", reject_media=True)
    async with runtime.sessions() as s:
        assert (await domains.policy_for_host(s, "a.b.bad.example:8080")).domain == "bad.example"
        assert (await domains.policy_for_host(s, "x.media.bad.example")).severity == "noop"
        assert await domains.policy_for_host(s, "notbad.example") is None
        assert await domains.policy_for_host(s, "example") is None
    # what the inbox asks (from its snapshot): the most specific row decides
    gate = runtime.service(InboxGate)
    assert await gate.first_suspended({"ok.example", "a.bad.example"}) == "a.bad.example"
    assert await gate.first_suspended({"x.media.bad.example", "ok.example"}) is None
    with pytest.raises(UserError, match="own domain"):
        await domains.block_domain(runtime, "127.0.0.1")
    assert await domains.unblock_domain(runtime, "bad.example")
    assert not await domains.unblock_domain(runtime, "bad.example")


async def test_the_inbox_refuses_a_blocked_domain_before_any_key_fetch(runtime, live) -> None:
    """A Follow or a Note from a suspended domain gets 403 and no row, and its key is never
    fetched (counted at the remote server over real HTTP: zero GETs). The same request from
    the same server before the block was fetched and accepted, so the count can fail."""
    with loopback_peer() as peer:
        await create_account_named(runtime, "painter")
        alice = peer.actor("alice", key=1)
        before = await signed_post(live, alice, alice.create())
        assert before.status_code == 202, before.text
        assert any(path.startswith("/users/alice") for path in peer.gets())

        await domains.block_domain(runtime, "localhost")
        bob = peer.actor("bob", key=2)  # a key the instance has never seen
        peer.requests.clear()
        follow = bob.activity("Follow", f"{live}/users/painter")
        note = bob.create()
        for activity in (follow, note):
            answer = await signed_post(live, bob, activity)
            assert answer.status_code == 403, answer.text
        # the keyId alone, or the actor alone, is enough
        other = HttpActor("eve", "127.0.0.1:1", alice.private_pem, alice.public_pem)
        spoofed = other.activity("Follow", f"{live}/users/painter")
        spoofed["actor"] = bob.uri
        assert (await signed_post(live, other, spoofed)).status_code == 403
        assert (await signed_post(live, bob, other.create())).status_code == 403
        assert peer.gets() == []
        assert await rows(runtime, InboxItem, InboxItem.actor_uri == bob.uri) == 0
        assert await rows(runtime, Account, Account.uri == bob.uri) == 0


AS_PUBLIC = "https://www.w3.org/ns/activitystreams#Public"


def follow(who: Account, whom: Account, n: int) -> Follow:
    return Follow(follower_id=who.id, followee_id=whom.id, accepted=True, uri=f"urn:follow:{n}")


async def create_account_named(rt: Runtime, name: str) -> Account:
    async with rt.session() as s:
        return await create_account(s, rt.urls, NewAccount(name))


async def remote_account(rt: Runtime, actor: HttpActor) -> Account:
    async with rt.session() as s:
        row = Account(
            username=actor.username, username_key=actor.username, domain=actor.host,
            local=False, uri=actor.uri, inbox_uri=actor.inbox, shared_inbox_uri=actor.shared_inbox,
        )  # fmt: skip
        s.add(row)
        await s.flush()
        return row


async def test_suspending_removes_follows_and_queues_and_nothing_is_delivered_after(
    runtime,
) -> None:
    """Suspending a domain removes follows both ways with its accounts, drops deliveries
    queued to it and inbox items queued from it; later posts queue nothing for it, and a
    delivery row that slipped in is never sent (the peer gets no POST)."""
    with loopback_peer() as peer:
        me = await create_account_named(runtime, "painter")
        them = await remote_account(runtime, peer.actor("alice"))
        async with runtime.session() as s:
            s.add_all([follow(them, me, 1), follow(me, them, 2)])
            s.add(InboxItem(activity_uri=f"{them.uri}/a/1", actor_uri=them.uri, body="{}"))
        async with runtime.session() as s:
            await publish(s, runtime, await s.get_one(Account, me.id), Draft("before"))
        assert await rows(runtime, Delivery, Delivery.host == peer.host) == 1

        await domains.block_domain(runtime, "localhost")
        assert await rows(runtime, Follow) == 0
        assert await rows(runtime, Delivery, Delivery.host == peer.host) == 0
        assert await rows(runtime, InboxItem) == 0

        async with runtime.session() as s:
            s.add(follow(them, me, 3))  # stale
        async with runtime.session() as s:
            await publish(s, runtime, await s.get_one(Account, me.id), Draft("after"))
        assert await rows(runtime, Delivery, Delivery.host == peer.host) == 0  # fan-out skips
        async with runtime.session() as s:
            activity = await s.scalar(select(OutboundActivity).limit(1))
            s.add(Delivery(activity_id=activity.id, inbox_uri=them.inbox_uri, host=peer.host))
        await DeliveryWorker(runtime).run_once()
        assert peer.posts() == []
        assert await rows(runtime, Delivery, Delivery.status == "queued") == 1  # left alone


async def test_the_fetcher_refuses_a_blocked_domain_at_every_redirect_hop(runtime) -> None:
    """A fetch that starts at an unblocked server and is redirected into a suspended domain
    stops before asking it; a direct fetch is refused too, and unblocking lets it through."""
    with loopback_peer() as blocked, loopback_peer("127.0.0.1") as hop:
        alice = blocked.actor("alice")
        hop.serve(f"http://{hop.host}/go", Redirect(alice.uri))
        await domains.block_domain(runtime, "localhost")
        with pytest.raises(BlockedAddressError):
            await runtime.fetch_json(f"http://{hop.host}/go")
        with pytest.raises(BlockedAddressError):
            await runtime.fetch_json(alice.uri)
        assert hop.gets() == ["/go"] and blocked.gets() == []
        await domains.unblock_domain(runtime, "localhost")
        assert (await runtime.fetch_json(alice.uri))["id"] == alice.uri


async def remote_post(rt: Runtime, author: Account, n: int) -> Post:
    async with rt.session() as s:
        post = Post(uri=f"{author.uri}/posts/{n}", account_id=author.id, local=False,
                    visibility="public", content=f"<p>{n}</p>", published=rt.now())  # fmt: skip
        s.add(post)
        await s.flush()
        return post


async def test_silenced_and_suspended_domains_on_timelines(runtime) -> None:
    """A silenced domain's posts leave the federated timeline but stay on the home timeline
    of a follower; a suspended domain's posts, and boosts of them, leave every timeline."""
    with loopback_peer() as quiet:
        me = await create_account_named(runtime, "painter")
        friend = await remote_account(runtime, HttpActor("friend", "friend.example", "", ""))
        q = await remote_account(runtime, quiet.actor("q"))
        g = await remote_account(runtime, HttpActor("g", "gone.example", "", ""))
        async with runtime.session() as s:
            s.add_all([follow(me, q, 4), follow(me, friend, 5)])
        quiet_post = await remote_post(runtime, q, 1)
        gone_post = await remote_post(runtime, g, 2)
        async with runtime.session() as s:
            s.add(Boost(uri=f"{friend.uri}/boosts/1", account_id=friend.id,
                        post_id=gone_post.id, published=runtime.now()))  # fmt: skip

        async def ids(kind: str) -> set[int]:
            async with runtime.sessions() as s:
                viewer = await s.get_one(Account, me.id)
                entries = await timelines.read(s, kind, viewer=viewer, now=runtime.now())
            return {e.post.id for e in entries}

        assert {quiet_post.id, gone_post.id} <= await ids("federated")
        assert {quiet_post.id, gone_post.id} <= await ids("home")
        await domains.block_domain(runtime, "localhost", "silence")
        await domains.block_domain(runtime, "gone.example")
        assert quiet_post.id not in await ids("federated")
        assert gone_post.id not in await ids("federated")
        home = await ids("home")
        assert quiet_post.id in home and gone_post.id not in home  # the boost is dropped


async def test_reject_media_neither_fetches_nor_serves(runtime) -> None:
    """A remote image from a domain whose media we reject is not fetched (no GET reaches
    it) and not served, even once it is in the cache; before the block it was."""
    with loopback_peer() as peer:
        author = await remote_account(runtime, peer.actor("alice"))
        post = await remote_post(runtime, author, 1)
        async with runtime.session() as s:
            media = MediaAttachment(post_id=post.id, account_id=author.id, remote_url=f"http://{peer.host}/i.png",
                                    media_type="image/png")  # fmt: skip
            s.add(media)
            await s.flush()
            public_id = media.public_id
        cache = RemoteMedia(runtime)
        assert await cache.get(public_id) is None  # 404 from the peer: it was asked
        assert peer.gets() == ["/i.png"]
        await domains.block_domain(runtime, "localhost", "noop", reject_media=True)
        peer.requests.clear()
        cache = RemoteMedia(runtime)
        cache.directory.mkdir(parents=True, exist_ok=True)
        (cache.directory / f"{public_id}.png").write_bytes(b"\x89PNG cached earlier")
        assert await cache.get(public_id) is None
        assert peer.gets() == []


async def test_a_thousand_blocked_domains_keep_pages_working(runtime, client) -> None:
    """With 1,000 blocked domains, timelines, delivery claims and the inbox still answer on
    SQLite (the rule is a subquery, not 1,000 bound variables)."""
    async with runtime.session() as s:
        s.add_all(DomainBlock(domain=f"d{n}.example", severity="suspend" if n % 2 else "silence")
                  for n in range(1000))  # fmt: skip
    me = await create_account_named(runtime, "painter")
    async with runtime.sessions() as s:
        viewer = await s.get_one(Account, me.id)
        for kind in ("home", "local", "federated"):
            await timelines.read(s, kind, viewer=viewer, now=runtime.now())
    await DeliveryWorker(runtime).run_once()
    for path in ("/", "/users/painter", "/timeline/federated"):
        assert (await client.get(path)).status_code < 500


async def test_reports_from_a_domain_with_reject_reports_are_dropped(
    client, runtime, fedi, new_account
) -> None:
    """A Flag from a domain blocked with reject_reports (here only silenced, so its
    activities still arrive) leaves no report; one from another domain still does."""
    from instance.inbound.worker import InboxWorker
    from instance.storage.models import Report
    from tests.instance.inbox_helpers import post

    bot = await new_account("painter", ai=True)
    await domains.block_domain(runtime, "quiet.example", "silence", reject_reports=True)
    for n, host in enumerate(("mods.quiet.example", "other.example")):
        mod = fedi.actor(f"mod{n}", host)
        answer = await post(client, runtime, mod, mod.activity("Flag", [bot.uri], content="x"))
        assert answer.status_code == 202
    await InboxWorker(runtime).run_once()
    await InboxWorker(runtime).run_once()
    async with runtime.sessions() as s:
        reporters = list(await s.scalars(select(Account.domain).join(
            Report, Report.reporter_id == Account.id)))  # fmt: skip
    assert reporters == ["other.example"]


def test_ip_addresses_are_one_spelling_and_cover_only_themselves() -> None:
    """An IP literal is a block of that address alone, however it is written (IPv6 with or
    without brackets and port); a bare number like `4` or `3.4` is refused, since as a
    "parent domain" it would cover every address ending in it."""
    for spelling in ("2001:DB8::1", "[2001:db8:0::1]:8443", "https://[2001:db8::1]/x"):
        assert domains.normalize_domain(spelling) == "2001:db8::1"
    assert domains.parents("[2001:db8::1]:8443") == ["2001:db8::1"]
    assert domains.parents("1.2.3.4:80") == ["1.2.3.4"]
    for garbage in ("4", "3.4", "999.1.1.1"):
        with pytest.raises(UserError):
            domains.normalize_domain(garbage)


async def test_an_ipv6_block_covers_its_accounts_and_deliveries(runtime) -> None:
    """Hosts with an IPv6 address are stored bracketed with their port
    (`[2001:db8::1]:8443`): a block of `2001:db8::1` finds them in the inbox gate, in
    fan-out's SQL and when its queued deliveries are dropped."""
    host = "[2001:db8::1]:8443"
    async with runtime.session() as s:
        me = await create_account(s, runtime.urls, NewAccount("painter"))
        far = Account(username="far", username_key="far", domain=host, local=False,
                      uri=f"https://{host}/users/far", inbox_uri=f"https://{host}/i")  # fmt: skip
        s.add(far)
        await s.flush()
        s.add(Follow(follower_id=far.id, followee_id=me.id, uri=f"https://{host}/f/1",
                     accepted=True))  # fmt: skip
        activity = OutboundActivity(uri="https://x/a/1", account_id=me.id, kind="Create", body="{}")
        s.add(activity)
        await s.flush()
        s.add(Delivery(activity_id=activity.id, inbox_uri=f"https://{host}/i", host=host))
    await domains.block_domain(runtime, "[2001:db8::1]")
    async with runtime.sessions() as s:
        assert await runtime.service(InboxGate).first_suspended([host]) == host
        hidden = await s.scalar(
            select(func.count()).select_from(Account).where(domains.host_blocked(Account.domain))
        )
        assert hidden == 1
    assert await rows(runtime, Delivery) == 0
    assert await rows(runtime, Follow) == 0


async def test_the_inbox_gate_snapshot_follows_blocks_without_a_query_per_request(
    runtime, monkeypatch
) -> None:
    """The inbox reads blocks and suspended actors from a per-process snapshot (no query per
    request): a block made in this process applies to the very next request; one made by
    another process (the CLI) once the snapshot is REFRESH seconds old."""
    gate = runtime.service(InboxGate)
    assert await gate.first_suspended(["a.bad.example"]) is None  # snapshot loaded
    await domains.block_domain(runtime, "bad.example")
    assert await gate.first_suspended(["a.bad.example"]) == "a.bad.example"  # at once

    other = await open_runtime(runtime.settings)  # another process, as the CLI is
    try:
        await domains.block_domain(other, "worse.example")
    finally:
        await other.aclose()
    monkeypatch.setattr(gate_mod, "REFRESH", 0.0)
    assert await gate.first_suspended(["worse.example:8443"]) == "worse.example:8443"
