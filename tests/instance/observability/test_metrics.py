"""GET /metrics: who may scrape, and what it shows after real work (signed POSTs, queued
rows, deliveries), parsed as Prometheus parses it."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import update

from instance.app import create_app
from instance.generation.requests import enqueue as enqueue_generation
from instance.outbound.delivery import DeliveryWorker
from instance.outbound.fanout import enqueue as enqueue_activity
from instance.routes.metrics import TOP_DOMAINS
from instance.storage.models import Delivery
from tests.instance.delivery_helpers import FakeInboxes, add_follower, post_to_followers
from tests.instance.inbox_helpers import post
from tests.instance.observability.scrape import samples, scrape, value

REMOTE_CLIENT = ("203.0.113.5", 1234)  # a documentation address: the transport is in-process


async def remote_get(rt, path: str, **headers: str) -> httpx.Response:
    """GET `path` from a non-loopback client address (httpx ASGITransport, no traffic)."""
    app = create_app(rt.settings, run_workers=False, runtime=rt)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=REMOTE_CLIENT)
        async with httpx.AsyncClient(transport=transport, base_url=rt.settings.base_url) as c:
            return await c.get(path, headers=headers)


async def test_remote_client_without_token_gets_404(runtime) -> None:
    """A scrape from another address without the token finds nothing there, token set or
    not, and a wrong token is the same as none."""
    assert (await remote_get(runtime, "/metrics")).status_code == 404
    runtime.settings.server.metrics_token = "s3cret-token"
    r = await remote_get(runtime, "/metrics", authorization="Bearer wrong")
    assert r.status_code == 404 and "dreamloom" not in r.text


async def test_bearer_token_admits_a_remote_scraper(runtime) -> None:
    """With `[server] metrics_token` set, a remote client sending it as a bearer token gets
    the metrics."""
    runtime.settings.server.metrics_token = "s3cret-token"
    r = await remote_get(runtime, "/metrics", authorization="Bearer s3cret-token")
    assert r.status_code == 200
    assert value(r.text, "dreamloom_database_up") == 1


async def test_loopback_is_admitted_unless_relayed_by_a_proxy(client) -> None:
    """A loopback client scrapes without a token; the same request carrying a proxy's
    forwarding header came from elsewhere and is refused."""
    assert (await client.get("/metrics")).status_code == 200
    r = await client.get("/metrics", headers={"X-Forwarded-For": "198.51.100.7"})
    assert r.status_code == 404
    assert (await client.get("/metrics", headers={"Forwarded": "for=1.2.3.4"})).status_code == 404


async def test_queue_depth_and_age_after_rows_are_queued(client, runtime, fedi, new_account):
    """Rows queued in the inbox and the generation queue show as each queue's depth, and
    the oldest due row's age follows the clock."""
    before = await scrape(client)
    for q in ("inbox", "delivery", "generation"):
        assert value(before, "dreamloom_queue_depth", queue=q, status="queued") == 0
        assert value(before, "dreamloom_queue_oldest_due_age_seconds", queue=q) == 0
    alice = fedi.actor("alice")
    for _ in range(3):
        assert (await post(client, runtime, alice, alice.create())).status_code == 202
    painter = await new_account("painter", ai=True)
    async with runtime.session() as s:
        await enqueue_generation(s, runtime, painter, "a heron at dawn", size=(32, 32))
    later = runtime.now()
    runtime.clock = lambda: later + timedelta(seconds=90)
    text = await scrape(client)
    assert value(text, "dreamloom_queue_depth", queue="inbox", status="queued") == 3
    assert value(text, "dreamloom_queue_depth", queue="generation", status="queued") == 1
    assert value(text, "dreamloom_queue_depth", queue="delivery", status="queued") == 0
    assert value(text, "dreamloom_queue_depth", queue="inbox", status="running") == 0
    age = value(text, "dreamloom_queue_oldest_due_age_seconds", queue="inbox")
    assert 90 <= age < 120
    assert value(text, "dreamloom_queue_oldest_due_age_seconds", queue="delivery") == 0


