"""The delivery worker: due Delivery rows -> signed POSTs -> done / retry / failed.

One `run_once()` keeps up to `[federation] delivery_concurrency` POSTs in flight until no
due row is left, so a test (or the worker loop) drives a whole fan-out with one call:

- **Claiming** (instance/outbound/claim.py, leased through instance/jobs.py) is fair across
  hosts: round-robin (every host's first row, then every host's second...), never more
  than `delivery_per_host` running per host, skipping paused and suspended domains; it
  walks the due index and stops after a few windows, so its cost does not grow with the
  number of due rows.
- **Sending** is `activitypub.delivery.deliver` over the runtime's shared SSRF-guarded client,
  signing the activity's stored bytes with its account's key, under an overall deadline of
  `delivery_timeout_s`: RFC 9421 first to a server known to take it (it signed to us that
  way, or took it after refusing draft-cavage: instance/outbound/domains.py), else
  draft-cavage first; a refused signature is sent once more with the other scheme.
- **A slow domain never delays healthy ones.** Besides the per-host cap, a POST still
  waiting after `SLOW_AFTER` seconds stops counting against the concurrency (it only holds a
  socket) and frees its slot for the next host, as many as the client's pool has room for
  (`runtime.delivery_connections`, less twice the concurrency): at 10,000 servers of which
  5% take 5-10 s, ~100 slow POSTs are open at any time.
- **Outcomes** are written in batches by one writer task while the POSTs go on (one
  transaction records the outcomes so far and claims the next rows): 2xx done; retried on
  the delivery queue's schedule (instance/queues.py, Retry-After honoured), failed once it
  gives up; 410 forgets the follower (`forget_gone_inbox`); other 4xx failed with the
  reason; an activity of a ONE_TRY_KINDS kind (a QuoteRequest:
  instance/queues.py) fails at the first error answer. Domain
  health learns from every answer, and each attempt is counted by outcome
  (instance/metrics.py).
- **Crash safety.** Claimed rows are leased for the queue's lease and the lease is renewed
  while they are in flight, so after a SIGKILL another start takes them again within `LEASE`
  (at-least-once: at most the POSTs in flight at the kill are sent twice, see `InFlight`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import get_args

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from activitypub.delivery import DeliveryOutcome, OutcomeKind, deliver
from activitypub.errors import DeliveryError
from activitypub.signatures import SignatureScheme
from activitypub.urls import authority_of
from instance import jobs
from instance.metrics import DELIVERY_ATTEMPTS
from instance.outbound import domains
from instance.outbound.claim import claim_fair
from instance.queues import DELIVERY, ONE_TRY_KINDS
from instance.runtime import Runtime, delivery_connections
from instance.storage.models import Account, Delivery, Follow, OutboundActivity

log = logging.getLogger("dreamloom.delivery")

SCHEMES: frozenset[SignatureScheme] = frozenset({"cavage", "rfc9421"})
LEASE = DELIVERY.fixed_lease  # how long a claimed row is ours: recovery time after a crash
LEASE_RENEW = LEASE.total_seconds() / 4  # leases of rows in flight are renewed this often
SLOW_AFTER = 1.0  # seconds before an unanswered POST stops holding a concurrency slot
TICK = 0.2  # seconds between checks for slow POSTs and leases to renew
READY_AHEAD = 2  # claimed rows kept ready to start, as a multiple of delivery_concurrency
ATTEMPTS = {kind: DELIVERY_ATTEMPTS.labels(kind) for kind in get_args(OutcomeKind)}


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
    retried: bool = True  # False: an answer that is a failure is final (queues.ONE_TRY_KINDS)


@dataclass(frozen=True, slots=True)
class Result:
    job: Job
    outcome: DeliveryOutcome


class InFlight:
    """The rows one `run_once` holds: claimed and ready to start, POSTs running (the slow ones
    parked), outcomes waiting for the writer and outcomes being written.

    A POST holds one of the `concurrency` slots from its start until its outcome is committed
    (or until it is parked), so the rows sent but not yet recorded are never more than the
    slots plus the parked POSTs: that is all a crash can make us send twice.
    Claimed rows that were never started are simply taken again after their lease.
    """

    def __init__(self, concurrency: int, max_parked: int) -> None:
        self.concurrency = concurrency
        self.max_parked = max_parked
        self.ready: deque[tuple[Job, Signed | None]] = deque()
        self.tasks: dict[asyncio.Task[DeliveryOutcome], tuple[Job, float]] = {}
        self.parked: set[asyncio.Task[DeliveryOutcome]] = set()
        self.unparked: deque[asyncio.Task[DeliveryOutcome]] = deque()  # in start order
        self.finished: list[asyncio.Task[DeliveryOutcome]] = []  # done, not yet collected
        self.wake = asyncio.Event()  # set by every finished POST and by the writer
        self.results: list[Result] = []
        self.writing: list[Result] = []
        self.last_renew = time.monotonic()

    @property
    def busy(self) -> int:
        return len(self.tasks) - len(self.parked) + len(self.results) + len(self.writing)

    @property
    def idle(self) -> bool:
        return not (self.ready or self.tasks or self.results or self.writing)

    def leased(self) -> list[Job]:
        """Rows we hold that no write is about to release."""
        running = [job for job, _ in self.tasks.values()]
        return running + [job for job, _ in self.ready] + [r.job for r in self.results]

    def start_ready(self, send: Callable[[Job, Signed | None], Awaitable[DeliveryOutcome]]) -> None:
        while self.ready and self.busy < self.concurrency:
            job, signed = self.ready.popleft()
            task = asyncio.ensure_future(send(job, signed))
            task.add_done_callback(self._done)
            self.tasks[task] = (job, time.monotonic())
            self.unparked.append(task)

    def _done(self, task: asyncio.Task[DeliveryOutcome]) -> None:
        self.finished.append(task)
        self.wake.set()

    async def wait(self, seconds: float) -> None:
        """Until a POST finishes or the writer is done (their callbacks set `wake`), at most
        `seconds`. Not asyncio.wait over every task: that adds and removes a callback on
        each of the hundreds of POSTs in flight, on every turn of the loop."""
        if self.finished:
            return
        self.wake.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self.wake.wait()

    def collect(self) -> bool:
        """Outcomes of finished POSTs; then park POSTs unanswered after SLOW_AFTER."""
        finished = [task for task in self.finished if task in self.tasks]
        self.finished.clear()
        for task in finished:
            job, _started = self.tasks.pop(task)
            self.parked.discard(task)
            self.results.append(Result(job, task.result()))
        cutoff = time.monotonic() - SLOW_AFTER
        while self.unparked and len(self.parked) < self.max_parked:
            task = self.unparked[0]
            if task in self.tasks:
                if self.tasks[task][1] >= cutoff:
                    break  # started later than the cutoff, and so did every one after it
                self.parked.add(task)
            self.unparked.popleft()
        return bool(finished)

    def renew_due(self) -> bool:
        return bool(self.tasks) and time.monotonic() - self.last_renew >= LEASE_RENEW

    def start_write(self) -> list[Result]:
        self.writing, self.results = self.results, []
        return self.writing

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
        # parked POSTs hold sockets of the pool: room is left for the running ones (twice)
        self.max_parked = delivery_connections(rt.settings) - 2 * self.concurrency
        self.activities: dict[int, Signed | None] = {}
        self.schemes: dict[str, SignatureScheme] = {}  # hosts to sign RFC 9421 first

    # -- the loop ------------------------------------------------------------------------
    async def run_once(self) -> int:
        """Deliver every due row (and rows that become claimable meanwhile); return how many
        outcomes were recorded.

        POSTs run while the one writer task records outcomes and claims the next rows, so
        the database never holds up sending."""
        flight = InFlight(self.concurrency, self.max_parked)
        writer: asyncio.Task[list[tuple[Job, Signed | None]]] | None = None
        wanted, recorded = 0, 0
        more = True  # whether a claim may find rows
        finished = finished_at_claim = 0  # POSTs finished (they free their host's cap)
        try:
            while True:
                flight.start_ready(self._send)
                if writer is None:
                    wanted = READY_AHEAD * self.concurrency - len(flight.ready) if more else 0
                    if 2 * wanted < self.concurrency and flight.tasks:
                        wanted = 0  # claim in chunks, not one row per finished POST
                    renew = flight.renew_due()
                    if wanted or flight.results or renew:
                        batch = flight.start_write()
                        writer = asyncio.create_task(
                            self._write_and_claim(batch, wanted, flight.leased(), renew)
                        )
                        writer.add_done_callback(lambda _: flight.wake.set())
                        finished_at_claim = finished
                        if renew:
                            flight.last_renew = time.monotonic()
                if writer is None and flight.idle:
                    return recorded
                if writer is None or not writer.done():
                    await flight.wait(TICK)
                if writer is not None and writer.done():
                    claimed = writer.result()
                    writer = None
                    recorded += len(flight.writing)
                    flight.writing = []
                    flight.ready.extend(claimed)
                    if wanted and len(claimed) < wanted and finished == finished_at_claim:
                        more = False  # nothing else is due until a POST finishes
                if flight.collect():
                    finished += 1
                    more = True
        finally:
            flight.cancel()  # rows still in flight stay leased and are taken again later
            if writer is not None:
                writer.cancel()

    async def _send(self, job: Job, signed: Signed | None) -> DeliveryOutcome:
        if signed is None:
            return DeliveryOutcome("permanent", None, "the activity or its signing key is gone")
        try:
            async with asyncio.timeout(self.timeout):
                return await deliver(
                    self.rt.http, job.inbox, signed.body, signed.key_id, signed.private_pem,
                    now=self.rt.now(), first=self.schemes.get(job.host, "cavage"),
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
            rows = await claim_fair(
                session, now=now, room=room, per_host=self.per_host,
                mine=[job.id for job in in_flight],
            )  # fmt: skip
            jobs_ = [Job(r.id, r.activity_id, r.inbox_uri, r.host, r.attempts) for r in rows]
            await self._load_activities(session, {j.activity_id for j in jobs_})
            known = await domains.signature_schemes(session, {j.host for j in jobs_})
            self.schemes.update({h: s for h, s in known.items() if s in SCHEMES})
        return [(job, self.activities.get(job.activity_id)) for job in jobs_]

    async def _load_activities(self, session: AsyncSession, ids: set[int]) -> None:
        """Bodies are cached across batches; keys are read for every batch, so a key rotated
        by `dreamloom account rotate-key` signs this server's retries from the next batch."""
        if len(self.activities) > 256:
            self.activities.clear()
        await self._refresh_keys(session, ids & self.activities.keys())
        missing = ids - self.activities.keys()
        if not missing:
            return
        rows = await session.execute(
            select(
                OutboundActivity.id,
                OutboundActivity.body,
                Account.key_id,
                Account.private_key_pem,
                Account.id,
                OutboundActivity.kind,
            )
            .join(Account, Account.id == OutboundActivity.account_id)
            .where(OutboundActivity.id.in_(missing))
        )
        for activity_id, body, key_id, pem, account_id, kind in rows:
            if key_id and pem:
                self.activities[activity_id] = Signed(
                    body.encode(), key_id, pem, account_id, retried=kind not in ONE_TRY_KINDS
                )
        for activity_id in missing - self.activities.keys():
            self.activities[activity_id] = None

    async def _refresh_keys(self, session: AsyncSession, cached: set[int]) -> None:
        signed = {i: self.activities[i] for i in cached}
        accounts = {x.account_id for x in signed.values() if x is not None}
        if not accounts:
            return
        rows = await session.execute(
            select(Account.id, Account.key_id, Account.private_key_pem).where(
                Account.id.in_(accounts)
            )
        )
        keys = {account_id: (key_id, pem) for account_id, key_id, pem in rows}
        for activity_id, old in signed.items():
            if old is None:
                continue
            key_id, pem = keys.get(old.account_id, (None, None))
            if not key_id or not pem:
                self.activities[activity_id] = None  # the key is gone: nothing to sign with
            elif (key_id, pem) != (old.key_id, old.private_pem):
                self.activities[activity_id] = replace(old, key_id=key_id, private_pem=pem)

    async def _record(self, session: AsyncSession, results: list[Result], now: datetime) -> None:
        for result in results:
            ATTEMPTS[result.outcome.kind].inc()  # every POST, its outcome ours to write or not
        failed_hosts: set[str] = set()
        answered_hosts: set[str] = set()
        plain, by_id = [], {}  # plain: delivered, nothing else to learn (most of a fan-out)
        for r in results:
            known = self.schemes.get(r.job.host, "cavage")
            if r.outcome.kind == "delivered" and r.outcome.scheme == known:
                plain.append(r)
            else:
                by_id[r.job.id] = r
        await jobs.finish_held(session, Delivery, [
            {"id": r.job.id, "attempts": r.job.attempts, "last_status": r.outcome.status}
            for r in plain
        ], now)  # fmt: skip
        for r in plain:
            answered_hosts.add(r.job.host)
            log.info("delivered to %s (%s)", r.job.host, r.outcome.status,
                     extra={"host": r.job.host, "inbox": r.job.inbox, "status": r.outcome.status})
        rows: list[Delivery] = []
        if by_id:
            rows = list(await session.scalars(select(Delivery).where(Delivery.id.in_(by_id))))
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
            signed = self.activities.get(row.activity_id)
            self._apply(row, outcome, now, retried=signed is None or signed.retried)
            if outcome.kind == "delivered":
                log.info("delivered to %s (%s)", row.host, outcome.status,
                         extra={"host": row.host, "inbox": row.inbox_uri, "status": outcome.status})
            else:
                status_now: str = row.status  # what _apply made it
                then = "retried later" if status_now == "queued" else f"{status_now}, not retried"
                log.info("delivery to %s failed: %s (%s)", row.host, outcome.detail, then,
                         extra={"host": row.host, "inbox": row.inbox_uri, "reason": outcome.detail,
                                "status": outcome.status, "next": row.status})
            if outcome.kind == "delivered" and outcome.scheme != self.schemes.get(
                row.host, "cavage"
            ):
                self.schemes[row.host] = outcome.scheme
                await domains.remember_scheme(session, row.host, outcome.scheme)
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
    def _apply(row: Delivery, outcome: DeliveryOutcome, now: datetime, retried: bool) -> None:
        if outcome.kind == "delivered":
            jobs.finish(row, now)
        elif outcome.kind == "retry" and not retried and outcome.status not in (None, 429):
            jobs.fail(row, now, f"{outcome.detail}: the peer cannot take it, not retried")
        elif outcome.kind == "retry":
            delay = DELIVERY.retry_delay(row.attempts, outcome.retry_after)
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
    """A 410 Gone from an inbox.

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
        session.add(Delivery(activity_id=row.activity_id, inbox_uri=inbox, host=authority_of(inbox),
                             run_at=now, created_at=now))  # fmt: skip
