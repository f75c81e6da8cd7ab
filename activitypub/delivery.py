"""POST one activity to one inbox, classify the outcome, and the one retry policy.

`deliver` signs with draft-cavage, which all the major servers accept; on a 401 it knocks once
more with RFC 9421, then classifies the answer:

    2xx                                   delivered
    410                                   gone       (drop that follower / inbox)
    401 (after both), 408, 429, 5xx,
    network errors, timeouts              retry      (with `retry_after` when given)
    other 4xx, a blocked address          permanent

`next_attempt_delay(attempt, retry_after)` is the schedule, like Mastodon's: 16 retries
after the first attempt, `attempt**4 + 15 s` plus jitter (about 2.8 days in total),
Retry-After honoured up to a cap. The application stores `attempt` and the due time on its
delivery row; nothing here sleeps.
"""

from __future__ import annotations

import email.utils
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import httpx

from activitypub.errors import BlockedAddressError, DeliveryError, InvalidURLError, KeyFormatError
from activitypub.signatures import SignatureScheme, sign_request_headers
from activitypub.urls import origin_of

__all__ = [
    "MAX_RETRIES",
    "DeliveryOutcome",
    "OutcomeKind",
    "deliver",
    "next_attempt_delay",
    "parse_retry_after",
]

OutcomeKind = Literal["delivered", "retry", "permanent", "gone"]
CONTENT_TYPE = "application/activity+json"
MAX_RETRIES = 16
RETRY_AFTER_CAP = timedelta(hours=6)
_RETRYABLE_4XX = frozenset({401, 408, 429})


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    """What happened to one delivery attempt."""

    kind: OutcomeKind
    status: int | None
    detail: str
    retry_after: float | None = None
    scheme: SignatureScheme = "cavage"

    @property
    def should_retry(self) -> bool:
        return self.kind == "retry"


SIGNATURE_REFUSALS = frozenset({400, 401, 403})
"""What a server that cannot verify one signature scheme answers (Mastodon and GoToSocial
401, some servers 400 or 403)."""


async def deliver(
    client: httpx.AsyncClient,
    inbox_url: str,
    body: bytes,
    key_id: str,
    private_pem: str,
    *,
    now: datetime | None = None,
    first: SignatureScheme = "cavage",
) -> DeliveryOutcome:
    """Sign and POST `body` (the exact serialised bytes) to `inbox_url`; never raises for
    remote behaviour. Raises `DeliveryError` only for our own mistakes (bad URL, bad key).
    `client` must come from `netguard.make_client`.

    Signed with the `first` scheme (draft-cavage, unless the caller knows the server takes
    RFC 9421); a refusal of the signature (400, 401, 403) is tried once more with the other
    scheme, Fedify's "double knock". The outcome's `scheme` is the one that got the final
    answer: remember it per server and pass it as `first` next time."""
    try:
        origin_of(inbox_url)
    except InvalidURLError as exc:
        raise DeliveryError(f"cannot deliver to {inbox_url!r}: {exc}") from exc
    outcome = await _attempt(client, inbox_url, body, key_id, private_pem, first, now)
    if outcome.status in SIGNATURE_REFUSALS:
        other: SignatureScheme = "cavage" if first == "rfc9421" else "rfc9421"
        outcome = await _attempt(client, inbox_url, body, key_id, private_pem, other, now)
    return outcome


async def _attempt(
    client: httpx.AsyncClient,
    inbox_url: str,
    body: bytes,
    key_id: str,
    private_pem: str,
    scheme: SignatureScheme,
    now: datetime | None,
) -> DeliveryOutcome:
    try:
        headers = sign_request_headers(
            "POST", inbox_url, key_id=key_id, private_pem=private_pem, body=body,
            content_type=CONTENT_TYPE, scheme=scheme, now=now,
        )  # fmt: skip
    except KeyFormatError as exc:
        raise DeliveryError(f"cannot sign with key {key_id}: {exc}") from exc
    headers["Accept"] = CONTENT_TYPE
    request = client.build_request("POST", inbox_url, content=body, headers=headers)
    try:
        response = await client.send(request, stream=True)
    except BlockedAddressError as exc:
        return DeliveryOutcome("permanent", None, exc.message, scheme=scheme)
    except httpx.TimeoutException as exc:
        return DeliveryOutcome("retry", None, f"timeout: {type(exc).__name__}", scheme=scheme)
    except httpx.HTTPError as exc:
        return DeliveryOutcome("retry", None, f"network error: {exc}", scheme=scheme)
    await response.aclose()  # the answer's body is never needed, and may be hostile
    return classify(response.status_code, response.headers.get("retry-after"), now, scheme)


def classify(
    status: int,
    retry_after_header: str | None = None,
    now: datetime | None = None,
    scheme: SignatureScheme = "cavage",
) -> DeliveryOutcome:
    """Map an HTTP status (and Retry-After) to an outcome."""
    detail = f"HTTP {status}"
    if 200 <= status < 300:
        return DeliveryOutcome("delivered", status, detail, scheme=scheme)
    if status == 410:
        return DeliveryOutcome("gone", status, detail, scheme=scheme)
    if status >= 500 or status in _RETRYABLE_4XX:
        retry_after = parse_retry_after(retry_after_header, now)
        return DeliveryOutcome("retry", status, detail, retry_after, scheme=scheme)
    return DeliveryOutcome("permanent", status, detail, scheme=scheme)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After value (delta-seconds or HTTP-date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when
    moment = now or datetime.now(UTC)
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
    return max(0.0, (when - moment).total_seconds())


def next_attempt_delay(
    attempt: int,
    retry_after: float | None = None,
    *,
    jitter: Callable[[int], float] | None = None,
) -> timedelta | None:
    """How long to wait after failed attempt number `attempt` (1-based); None = give up.

    Mastodon/Sidekiq's curve: `attempt**4 + 15 s + jitter` for 16 retries (~2.8 days in
    all); `jitter(attempt)` defaults to Sidekiq's `rand(10) * (attempt + 1)` seconds. A
    Retry-After (seconds) is honoured up to `RETRY_AFTER_CAP`.
    """
    if attempt < 1:
        raise ValueError("attempt numbers start at 1")
    if attempt > MAX_RETRIES:
        return None
    extra = jitter(attempt) if jitter else random.uniform(0, 10) * (attempt + 1)
    delay = timedelta(seconds=attempt**4 + 15 + extra)
    if retry_after is not None and retry_after > 0:
        delay = max(delay, min(timedelta(seconds=retry_after), RETRY_AFTER_CAP))
    return delay
