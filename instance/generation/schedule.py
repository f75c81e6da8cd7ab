"""Timed work: AI accounts posting on a schedule, and remixes whose quote approval timed out.

An AI account with `schedule_minutes` posts a new image every N minutes. `ScheduleWorker`
(name "schedule") runs both timed policies each step:

- **scheduled posts.** For each AI account whose `next_post_at` is due, claim the slot with a
  conditional UPDATE (`next_post_at` still holds the value we read), so concurrent workers
  post a slot once; then queue a generation job (`then={"post": {"visibility": "public"}}`)
  in the same transaction. The prompt is the next of the persona's `prompts` (or of
  `SUBJECTS`), in an order shuffled per account, so N consecutive posts use N different
  subjects; the persona's style is appended by `generation.build_recipe`. Slots follow each
  other every N minutes; an instance that was down skips the missed ones instead of posting
  them in a burst. A full queue (or a full disk) postpones the slot by `POSTPONE`; an invalid
  persona recipe skips the slot (logged).
- **quote timeouts.** Remixes still awaiting a quote approval after `quotes.QUOTE_TIMEOUT`
  are published as plain links (`quotes.expire_pending`): a server that never answers does
  not hold a remix back for ever.
"""

from __future__ import annotations

import logging
import random
import re
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from instance.content import quotes
from instance.errors import (
    GenerationRefused,
    InvalidGenerationRequest,
    ScheduleError,
)
from instance.generation.requests import enqueue
from instance.runtime import Runtime
from instance.storage.models import Account

log = logging.getLogger("dreamloom.schedule")

MIN_MINUTES = 5
MAX_MINUTES = 7 * 24 * 60
POSTPONE = timedelta(minutes=1)  # a slot the queue had no room for is tried again after it
SCHEDULE_FORMS = "a duration like 90m, 2h or 1h30m (5m to 7 days), or off"
_DURATION = re.compile(r"^(?:(\d{1,6})h)?(?:(\d{1,6})m(?:in)?)?$")

SUBJECTS = (
    "a lighthouse on a stormy coast",
    "a quiet mountain lake at dawn",
    "a fox sleeping in fresh snow",
    "a busy night market lit by lanterns",
    "an old library with tall windows",
    "a heron standing in reeds",
    "a desert town under a full moon",
    "a sailboat on a glassy sea",
    "a greenhouse full of ferns",
    "a city street after the rain",
    "a field of sunflowers at noon",
    "a cat on a windowsill",
    "a waterfall in a misty forest",
    "a train crossing a stone bridge",
    "a bowl of ripe fruit on a table",
    "a hot air balloon over hills",
)


def parse_schedule(value: str) -> int | None:
    """'90m' -> 90, '2h' -> 120, '1h30m' -> 90, 'off' -> None; ScheduleError otherwise."""
    text = value.strip().lower()
    if text in ("off", "none", "0"):
        return None
    m = _DURATION.match(text)
    if not text or m is None or not any(m.groups()):
        raise ScheduleError(f"expected {SCHEDULE_FORMS}; got {value!r}")
    minutes = int(m.group(1) or 0) * 60 + int(m.group(2) or 0)
    if not MIN_MINUTES <= minutes <= MAX_MINUTES:
        raise ScheduleError(f"expected {SCHEDULE_FORMS}; got {value!r} ({minutes} minutes)")
    return minutes


def format_schedule(minutes: int | None) -> str:
    if not minutes:
        return "off"
    hours, rest = divmod(minutes, 60)
    return (f"{hours}h" if hours else "") + (f"{rest}m" if rest or not hours else "")


def set_schedule(account: Account, minutes: int | None, now: datetime) -> None:
    """Turn the schedule on (first post one interval from now), change it, or off."""
    account.schedule_minutes = minutes
    account.next_post_at = now + timedelta(minutes=minutes) if minutes else None


def prompt_for(account: Account, slot: datetime) -> str:
    """The subject for the slot at `slot`: the account's subjects in an order shuffled once
    per account, walked one slot at a time, so N consecutive posts use N different ones."""
    persona = account.persona or {}
    listed = persona.get("prompts")
    listed = listed if isinstance(listed, list) else []
    own = [p.strip() for p in listed if isinstance(p, str) and p.strip()]
    subjects = own or list(SUBJECTS)
    interval = max(1, account.schedule_minutes or 1)
    number = int(slot.timestamp() // 60) // interval  # consecutive slots: consecutive numbers
    order = random.Random(f"{account.id}:{len(subjects)}").sample(subjects, len(subjects))
    return order[number % len(order)]


def next_slot(slot: datetime, minutes: int, now: datetime) -> datetime:
    """The slot after `slot`; missed slots (the instance was down) are skipped, not burst."""
    following = slot + timedelta(minutes=minutes)
    return following if following > now else now + timedelta(minutes=minutes)


async def _claim(session: AsyncSession, account_id: int, seen: datetime, to: datetime) -> bool:
    """Move `next_post_at` from `seen` to `to` unless another worker moved it first."""
    res = await session.execute(
        update(Account)
        .where(Account.id == account_id, Account.next_post_at == seen)
        .values(next_post_at=to)
        .execution_options(synchronize_session=False)
    )
    return bool(res.rowcount == 1)  # type: ignore[attr-defined]


def _due(now: datetime) -> tuple[ColumnElement[bool], ...]:
    return (
        Account.local.is_(True),
        Account.kind == "Service",
        Account.deleted_at.is_(None),
        Account.suspended_at.is_(None),  # a suspended account posts nothing
        Account.schedule_minutes.is_not(None),
        Account.next_post_at <= now,
    )


class ScheduleWorker:
    """Posts due scheduled images and publishes timed-out remixes (module docstring)."""

    name = "schedule"

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    async def run_once(self) -> int:
        return await self.post_due() + await self.expire_quotes()

    async def post_due(self) -> int:
        now = self.rt.now()
        async with self.rt.sessions() as s:
            due = list(
                await s.execute(
                    select(Account.id, Account.next_post_at)
                    .where(*_due(now))
                    .order_by(Account.next_post_at, Account.id)  # the longest waiting first
                )
            )
        done = 0
        for account_id, slot in due:
            if slot is not None:  # always, by the query; for the type checker
                done += await self._post_slot(account_id, slot, now)
        return done

    async def _post_slot(self, account_id: int, slot: datetime, now: datetime) -> int:
        async with self.rt.session() as s:
            account = await s.get_one(Account, account_id)
            minutes = account.schedule_minutes or MIN_MINUTES
            if not await _claim(s, account_id, slot, next_slot(slot, minutes, now)):
                return 0  # another worker took this slot
            prompt = prompt_for(account, slot)
            try:
                await enqueue(s, self.rt, account, prompt, then={"post": {"visibility": "public"}})
            except InvalidGenerationRequest as exc:
                log.warning("scheduled post of %s skipped: %s", account.username, exc)
                return 0
            except GenerationRefused as exc:  # queue full, disk full: try again soon
                log.info("scheduled post of %s postponed: %s", account.username, exc)
                await s.execute(
                    update(Account).where(Account.id == account_id)
                    .values(next_post_at=now + POSTPONE)
                    .execution_options(synchronize_session=False)
                )  # fmt: skip
                return 0
        return 1

    async def expire_quotes(self) -> int:
        async with self.rt.session() as s:
            return await quotes.expire_pending(s, self.rt)