async def test_inbox_accepted_and_refused_counts(client, runtime, fedi) -> None:
    """Signed POSTs count as accepted; a forged body (the signature no longer matches) and a
    wrong Content-Type count as refused, each under its reason and status."""
    before = await scrape(client)
    alice = fedi.actor("alice")
    assert (await post(client, runtime, alice, alice.create())).status_code == 202
    assert (await post(client, runtime, alice, alice.create())).status_code == 202
    activity = alice.create()
    signed_for = json.dumps(activity).encode()
    forged = json.dumps({**activity, "id": activity["id"] + "x"}).encode()
    signed = alice.signed_headers(runtime.settings.base_url + "/inbox", signed_for,
                                  now=runtime.now())  # fmt: skip
    r = await client.post("/inbox", content=forged, headers=signed)
    assert r.status_code == 401
    r = await post(client, runtime, alice, alice.create(), headers={"Content-Type": "text/plain"})
    assert r.status_code == 415
    after = await scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("dreamloom_inbox_accepted_total", result="stored") == 2
    assert delta("dreamloom_inbox_refused_total", reason="signature", code="401") == 1
    assert delta("dreamloom_inbox_refused_total", reason="content_type", code="415") == 1


async def test_delivery_outcomes_per_domain_and_attempts(client, runtime, new_account) -> None:
    """After a fan-out to three servers (one takes it, one fails, one is gone), the last
    hour's outcomes are shown per domain and every attempt is counted by outcome."""
    inboxes = FakeInboxes()
    inboxes.script("ok.example", 202)
    inboxes.script("down.example", 503)
    inboxes.script("gone.example", 410)
    await runtime.use_http(inboxes.client())
    author = await new_account("author")
    for host in ("ok.example", "down.example", "gone.example"):
        await add_follower(runtime, author, "reader", host, shared=False)
    await post_to_followers(runtime, author)
    before = await scrape(client)
    assert await DeliveryWorker(runtime).run_once() == 3
    text = await scrape(client)
    outcomes = "dreamloom_delivery_outcomes_last_hour"
    assert value(text, outcomes, domain="ok.example", status="done") == 1
    assert value(text, outcomes, domain="down.example", status="retrying") == 1
    assert value(text, outcomes, domain="gone.example", status="gone") == 1
    for kind in ("delivered", "retry", "gone"):
        name = "dreamloom_delivery_attempts_total"
        assert value(text, name, outcome=kind) - value(before, name, outcome=kind) == 1
    assert value(text, "dreamloom_queue_depth", queue="delivery", status="queued") == 1


async def test_delivery_domains_beyond_the_top_are_summed_as_other(client, runtime, new_account):
    """However many servers we deliver to, the outcomes name the TOP_DOMAINS busiest ones and
    add up the rest under "other"."""
    author = await new_account("author")
    hosts = [f"peer{i:03d}.example" for i in range(TOP_DOMAINS + 5)]
    inboxes = [f"https://{h}/inbox" for h in hosts] + ["https://peer000.example/users/b/inbox"]
    activity = {"id": runtime.urls.activity("author", "c1"), "type": "Create",
                "actor": author.uri, "object": {"id": "n1", "type": "Note"}}  # fmt: skip
    async with runtime.session() as s:
        await enqueue_activity(s, runtime, author, activity, inboxes=inboxes)
        await s.execute(update(Delivery).values(status="done", finished_at=runtime.now()))
    found = samples(await scrape(client))
    series = {dict(labels)["domain"]: v for (name, labels), v in found.items()
              if name == "dreamloom_delivery_outcomes_last_hour"}  # fmt: skip
    assert len(series) == TOP_DOMAINS + 1
    assert series["peer000.example"] == 2  # the busiest is named
    assert series["other"] == 5
    assert sum(series.values()) == len(inboxes)


@pytest.mark.parametrize("header", ["Bearer ", "bearer s3cret-token", "s3cret-token"])
async def test_malformed_authorization_is_refused(runtime, header) -> None:
    """Only the exact `Bearer <token>` form admits a remote client."""
    runtime.settings.server.metrics_token = "s3cret-token"
    assert (await remote_get(runtime, "/metrics", authorization=header)).status_code == 404
