"""Outbound delivery (issue 3): the retry schedule, 410/4xx handling, domain health, fairness
across hosts, shared-inbox de-duplication, leases. Remote inboxes are faked at the transport;
time is a fake clock; every step is one `run_once()`."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

import activitypub.delivery as ap_delivery
from activitypub.delivery import next_attempt_delay
from activitypub.httpsig.cavage import cavage_signing_string, parse_signature_header
from activitypub.httpsig.common import rsa_verifies
from instance.content.key_rotation import rotate_key
from instance.content.posting import Draft, publish
from instance.outbound import delivery as delivery_mod
from instance.outbound.delivery import DeliveryWorker
from instance.outbound.domains import PAUSE_AFTER_DAYS, note_inbound
from instance.roles import worker_factories
from instance.runtime import Runtime, open_runtime
from instance.setup import ensure_instance
from instance.storage.models import Account, Delivery, DomainHealth, Follow, OutboundActivity
from tests.instance.delivery_helpers import (
    FakeClock,
    FakeInboxes,
    Received,
    add_follower,
    post_to_followers,
)
from tests.instance_fixtures import make_settings


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def inboxes() -> FakeInboxes:
    return FakeInboxes()


@pytest.fixture
def federation() -> dict[str, object]:
    return {}


@pytest.fixture
async def rt(
    tmp_path: Path, clock: FakeClock, inboxes: FakeInboxes, federation: dict[str, object]
) -> AsyncIterator[Runtime]:
    settings = make_settings(tmp_path / "instance", federation=federation)
    runtime = await open_runtime(settings)
    await ensure_instance(runtime)
    await runtime.use_http(inboxes.client())
    runtime.clock = clock
    try:
        yield runtime
    finally:
        await runtime.aclose()


@pytest.fixture
async def bot(rt: Runtime) -> Account:
    from instance.accounts import NewAccount, create_account

    async with rt.session() as session:
        return await create_account(session, rt.urls, NewAccount("painter", ai=True))


async def rows(rt: Runtime) -> list[Delivery]:
    async with rt.session() as session:
        return list(await session.scalars(select(Delivery).order_by(Delivery.id)))


async def only_row(rt: Runtime) -> Delivery:
    (row,) = await rows(rt)
    return row


# -- the retry schedule -------------------------------------------------------------------
class NoJitter:
    @staticmethod
    def uniform(a: float, b: float) -> float:
        return 0.0


def attempts_before_giving_up() -> int:
    return next(n for n in range(1, 1000) if next_attempt_delay(n) is None)


async def test_retry_schedule_500_500_500_then_202(rt, bot, inboxes, clock, monkeypatch) -> None:
    monkeypatch.setattr(ap_delivery, "random", NoJitter)
    await add_follower(rt, bot, "alice", "a.example")
    inboxes.script("a.example", 500, 500, 500, 202)
    await post_to_followers(rt, bot)
    worker = DeliveryWorker(rt)
    gaps = []
    for attempt in (1, 2, 3):
        assert await worker.run_once() == 1
        row = await only_row(rt)
        assert (row.status, row.attempts, row.last_status) == ("queued", attempt, 500)
        gaps.append(row.run_at - clock())
        assert gaps[-1] == next_attempt_delay(attempt)  # the one schedule, nothing else
        assert await worker.run_once() == 0  # not due yet: nothing is sent early
        clock.advance(seconds=gaps[-1].total_seconds() - 1)
        assert await worker.run_once() == 0
        clock.set(row.run_at)
    assert gaps[0] < gaps[1] < gaps[2]
    assert await worker.run_once() == 1
    row = await only_row(rt)
    assert (row.status, row.attempts, row.last_status) == ("done", 4, 202)
    assert len(inboxes.to("a.example")) == 4
    clock.advance(days=3)
    assert await worker.run_once() == 0


async def test_gives_up_when_the_schedule_ends(rt, bot, inboxes, clock) -> None:
    await add_follower(rt, bot, "alice", "a.example")
    inboxes.script("a.example", 503)
    await post_to_followers(rt, bot)
    worker = DeliveryWorker(rt)
    for _ in range(attempts_before_giving_up()):
        assert await worker.run_once() == 1
        row = await only_row(rt)
        clock.set(row.run_at)
    assert row.status == "failed" and row.attempts == attempts_before_giving_up()
    assert "gave up" in (row.last_error or "")
    clock.advance(days=30)
    assert await worker.run_once() == 0
    assert len(inboxes.received) == attempts_before_giving_up()


async def test_429_retry_after_is_honoured(rt, bot, inboxes, clock) -> None:
    await add_follower(rt, bot, "alice", "a.example")
    inboxes.script("a.example", (429, {"Retry-After": "120"}), 202)
    await post_to_followers(rt, bot)
    worker = DeliveryWorker(rt)
    await worker.run_once()
    row = await only_row(rt)
    assert row.status == "queued" and row.run_at - clock() >= timedelta(seconds=120)
    clock.advance(seconds=119)
    assert await worker.run_once() == 0
    clock.set(row.run_at)
    assert await worker.run_once() == 1
    assert (await only_row(rt)).status == "done"


async def test_400_fails_permanently(rt, bot, inboxes, clock) -> None:
    await add_follower(rt, bot, "alice", "a.example")
    inboxes.script("a.example", 400)
    await post_to_followers(rt, bot)
    worker = DeliveryWorker(rt)
    assert await worker.run_once() == 1
    row = await only_row(rt)
    assert row.status == "failed" and row.last_status == 400
    assert "HTTP 400" in (row.last_error or "")
    clock.advance(days=3)
    assert await worker.run_once() == 0
    assert len(inboxes.received) == 2  # one attempt: draft-cavage, then RFC 9421


async def test_401_is_retried(rt, bot, inboxes, clock) -> None:
    await add_follower(rt, bot, "alice", "a.example")
    inboxes.script("a.example", 401, 401, 202)  # cavage, then the RFC 9421 knock, then later
    await post_to_followers(rt, bot)
    worker = DeliveryWorker(rt)
    await worker.run_once()
    row = await only_row(rt)
    assert (row.status, row.last_status) == ("queued", 401)
    clock.set(row.run_at)
    await worker.run_once()
    assert (await only_row(rt)).status == "done"


async def test_connection_errors_are_retried(rt, bot, inboxes) -> None:
    await add_follower(rt, bot, "alice", "a.example")
    inboxes.script("a.example", "reset")
    await post_to_followers(rt, bot)
    await DeliveryWorker(rt).run_once()
    row = await only_row(rt)
    assert row.status == "queued" and row.last_status is None
    assert "network error" in (row.last_error or "")


# -- 410 Gone -------------------------------------------------------------------------------
async def follows_of(rt: Runtime, account: Account) -> int:
    async with rt.session() as session:
        return await session.scalar(
            select(func.count()).select_from(Follow).where(Follow.follower_id == account.id)
        )


async def test_410_on_a_personal_inbox_removes_that_follower(rt, bot, inboxes, clock) -> None:
    gone = await add_follower(rt, bot, "gone", "a.example", shared=False)
    kept = await add_follower(rt, bot, "kept", "a.example", shared=False)
    inboxes.script(gone.inbox_uri, 410)
    await post_to_followers(rt, bot)
    worker = DeliveryWorker(rt)
    assert await worker.run_once() == 2
    assert await follows_of(rt, gone) == 0
    assert await follows_of(rt, kept) == 1
    statuses = {r.inbox_uri: r.status for r in await rows(rt)}
    assert statuses == {gone.inbox_uri: "gone", kept.inbox_uri: "done"}
    clock.advance(days=3)
    assert await worker.run_once() == 0  # no retry
    await post_to_followers(rt, bot, 2)
    await worker.run_once()
    assert len(inboxes.to(gone.inbox_uri)) == 1  # the next post does not go there


async def test_410_on_a_shared_inbox_falls_back_to_personal_inboxes(rt, bot, inboxes) -> None:
    alive = await add_follower(rt, bot, "alive", "b.example")
    gone = await add_follower(rt, bot, "gone", "b.example")
    inboxes.script("https://b.example/inbox", 410)
    inboxes.script(gone.inbox_uri, 410)
    activity = await post_to_followers(rt, bot)
    # the shared inbox is gone, not (necessarily) everyone behind it: this activity is sent
    # on to their personal inboxes, in the same run
    assert await DeliveryWorker(rt).run_once() == 3
    statuses = {r.inbox_uri: r.status for r in await rows(rt)}
    assert statuses == {
        "https://b.example/inbox": "gone",
        alive.inbox_uri: "done",
        gone.inbox_uri: "gone",
    }
    assert [r.body for r in inboxes.to(alive.inbox_uri)] == [activity.body.encode()]
    assert await follows_of(rt, alive) == 1 and await follows_of(rt, gone) == 0
    async with rt.session() as session:
        assert (await session.get(Account, alive.id)).shared_inbox_uri is None


# -- what is sent ---------------------------------------------------------------------------
async def test_posts_the_stored_bytes_signed_by_the_authors_key(rt, bot, inboxes) -> None:
    await add_follower(rt, bot, "alice", "a.example")
    activity = await post_to_followers(rt, bot)
    await DeliveryWorker(rt).run_once()
    (sent,) = inboxes.received
    assert sent.url == "https://a.example/inbox"
    assert sent.body == activity.body.encode()
    digest = base64.b64encode(hashlib.sha256(sent.body).digest()).decode()
    assert sent.headers["digest"] == f"SHA-256={digest}"  # draft-cavage first
    assert f'keyId="{bot.key_id}"' in sent.headers["signature"]
    assert sent.headers["content-type"] == "application/activity+json"


async def test_shared_inbox_deduplication(rt, bot) -> None:
    for name in ("a1", "a2", "a3"):
        await add_follower(rt, bot, name, "a.example")
    await add_follower(rt, bot, "b1", "b.example", shared=False)
    await post_to_followers(rt, bot)
    assert sorted(r.inbox_uri for r in await rows(rt)) == [
        "https://a.example/inbox",
        "https://b.example/users/b1/inbox",
    ]


async def test_a_mention_on_a_server_reached_through_its_shared_inbox_is_sent_once(
    rt, bot
) -> None:
    """A shared inbox hands a post to every local account it addresses, so a server that
    gets the post there (a follower lives on it) is not sent it again at the personal inbox
    of a user the post mentions; a mentioned user on another server gets it in person."""
    await add_follower(rt, bot, "a1", "a.example")

    def remote(name: str, host: str) -> Account:
        uri = f"https://{host}/users/{name}"
        shared = f"https://{host}/inbox"
        return Account(username=name, username_key=name, domain=host, local=False, uri=uri,
                       inbox_uri=f"{uri}/inbox", shared_inbox_uri=shared)  # fmt: skip

    on_a, on_c = remote("a2", "a.example"), remote("c1", "c.example")
    async with rt.session() as s:
        s.add_all([on_a, on_c])
    async with rt.session() as s:
        author = await s.get_one(Account, bot.id)
        await publish(s, rt, author, Draft(text="hello", mentions=[on_a, on_c]))
    assert sorted(r.inbox_uri for r in await rows(rt)) == [
        "https://a.example/inbox",
        "https://c.example/users/c1/inbox",
    ]


async def test_a_stale_lease_is_taken_again(rt, bot, inboxes, clock) -> None:
    await add_follower(rt, bot, "alice", "a.example")
    await post_to_followers(rt, bot)
    async with rt.session() as session:
        row = (await session.scalars(select(Delivery))).one()
        row.status, row.attempts = "running", 1  # claimed by a worker that then died
        row.locked_until = clock() + delivery_mod.LEASE
    worker = DeliveryWorker(rt)
    assert await worker.run_once() == 0  # still leased
    clock.set(clock() + delivery_mod.LEASE + timedelta(seconds=1))
    assert await worker.run_once() == 1
    row = await only_row(rt)
    assert (row.status, row.attempts) == ("done", 2)


def test_the_worker_runs_inside_serve() -> None:
    assert DeliveryWorker in worker_factories()


# -- domain health ----------------------------------------------------------------------------
async def health(rt: Runtime, host: str) -> DomainHealth | None:
    async with rt.session() as session:
        return await session.get(DomainHealth, host)


async def test_domain_paused_after_failures_on_7_days_and_resumed_by_inbound(
    rt, bot, inboxes, clock
) -> None:
    await add_follower(rt, bot, "alice", "down.example")
    inboxes.script("down.example", "reset")
    worker = DeliveryWorker(rt)
    for day in range(PAUSE_AFTER_DAYS):
        await post_to_followers(rt, bot, day)
        assert await worker.run_once() >= 1
        state = await health(rt, "down.example")
        assert state is not None and len(state.failure_days) == day + 1
        assert state.paused is (day + 1 == PAUSE_AFTER_DAYS)
        clock.advance(days=1)
    sent = len(inboxes.received)
    await post_to_followers(rt, bot, 99)
    assert await worker.run_once() == 0  # paused: nothing goes out...
    assert len(inboxes.received) == sent
    waiting = [r for r in await rows(rt) if r.status == "queued"]
    assert len(waiting) >= 2  # ...and nothing is dropped
    inboxes.script("down.example", 202)
    async with rt.session() as session:
        assert await note_inbound(session, "down.example") is True
    assert await worker.run_once() == len(waiting)
    assert all(r.status == "done" for r in await rows(rt) if r.inbox_uri.endswith("/inbox"))
    state = await health(rt, "down.example")
    assert state is not None and (state.paused, state.failure_days) == (False, [])


async def test_an_answer_clears_the_failure_streak(rt, bot, inboxes, clock) -> None:
    await add_follower(rt, bot, "alice", "flaky.example")
    inboxes.script("flaky.example", 500, 500, 500, 202)
    worker = DeliveryWorker(rt)
    for day in range(2):
        await post_to_followers(rt, bot, day)
        await worker.run_once()
        clock.advance(days=1)
    assert len((await health(rt, "flaky.example")).failure_days) == 2
    await worker.run_once()  # both rows are due again; the first gets 202
    state = await health(rt, "flaky.example")
    assert state.failure_days == [] and state.last_success_at == clock()


async def test_note_inbound_is_a_no_op_for_healthy_domains(rt) -> None:
    async with rt.session() as session:
        assert await note_inbound(session, "never-failed.example") is False
    assert await health(rt, "never-failed.example") is None


# -- a slow domain never delays a healthy one ------------------------------------------------
@pytest.mark.parametrize("federation", [{"delivery_timeout_s": 0.5}])
async def test_a_hanging_host_does_not_delay_a_healthy_one(rt, bot, inboxes) -> None:
    await add_follower(rt, bot, "slow", "slow.example")
    await add_follower(rt, bot, "fast", "fast.example")
    inboxes.script("slow.example", "hang")
    await post_to_followers(rt, bot)
    assert await DeliveryWorker(rt).run_once() == 2
    (fast,) = inboxes.to("fast.example")
    # order, not speed: the healthy host was answered before the hanging POST timed out
    assert fast.at < inboxes.hang_ended["slow.example"]
    statuses = {r.host: (r.status, r.last_error) for r in await rows(rt)}
    assert statuses["fast.example"] == ("done", None)
    assert statuses["slow.example"][0] == "queued"
    assert "no answer within 0.5 s" in statuses["slow.example"][1]


@pytest.mark.parametrize(
    "federation",
    [{"delivery_timeout_s": 2.0, "delivery_concurrency": 2, "delivery_per_host": 2}],
)
async def test_many_hanging_hosts_do_not_hold_every_slot(rt, bot, inboxes, monkeypatch) -> None:
    monkeypatch.setattr(delivery_mod, "SLOW_AFTER", 0.1)
    for n in range(4):
        await add_follower(rt, bot, f"s{n}", f"slow{n}.example")
        inboxes.script(f"slow{n}.example", "hang")
    for n in range(6):
        await add_follower(rt, bot, f"h{n}", "healthy.example", shared=False)
    await post_to_followers(rt, bot)
    assert await DeliveryWorker(rt).run_once() == 10
    healthy = inboxes.to("healthy.example")
    assert len(healthy) == 6
    # 4 hanging hosts and only 2 slots: the healthy host still gets everything before the
    # first hanging POST times out
    assert max(r.at for r in healthy) < min(inboxes.hang_ended.values())
    assert len({r.url for r in inboxes.received if "slow" in r.url}) == 4


@pytest.mark.parametrize("federation", [{"delivery_concurrency": 4, "delivery_per_host": 2}])
async def test_claims_are_round_robin_across_hosts(rt, bot, inboxes) -> None:
    for n in range(6):
        await add_follower(rt, bot, f"a{n}", "a.example", shared=False)
    for host in ("b.example", "c.example", "d.example"):
        await add_follower(rt, bot, "x", host)
    await post_to_followers(rt, bot)
    await DeliveryWorker(rt).run_once()
    first_four = {r.url.split("/")[2] for r in inboxes.received[:4]}
    assert first_four >= {"b.example", "c.example", "d.example"}
    assert len(inboxes.received) == 9


async def test_outbound_activity_is_stored_once(rt, bot) -> None:
    for n in range(3):
        await add_follower(rt, bot, f"f{n}", f"h{n}.example")
    await post_to_followers(rt, bot)
    async with rt.session() as session:
        assert await session.scalar(select(func.count()).select_from(OutboundActivity)) == 1


async def test_a_server_that_takes_rfc9421_is_signed_that_way_first(rt, bot) -> None:
    """Deliveries are signed draft-cavage first, what nearly every server verifies (some
    answer an RFC 9421 request with a 500). A server that refuses it (401) and takes RFC
    9421 is remembered in the database, so the next delivery to it (from this worker, or one
    that starts later) is one POST signed RFC 9421; the others are not touched."""
    seen: list[tuple[str, str]] = []

    def rfc9421_only(request: httpx.Request) -> httpx.Response:
        scheme = "rfc9421" if "signature-input" in request.headers else "cavage"
        seen.append((request.url.host, scheme))
        if request.url.host == "new.example" and scheme == "cavage":
            return httpx.Response(401)
        return httpx.Response(202)

    await rt.use_http(httpx.AsyncClient(transport=httpx.MockTransport(rfc9421_only)))
    await add_follower(rt, bot, "alice", "old.example")
    await add_follower(rt, bot, "bob", "new.example")
    await post_to_followers(rt, bot, 1)
    await DeliveryWorker(rt).run_once()
    assert sorted(seen) == [("new.example", "cavage"), ("new.example", "rfc9421"),
                            ("old.example", "cavage")]  # fmt: skip
    async with rt.sessions() as s:
        assert (await s.get(DomainHealth, "new.example")).signature_scheme == "rfc9421"
        assert await s.get(DomainHealth, "old.example") is None  # healthy: no row
    seen.clear()
    await post_to_followers(rt, bot, 2)
    await DeliveryWorker(rt).run_once()  # a new worker: what it knows comes from the database
    assert sorted(seen) == [("new.example", "rfc9421"), ("old.example", "cavage")]
    assert {r.status for r in await rows(rt)} == {"done"}


def _signed_by(sent: Received, public_pem: str) -> bool:
    params = parse_signature_header(sent.headers["signature"])
    values = {name.lower(): value for name, value in sent.headers.items()}
    text = cavage_signing_string(
        "POST", httpx.URL(sent.url).raw_path.decode(), values, params.headers,
        created=params.created, expires=params.expires,
    )  # fmt: skip
    return rsa_verifies(public_pem, params.signature, text.encode())


async def test_a_retry_after_a_key_rotation_is_signed_with_the_new_key(
    rt, bot, inboxes, clock
) -> None:
    """The running delivery worker reads the signing key for every batch: after
    `dreamloom account rotate-key`, a retry of an activity queued before the rotation is
    signed with the new key (peers re-fetch the key and accept it), not the old one."""
    await add_follower(rt, bot, "alice", "a.example")
    inboxes.script("a.example", 500, 202)
    activity = await post_to_followers(rt, bot)
    worker = DeliveryWorker(rt)
    old_public = bot.public_key_pem
    assert await worker.run_once() == 1  # the first try, with the old key: answered 500
    await rotate_key(rt, bot)
    async with rt.session() as s:
        new_public = (await s.get_one(Account, bot.id)).public_key_pem
    assert new_public != old_public
    clock.advance(days=1)  # the retry is due (and the Update of the new key goes out too)
    while await worker.run_once():
        pass
    first, retry = [r for r in inboxes.received if r.body == activity.body.encode()]
    assert _signed_by(first, old_public)
    assert _signed_by(retry, new_public) and not _signed_by(retry, old_public)
