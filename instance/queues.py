"""The queues of durable work, declared in one table: lease, retry schedule, attempts.

Every background step is a row (instance/storage/models.py `WorkRow`) moved by
instance/jobs.py; how long a claim holds its row, when a failed row runs again and how often
it may run are declared here, once per queue:

    queue       row             lease                  retries after attempt n     attempts
    inbox       InboxItem       30 s, renewed while    Mastodon's curve (below)    5
                                it is handled
    delivery    Delivery        10 s, renewed while    Mastodon's curve,           17
                                the POST is in flight  Retry-After honoured
    generation  GenerationJob   set per batch by the   30 s x 2^(n-1), <= 1 h      3
                                GPU worker (below)

- Mastodon's curve is `activitypub.delivery.next_attempt_delay`: n^4 + 15 s plus jitter
  (about 2.8 days over 16 retries), a Retry-After honoured up to 6 h.
- Only transient failures are retried (no answer, 429, 5xx; for generation what the GPU
  worker calls transient); a refusal or a bad document fails the row at once. A delivery
  of an activity in ONE_TRY_KINDS is not retried after any error answer either: a peer that
  answers a QuoteRequest with a 500 (GoToSocial 0.20) will never understand it.
- A lease is how long a claimed row stays ours: when its worker dies, another claims it once
  the lease has passed. Inbox items and deliveries renew theirs while they are handled, so
  a short lease costs nothing and a crash is recovered within seconds. A generation batch is
  leased for as long as it may take: `job_timeout_s` per job in the batch, plus the GPU
  worker's grace period and a minute.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from activitypub.delivery import next_attempt_delay

Backoff = Callable[[int, float | None], timedelta | None]
"""(attempts so far, the peer's Retry-After in seconds) -> delay, or None to give up."""


def mastodon_curve(attempts: int, retry_after: float | None) -> timedelta | None:
    return next_attempt_delay(attempts, retry_after)


def doubling(base: timedelta, ceiling: timedelta) -> Backoff:
    def delay(attempts: int, retry_after: float | None) -> timedelta | None:
        return min(base * (1 << max(0, attempts - 1)), ceiling)

    return delay


@dataclass(frozen=True)
class Queue:
    name: str  # also the name of the worker that drains it
    lease: timedelta | None  # None: set per claim (generation)
    max_attempts: int
    backoff: Backoff

    @property
    def fixed_lease(self) -> timedelta:
        """The lease of a queue that has one for every claim (all but generation)."""
        if self.lease is None:
            raise ValueError(f"the {self.name} queue sets its lease per claim")
        return self.lease

    def retry_delay(self, attempts: int, retry_after: float | None = None) -> timedelta | None:
        """When a row that failed on attempt `attempts` (1-based) runs again; None: never."""
        if attempts >= self.max_attempts:
            return None
        return self.backoff(attempts, retry_after)


ONE_TRY_KINDS = frozenset({"QuoteRequest"})
"""Outbound activity types whose delivery an error answer ends (a timeout or 429 is still
retried); the remix waiting for it is published as an unapproved quote (content/quotes.py)."""

INBOX = Queue("inbox", lease=timedelta(seconds=30), max_attempts=5, backoff=mastodon_curve)
DELIVERY = Queue("delivery", lease=timedelta(seconds=10), max_attempts=17, backoff=mastodon_curve)
GENERATION = Queue(
    "generation",
    lease=None,
    max_attempts=3,
    backoff=doubling(timedelta(seconds=30), timedelta(hours=1)),
)
