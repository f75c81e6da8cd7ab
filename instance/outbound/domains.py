"""Per-domain delivery health: a domain that keeps failing is paused, never dropped.

The policy, after Mastodon's DeliveryFailureTracker and Akkoma's 7-day reachability window,
in one place:

- a delivery that got no HTTP answer, or a 5xx, is a *failure*; the day (UTC, from the
  runtime clock) is added to the domain's `failure_days` once, however many failures that day;
- any other HTTP answer (2xx, 4xx) shows the domain is up: the failure streak is cleared;
- failures on `PAUSE_AFTER_DAYS` distinct days with no answer since pause the domain: the
  delivery worker leaves its rows queued (they wait, they are not dropped) until
- a signed request from that domain arrives (`note_inbound`, called by the inbox) or an
  admin resumes it: the streak is cleared and its deliveries go out again.

A healthy domain has no row at all, so the hot paths (a successful delivery, an inbound
request) cost at most one read per domain; the exception is a domain known to take RFC 9421
signatures (it signed its requests to us that way, or took our delivery signed that way
after refusing draft-cavage): `remember_scheme` keeps that, and its deliveries are signed
RFC 9421 first. Every other domain gets draft-cavage first, what nearly every server
verifies (some answer an RFC 9421 request with a 500, not a 401).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import CompoundSelect, select, union
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from instance.moderation.domains import host_blocked
from instance.storage.models import Delivery, DomainHealth

PAUSE_AFTER_DAYS = 7


def is_domain_failure(status: int | None) -> bool:
    """No HTTP answer at all (timeout, refused, reset) or a server error."""
    return status is None or status >= 500


def unavailable_hosts() -> CompoundSelect[tuple[str]]:
    """A subquery of hosts whose deliveries must not go out now: paused, or under a domain
    an admin suspended (instance/moderation/domains.py, the one source of that rule;
    `DomainHealth.blocked` is no longer read)."""
    # each distinct host is checked once against the blocks, not each of its rows
    hosts = select(aliased(Delivery).host).distinct().subquery()
    return union(
        select(DomainHealth.host).where(DomainHealth.paused.is_(True)),
        select(hosts.c.host).where(host_blocked(hosts.c.host)),
    )


async def failing(session: AsyncSession, hosts: Iterable[str]) -> set[str]:
    """Those of `hosts` with a failure streak (whose next answer must clear it)."""
    wanted = sorted(set(hosts))
    if not wanted:
        return set()
    rows = await session.scalars(
        select(DomainHealth.host).where(
            DomainHealth.host.in_(wanted), DomainHealth.last_failure_at.is_not(None)
        )
    )
    return set(rows)


async def record_failure(session: AsyncSession, host: str, now: datetime) -> bool:
    """Count a failed delivery to `host` today; return True when this pauses the domain."""
    health = await session.get(DomainHealth, host)
    if health is None:
        health = DomainHealth(host=host, failure_days=[])
        session.add(health)
    day = now.date().isoformat()
    if day not in (health.failure_days or []):
        health.failure_days = [*(health.failure_days or []), day]
    health.last_failure_at = now
    newly_paused = not health.paused and len(health.failure_days) >= PAUSE_AFTER_DAYS
    if newly_paused:
        health.paused = True
    return newly_paused


async def record_answer(session: AsyncSession, host: str, now: datetime) -> None:
    """`host` answered: clear its failure streak (and resume it if it was paused)."""
    health = await session.get(DomainHealth, host)
    if health is not None:
        health.last_success_at = now
        _clear(health)


async def note_inbound(session: AsyncSession, host: str) -> bool:
    """A signed request from `host` arrived: it is alive. Return True if it was paused.

    Cheap for healthy domains (one read by primary key, no write)."""
    health = await session.get(DomainHealth, host)
    if health is None or (health.last_failure_at is None and not health.paused):
        return False
    was_paused = health.paused
    _clear(health)
    return was_paused


async def is_paused(session: AsyncSession, host: str) -> bool:
    health = await session.get(DomainHealth, host)
    return bool(health and health.paused)


def _clear(health: DomainHealth) -> None:
    health.failure_days = []
    health.last_failure_at = None
    health.paused = False


async def signature_schemes(session: AsyncSession, hosts: Iterable[str]) -> dict[str, str]:
    """The scheme to sign with first, for those of `hosts` known to take RFC 9421."""
    wanted = sorted(set(hosts))
    if not wanted:
        return {}
    rows = await session.execute(
        select(DomainHealth.host, DomainHealth.signature_scheme).where(
            DomainHealth.host.in_(wanted), DomainHealth.signature_scheme.is_not(None)
        )
    )
    return {host: scheme for host, scheme in rows if scheme}


async def remember_scheme(session: AsyncSession, host: str, scheme: str) -> None:
    """`host` takes signatures of `scheme`: sign with it first from now on."""
    health = await session.get(DomainHealth, host)
    if scheme != "rfc9421":
        if health is not None:
            health.signature_scheme = None
        return
    if health is None:
        health = DomainHealth(host=host, failure_days=[])
        session.add(health)
    health.signature_scheme = scheme
