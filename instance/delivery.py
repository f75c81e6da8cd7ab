"""The delivery worker: due Delivery rows -> signed POSTs -> done / retry / failed.

One `run_once()` keeps up to `[federation] delivery_concurrency` POSTs in flight until no
due row is left, so a test (or the worker loop) drives a whole fan-out with one call:

- **Claiming** goes through instance/jobs.py, fair across hosts: each claim ranks due rows
  per host and takes them round-robin (every host's first row, then every host's second...),
  never more than `delivery_per_host` in flight per host, skipping paused domains
  (instance/domains.py) and rows already in flight here.
- **Sending** is `activitypub.delivery.deliver` over the runtime's shared SSRF-guarded client,
  signing the activity's stored bytes with its account's key, under an overall deadline of
  `delivery_timeout_s`.
- **A slow domain never delays healthy ones.** Besides the per-host cap, a POST still
  waiting after `SLOW_AFTER` seconds stops counting against the concurrency (it only holds a
  socket) and frees its slot for the next host, up to `PARKED_FACTOR * concurrency` of them.
- **Outcomes** are written in batches (one transaction per batch, together with the next
  claim): 2xx done; retry on `next_attempt_delay` (the one schedule, Retry-After honoured),
  failed once it gives up; 410 forgets the follower (`forget_gone_inbox`); other 4xx failed
  with the reason. Domain health learns from every answer.
- **Crash safety.** Claimed rows are leased for `LEASE` and the lease is renewed while they
  are in flight, so after a SIGKILL another start takes them again within `LEASE`
  (at-least-once: at most the rows in flight at the kill are sent twice).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from activitypub.delivery import DeliveryOutcome, deliver, next_attempt_delay
from activitypub.errors import DeliveryError
from activitypub.urls import host_of

from . import domains, jobs
from .runtime import Runtime
from .storage.models import Account, Delivery, Follow, OutboundActivity

log = logging.getLogger("dreamloom.delivery")

LEASE = timedelta(seconds=10)  # how long a claimed row is ours: recovery time after a crash
LEASE_RENEW = LEASE.total_seconds() / 4  # leases of rows in flight are renewed this often
SLOW_AFTER = 1.0  # seconds before an unanswered POST stops holding a concurrency slot
PARKED_FACTOR = 3  # parked (slow) POSTs allowed, as a multiple of delivery_concurrency
FLUSH_EVERY = 0.2  # seconds: the longest an outcome waits before it is written
FLUSH_BATCH = 64  # outcomes waiting that trigger a write before FLUSH_EVERY


@dataclass(frozen=True, slots=True)
class Job:
    """One claimed delivery, detached from its session."""

    id: int
    activity_id: int
    inbox: str
    host: str
    attempts: int


@dataclass(frozen=True, slots=True)
class Signed:
    """What every delivery of one activity sends: the stored bytes and the signing key."""

    body: bytes
    key_id: str
    private_pem: str
    account_id: int


@dataclass(frozen=True, slots=True)
class Result:
    job: Job
    outcome: DeliveryOutcome


class InFlight:
    """The POSTs of one `run_once`: running tasks, the slow ones parked, outcomes to write."""

    def __init__(self, max_parked: int) -> None:
        self.tasks: dict[asyncio.Task[DeliveryOutcome], tuple[Job, float]] = {}
        self.parked: set[asyncio.Task[DeliveryOutcome]] = set()
        self.results: list[Result] = []
        self.max_parked = max_parked
        self.last_write = self.last_renew = time.monotonic()

    @property
    def active(self) -> int:
        return len(self.tasks) - len(self.parked)

    def jobs(self) -> list[Job]:
        return [job for job, _ in self.tasks.values()]

    def start(self, job: Job, send: Coroutine[Any, Any, DeliveryOutcome]) -> None:
        self.tasks[asyncio.create_task(send)] = (job, time.monotonic())

    async def wait(self) -> bool:
        """Wait a little for POSTs to finish; collect their outcomes, park the slow ones."""
        if not self.tasks:
            return False
        done, _ = await asyncio.wait(
            self.tasks, timeout=FLUSH_EVERY, return_when=asyncio.FIRST_COMPLETED
        )
        for task in done:
            job, _started = self.tasks.pop(task)
            self.parked.discard(task)
            self.results.append(Result(job, task.result()))
        cutoff = time.monotonic() - SLOW_AFTER
        for task, (_job, started) in self.tasks.items():
            if len(self.parked) >= self.max_parked:
                break
            if started < cutoff:
                self.parked.add(task)
        return bool(done)

    def write_due(self) -> bool:
        waited = time.monotonic() - self.last_write
        return (
            len(self.results) >= FLUSH_BATCH
            or self.renew_due()
            or bool(self.results and (waited >= FLUSH_EVERY or not self.tasks))
        )

    def renew_due(self) -> bool:
        return bool(self.tasks) and time.monotonic() - self.last_renew >= LEASE_RENEW

    def take_results(self) -> list[Result]:
        """All outcomes so far. Claims happen only with a write that takes them all, so the
        rows leased at any moment are at most the POSTs started, and a crash re-sends no more
        than that (SECURITY goal 4: duplicates <= concurrency, plus any parked)."""
        batch, self.results = self.results, []
        return batch

    def wrote(self, renewed: bool) -> None:
        self.last_write = time.monotonic()
        if renewed:
            self.last_renew = self.last_write

    def cancel(self) -> None:
        for task in self.tasks:
            task.cancel()


class DeliveryWorker:
    name = "delivery"

    def __init__(self, rt: Runtime) -> None:
        fed = rt.settings.federation
        self.rt = rt
        self.concurrency = max(1, fed.delivery_concurrency)
        self.per_host = max(1, fed.delivery_per_host)
        self.timeout = fed.delivery_timeout_s
        self.max_parked = PARKED_FACTOR * self.concurrency
        self.activities: dict[int, Signed | None] = {}

    # -- the loop ------------------------------------------------------------------------
    async def run_once(self) -> int:
        """Deliver every due row (and rows that become claimable meanwhile); return how many
        outcomes were recorded."""
        flight = InFlight(self.max_parked)
        recorded = 0
        more = True  # whether a claim may find rows
        try:
            while True:
                room = self.concurrency - flight.active
                want_rows = more and room > 0 and (4 * room >= self.concurrency or not flight.tasks)
                if want_rows or flight.write_due():
                    batch, renew = flight.take_results(), flight.renew_due()
                    claimed = await self._write_and_claim(
                        batch, room if want_rows else 0, flight.jobs(), renew
                    )
                    recorded += len(batch)
                    flight.wrote(renew)
                    more = more and not (want_rows and len(claimed) < room)
                    for job, signed in claimed:
                        flight.start(job, self._send(job, signed))
                if not flight.tasks and not flight.results:
                    return recorded
                if await flight.wait():
                    more = True  # a finished row may have freed its host's cap
        finally:
            flight.cancel()  # rows still in flight stay leased and are taken again later

    async def _send(self, job: Job, signed: Signed | None) -> DeliveryOutcome:
        if signed is None:
            return DeliveryOutcome("permanent", None, "the activity or its signing key is gone")
        try:
            async with asyncio.timeout(self.timeout):
                return await deliver(
                    self.rt.http, job.inbox, signed.body, signed.key_id, signed.private_pem,
                    now=self.rt.now(),
                )  # fmt: skip
        except TimeoutError:
            return DeliveryOutcome("retry", None, f"no answer within {self.timeout:g} s")
        except DeliveryError as exc:
            return DeliveryOutcome("permanent", None, str(exc))

    # -- one transaction: record outcomes, renew leases, claim more -----------------------
    async def _write_and_claim(
        self, results: list[Result], room: int, in_flight: list[Job], renew: bool
    ) -> list[tuple[Job, Signed | None]]:
        now = self.rt.now()
        async with self.rt.session() as session:
            if results:
                await self._record(session, results, now)
            if renew and in_flight:
                await session.execute(
                    update(Delivery)
                    .where(Delivery.id.in_([j.id for j in in_flight]), Delivery.status == "running")
                    .values(locked_until=now + LEASE)
                    .execution_options(synchronize_session=False)
                )
            if room <= 0:
                return []
            rows = await self._claim(session, room, in_flight, now)
            jobs_ = [Job(r.id, r.activity_id, r.inbox_uri, r.host, r.attempts) for r in rows]
            await self._load_activities(session, {j.activity_id for j in jobs_})
        return [(job, self.activities.get(job.activity_id)) for job in jobs_]

    async def _claim(
        self, session: AsyncSession, room: int, in_flight: list[Job], now: datetime
    ) -> list[Delivery]:
        """Up to `room` due rows, round-robin across hosts, within each host's cap."""
        busy = Counter(job.host for job in in_flight)
        rank = func.row_number().over(
            partition_by=Delivery.host, order_by=(Delivery.run_at, Delivery.id)
        )
        ranked = (
            select(Delivery.id, Delivery.host, Delivery.run_at, rank.label("rank"))
            .where(
                jobs.due(Delivery, now),
                Delivery.host.not_in(domains.unavailable_hosts()),
                Delivery.id.not_in([job.id for job in in_flight]),
            )
            .subquery()
        )
        budget: Any = self.per_host
        if busy:
            room_left = {host: self.per_host - n for host, n in busy.items()}
            budget = case(room_left, value=ranked.c.host, else_=self.per_host)
        fair = (
            select(ranked.c.id)
            .where(ranked.c.rank <= budget)
            .order_by(ranked.c.rank, ranked.c.run_at, ranked.c.id)
            .limit(room)
        )
        return await jobs.claim(
            session, Delivery, now=now, limit=room, lease=LEASE, where=[Delivery.id.in_(fair)]
        )

    async def _load_activities(self, session: AsyncSession, ids: set[int]) -> None:
        missing = ids - self.activities.keys()
        if not missing:
            return
        if len(self.activities) > 256:
            self.activities.clear()
        rows = await session.execute(
            select(
                OutboundActivity.id,
                OutboundActivity.body,
                Account.key_id,
                Account.private_key_pem,
                Account.id,
            )
            .join(Account, Account.id == OutboundActivity.account_id)
            .where(OutboundActivity.id.in_(missing))
        )
        for activity_id, body, key_id, pem, account_id in rows:
            if key_id and pem:
                self.activities[activity_id] = Signed(body.encode(), key_id, pem, account_id)
        for activity_id in missing - self.activities.keys():
            self.activities[activity_id] = None

    async def _record(self, session: AsyncSession, results: list[Result], now: datetime) -> None:
        by_id = {r.job.id: r for r in results}
        rows = await session.scalars(select(Delivery).where(Delivery.id.in_(by_id)))
        failed_hosts: set[str] = set()
        answered_hosts: set[str] = set()
        for row in rows:
            result = by_id[row.id]
            if row.status != "running" or row.attempts != result.job.attempts:
                continue  # our lease lapsed and someone else has the row now
            outcome = result.outcome
            row.last_status = outcome.status
            if domains.is_domain_failure(outcome.status):
                if outcome.kind == "retry":
                    failed_hosts.add(row.host)
            else:
                answered_hosts.add(row.host)
            self._apply(row, outcome, now)
            if outcome.kind == "gone":
                await forget_gone_inbox(session, row, self.activities.get(row.activity_id), now)
        for host in sorted(failed_hosts):
            if await domains.record_failure(session, host, now):
                log.warning(
                    "pausing deliveries to %s: failures on %d days", host, domains.PAUSE_AFTER_DAYS
                )
        for host in sorted(await domains.failing(session, answered_hosts)):
            await domains.record_answer(session, host, now)

    @staticmethod
    def _apply(row: Delivery, outcome: DeliveryOutcome, now: datetime) -> None:
        if outcome.kind == "delivered":
            jobs.finish(row, now)
        elif outcome.kind == "retry":
            delay = next_attempt_delay(row.attempts, outcome.retry_after)
            if delay is None:
                jobs.fail(row, now, f"gave up after {row.attempts} attempts: {outcome.detail}")
            else:
                jobs.retry(row, now, delay, outcome.detail)
        elif outcome.kind == "gone":
            jobs.fail(row, now, f"{outcome.detail}: the inbox is gone", status="gone")
        else:
            jobs.fail(row, now, f"{outcome.detail}: permanent, not retried")


