"""Delivery and the one retry policy (Mastodon's schedule), with a fake clock and a faked
network edge."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from activitypub.delivery import (
    MAX_RETRIES,
    RETRY_AFTER_CAP,
    classify,
    deliver,
    next_attempt_delay,
    parse_retry_after,
)
from activitypub.errors import DeliveryError
from activitypub.keys import KeyPair
from activitypub.signatures import format_http_date, verify_request

KEY_ID = "https://a.example/users/alice#main-key"
INBOX = "https://b.example/inbox"
BODY = b'{"id":"https://a.example/activities/1","type":"Create"}'
T0 = datetime(2026, 7, 7, 10, 0, 0, tzinfo=UTC)


class Inbox:
    """A fake remote inbox answering from a script of (status, headers) and verifying."""

    def __init__(self, key_store, script: list[int | tuple[int, dict] | Callable]) -> None:
        self.key_store = key_store
        self.script = list(script)
        self.requests: list[httpx.Request] = []
        self.verified: list[str] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        body = await request.aread()
        result = await verify_request(
            request.method,
            request.url.raw_path.decode(),
            list(request.headers.multi_items()),
            body,
            self.key_store,
            now=_date_of(request),
        )
        self.verified.append(result.scheme)
        step = self.script.pop(0)
        if callable(step):
            return step(request)
        status, headers = step if isinstance(step, tuple) else (step, {})
        return httpx.Response(status, headers=headers)


def _date_of(request: httpx.Request) -> datetime:
    from email.utils import parsedate_to_datetime

    return parsedate_to_datetime(request.headers["date"])


def client_for(inbox: Inbox) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(inbox))


async def run(inbox: Inbox, key: KeyPair, *, now: datetime = T0):
    async with client_for(inbox) as client:
        return await deliver(client, INBOX, BODY, KEY_ID, key.private_pem, now=now)


async def test_5xx_is_retried_with_growing_gaps_until_delivered(alice_key, key_store) -> None:
    """500,500,500,202 -> delivered on try 4, with growing gaps (fake clock)."""
    inbox = Inbox(key_store, [500, 500, 500, 202])
    clock, attempt, gaps = T0, 0, []
    while True:
        attempt += 1
        outcome = await run(inbox, alice_key, now=clock)
        if not outcome.should_retry:
            break
        delay = next_attempt_delay(attempt, outcome.retry_after, jitter=lambda n: 0.0)
        assert delay is not None
        gaps.append(delay)
        clock += delay
    assert (outcome.kind, outcome.status, attempt) == ("delivered", 202, 4)
    assert gaps == sorted(gaps) and len(set(gaps)) == 3
    assert [r.headers["date"] for r in inbox.requests][-1] == format_http_date(clock)


async def test_410_is_gone_and_not_retried(alice_key, key_store) -> None:
    """410 -> gone, no retry."""
    inbox = Inbox(key_store, [410])
    outcome = await run(inbox, alice_key)
    assert (outcome.kind, outcome.should_retry) == ("gone", False)
    assert len(inbox.requests) == 1


async def test_retry_after_seconds_delays_the_next_attempt(alice_key, key_store) -> None:
    """429 Retry-After: 120 -> next attempt >= 120 s."""
    inbox = Inbox(key_store, [(429, {"Retry-After": "120"})])
    outcome = await run(inbox, alice_key)
    assert (outcome.kind, outcome.retry_after) == ("retry", 120.0)
    delay = next_attempt_delay(1, outcome.retry_after, jitter=lambda n: 0.0)
    assert delay is not None and delay >= timedelta(seconds=120)


async def test_retry_after_http_date(alice_key, key_store) -> None:
    later = format_http_date(T0 + timedelta(minutes=10))
    inbox = Inbox(key_store, [(503, {"Retry-After": later})])
    outcome = await run(inbox, alice_key)
    assert (outcome.kind, outcome.retry_after) == ("retry", 600.0)


@pytest.mark.parametrize("refusal", [400, 401, 403])
async def test_a_refused_signature_knocks_again_with_the_other_scheme(
    alice_key, key_store, refusal
) -> None:
    """draft-cavage first (what nearly every server verifies); a server that refuses it
    (401 from Mastodon and GoToSocial, 400 or 403 from others) gets one more POST signed
    RFC 9421 (Fedify's double knock), and the outcome says which scheme worked, to be tried
    first next time."""
    inbox = Inbox(key_store, [refusal, 202])
    outcome = await run(inbox, alice_key)
    assert (outcome.kind, outcome.scheme) == ("delivered", "rfc9421")
    assert inbox.verified == ["cavage", "rfc9421"]
    assert [r.content for r in inbox.requests] == [BODY, BODY]
    remembered = Inbox(key_store, [202])
    async with client_for(remembered) as client:
        again = await deliver(client, INBOX, BODY, KEY_ID, alice_key.private_pem, now=T0,
                              first=outcome.scheme)  # fmt: skip
    assert again.kind == "delivered" and remembered.verified == ["rfc9421"]


async def test_401_twice_is_retry(alice_key, key_store) -> None:
    """401 is not permanent: the receiver may only fail to verify for now."""
    inbox = Inbox(key_store, [401, 401])
    assert (await run(inbox, alice_key)).kind == "retry"


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (200, "delivered"),
        (202, "delivered"),
        (204, "delivered"),
        (400, "permanent"),
        (403, "permanent"),
        (404, "permanent"),
        (422, "permanent"),
        (408, "retry"),
        (429, "retry"),
        (500, "retry"),
        (502, "retry"),
        (503, "retry"),
        (410, "gone"),
    ],
)
def test_classification(status: int, kind: str) -> None:
    """4xx other than 401/408/429 are permanent; 410 means gone."""
    assert classify(status).kind == kind


@pytest.mark.parametrize(
    "error",
    [
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
        httpx.RemoteProtocolError("garbage"),
    ],
)
async def test_network_errors_are_retried(alice_key, error) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise error

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        outcome = await deliver(client, INBOX, BODY, KEY_ID, alice_key.private_pem, now=T0)
    assert (outcome.kind, outcome.status) == ("retry", None)


async def test_our_own_mistakes_raise(alice_key) -> None:
    async with httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(202))) as c:
        with pytest.raises(DeliveryError):
            await deliver(c, "ftp://b.example/inbox", BODY, KEY_ID, alice_key.private_pem)
        with pytest.raises(DeliveryError):
            await deliver(c, INBOX, BODY, KEY_ID, "not a pem")


def test_schedule_shape() -> None:
    """Like Mastodon: 16 retries, attempt**4 + 15 s + jitter, about 2-3 days in total."""
    delays = [next_attempt_delay(n, jitter=lambda n: 0.0) for n in range(1, MAX_RETRIES + 2)]
    assert delays[-1] is None
    gaps = [d for d in delays if d is not None]
    assert len(gaps) == 16
    assert gaps[0] == timedelta(seconds=16)
    assert gaps == sorted(gaps)
    total = sum(gaps, timedelta())
    assert timedelta(days=2) <= total <= timedelta(days=3)
    jittered = next_attempt_delay(3)
    assert jittered is not None and timedelta(seconds=96) <= jittered <= timedelta(seconds=136)


def test_retry_after_is_capped() -> None:
    delay = next_attempt_delay(1, 10 * 24 * 3600, jitter=lambda n: 0.0)
    assert delay == RETRY_AFTER_CAP


def test_parse_retry_after() -> None:
    assert parse_retry_after("30") == 30.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after(format_http_date(T0 - timedelta(hours=1)), T0) == 0.0
