"""Delivery administration: what waits for which server, retrying and purging it.

Per host (`Delivery.host`, `host[:port]`): `queued` rows not yet sent (running ones
included), `failing` those of them that already failed at least once and wait for a retry,
`failed` rows given up on, whether the domain is `paused` (instance/outbound/domains.py) or
`blocked` (suspended: instance/moderation/domains.py), and the newest error.

`retry` makes the failed rows, and the queued rows of a paused domain, due now (resuming the
domain); `purge` deletes every row not yet delivered. `--domain D` covers D's subdomains, as
a block does.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import case, delete, func, or_, select, update

from instance.moderation import domains as policy
from instance.runtime import Runtime
from instance.storage.models import Delivery, DomainHealth

PENDING = ("queued", "running", "failed")


@dataclass
class HostBacklog:
    host: str
    queued: int = 0
    failing: int = 0
    failed: int = 0
    paused: bool = False
    blocked: bool = False
    last_error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def _scope(domain: str | None) -> list[Any]:
    return [policy.covers(Delivery.host, policy.normalize_domain(domain))] if domain else []


async def status(rt: Runtime, domain: str | None = None) -> list[HostBacklog]:
    """One entry per host with undelivered rows (or paused), sorted by host."""
    where = [Delivery.status.in_(PENDING), *_scope(domain)]
    found: dict[str, HostBacklog] = {}
    async with rt.sessions() as session:
        tried = func.sum(case((Delivery.attempts > 0, 1), else_=0))
        rows = await session.execute(
            select(Delivery.host, Delivery.status, func.count(), tried)
            .where(*where)
            .group_by(Delivery.host, Delivery.status)
        )
        for host, state, n, retried in rows:
            entry = found.setdefault(host, HostBacklog(host))
            if state == "failed":
                entry.failed += n
            else:
                entry.queued += n
                if state == "queued":
                    entry.failing += int(retried or 0)
        health_where: list[Any] = [DomainHealth.paused.is_(True)]
        if domain:
            health_where.append(policy.covers(DomainHealth.host, policy.normalize_domain(domain)))
        for host in await session.scalars(select(DomainHealth.host).where(*health_where)):
            found.setdefault(host, HostBacklog(host)).paused = True
        suspended = await policy.suspended_domains(session)
        for entry in found.values():
            entry.blocked = policy.under(entry.host, suspended)
            entry.last_error = await session.scalar(
                select(Delivery.last_error)
                .where(Delivery.host == entry.host, Delivery.last_error.is_not(None))
                .order_by(Delivery.run_at.desc())
                .limit(1)
            )
    return [found[host] for host in sorted(found)]


async def retry(rt: Runtime, domain: str | None = None) -> int:
    """Failed rows, and the queued rows of paused domains, due now; paused domains resume.
    Rows of a suspended domain are left alone. Returns how many rows were made due."""
    now = rt.now()
    async with rt.session() as session:
        paused_where: list[Any] = [DomainHealth.paused.is_(True)]
        if domain:
            paused_where.append(policy.covers(DomainHealth.host, policy.normalize_domain(domain)))
        paused = list(await session.scalars(select(DomainHealth.host).where(*paused_where)))
        result = await session.execute(
            update(Delivery)
            .where(
                *_scope(domain),
                or_(Delivery.status == "failed",
                    Delivery.status.in_(("queued",)) & Delivery.host.in_(
                        select(DomainHealth.host).where(DomainHealth.paused.is_(True)))),
                ~policy.host_blocked(Delivery.host),
            )
            .values(status="queued", run_at=now, locked_until=None)
            .execution_options(synchronize_session=False)
        )  # fmt: skip
        if paused:
            await session.execute(
                update(DomainHealth)
                .where(DomainHealth.host.in_(paused))
                .values(paused=False, failure_days=[], last_failure_at=None)
            )
    return int(getattr(result, "rowcount", 0) or 0)


async def purge(rt: Runtime, domain: str | None = None) -> int:
    """Delete every undelivered row (queued, running, failed); how many went."""
    async with rt.session() as session:
        result = await session.execute(
            delete(Delivery)
            .where(Delivery.status.in_(PENDING), *_scope(domain))
            .execution_options(synchronize_session=False)
        )
    return int(getattr(result, "rowcount", 0) or 0)