async def forget_gone_inbox(
    session: AsyncSession, row: Delivery, signed: Signed | None, now: datetime
) -> None:
    """A 410 from an inbox (INTEROP 27).

    A personal inbox that is gone means its account is gone: its follows of our accounts are
    removed. A shared inbox that is gone says nothing about each account behind it, so those
    accounts stop using it: their follows stay, this activity is re-queued to their personal
    inboxes (when they follow its sender), and any of those that answer 410 in turn is
    removed by the rule above.
    """
    url = row.inbox_uri
    owners = select(Account.id).where(Account.local.is_(False), Account.inbox_uri == url)
    removed = await session.execute(delete(Follow).where(Follow.follower_id.in_(owners)))
    if removed.rowcount:  # type: ignore[attr-defined]
        log.info("%s is gone (410): removed its follows", url)
        return
    behind = Account.local.is_(False), Account.shared_inbox_uri == url
    personal: set[str] = set()
    if signed is not None:
        personal = set(
            await session.scalars(
                select(Account.inbox_uri)
                .join(Follow, Follow.follower_id == Account.id)
                .where(
                    *behind,
                    Account.inbox_uri.is_not(None),
                    Follow.followee_id == signed.account_id,
                    Follow.accepted.is_(True),
                )
            )
        )
    await session.execute(update(Account).where(*behind).values(shared_inbox_uri=None))
    queued = set(
        await session.scalars(
            select(Delivery.inbox_uri).where(Delivery.activity_id == row.activity_id)
        )
    )
    for inbox in sorted(personal - queued):
        session.add(
            Delivery(activity_id=row.activity_id, inbox_uri=inbox, host=host_of(inbox), run_at=now)
        )
