"""`GET /metrics`: Prometheus metrics in the text exposition format, for the admin only.

Who may scrape: a client connecting from a loopback address (a Prometheus or an agent on
this host) whose request was not relayed by a proxy (no Forwarded / X-Forwarded-For
header), or anyone sending `Authorization: Bearer <[server] metrics_token>` when the token
is set. Everyone else gets a 404, as if there were nothing here: the metrics name the
servers we deliver to and how much work waits, which is nobody else's business.

The answer is the processes' counters and histograms (instance/metrics.py: all processes'
when PROMETHEUS_MULTIPROC_DIR is set) followed by what is read from the database now, a few
cheap queries per scrape:

    dreamloom_queue_depth{queue,status}             rows queued or running, per queue
    dreamloom_queue_oldest_due_age_seconds{queue}   how long the oldest due row has waited
    dreamloom_delivery_outcomes_last_hour{domain,status}
        deliveries finished in the last hour (done, failed, gone) per domain, and rows
        waiting for a retry now (retrying); the TOP_DOMAINS busiest domains by name, the
        rest summed as domain="other", so the series stay bounded however many peers
    dreamloom_database_up                           1, or 0 when those queries failed
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import case, func, literal, select, union_all
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from instance import jobs, metrics
from instance.queues import DELIVERY, GENERATION, INBOX
from instance.routes.common import runtime
from instance.runtime import Runtime
from instance.storage.models import Delivery, GenerationJob, InboxItem

log = logging.getLogger("dreamloom.metrics")

QUEUES: tuple[tuple[str, Any], ...] = (
    (INBOX.name, InboxItem), (DELIVERY.name, Delivery), (GENERATION.name, GenerationJob),
)  # fmt: skip
PENDING = ("queued", "running")
OUTCOME_WINDOW = timedelta(hours=1)
FINISHED = ("done", "failed", "gone")
TOP_DOMAINS = 50  # delivery domains named in the outcomes; the rest are "other"
DB_TIMEOUT_S = 10.0
PROXY_HEADERS = ("forwarded", "x-forwarded-for")


def may_scrape(request: Request, token: str) -> bool:
    """A loopback client that no proxy relayed, or the bearer of the metrics token."""
    if token:
        given = request.headers.get("authorization", "")
        if hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return True
    if any(name in request.headers for name in PROXY_HEADERS):
        return False
    peer = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(peer).is_loopback
    except ValueError:
        return False


async def queue_families(session: AsyncSession, now: datetime) -> list[Metric]:
    depth = GaugeMetricFamily(
        "dreamloom_queue_depth", "Work rows queued or running, per queue.",
        labels=["queue", "status"],
    )  # fmt: skip
    age = GaugeMetricFamily(
        "dreamloom_queue_oldest_due_age_seconds",
        "Seconds the oldest due row of each queue has waited (0: none due).", labels=["queue"],
    )  # fmt: skip
    for name, model in QUEUES:
        oldest_due = func.min(case((jobs.due(model, now), model.run_at)))
        rows = await session.execute(
            select(model.status, func.count(), oldest_due)
            .where(model.status.in_(PENDING))
            .group_by(model.status)
        )
        counts = dict.fromkeys(PENDING, 0)
        oldest: datetime | None = None
        for status, n, due_at in rows:
            counts[status] = int(n)
            if due_at is not None and (oldest is None or due_at < oldest):
                oldest = due_at
        for status, n in counts.items():
            depth.add_metric([name, status], n)
        age.add_metric([name], max(0.0, (now - oldest).total_seconds()) if oldest else 0.0)
    return [depth, age]


async def delivery_families(session: AsyncSession, now: datetime) -> list[Metric]:
    finished = (
        select(Delivery.host, Delivery.status, func.count())
        .where(Delivery.status.in_(FINISHED), Delivery.finished_at >= now - OUTCOME_WINDOW)
        .group_by(Delivery.host, Delivery.status)
    )
    retrying = (
        select(Delivery.host, literal("retrying"), func.count())
        .where(Delivery.status == "queued", Delivery.attempts > 0)
        .group_by(Delivery.host)
    )
    by_domain: dict[str, Counter[str]] = defaultdict(Counter)
    rows: Any = await session.execute(union_all(finished, retrying))
    for host, status, n in rows:
        by_domain[str(host)][str(status)] += int(n)
    named = sorted(by_domain, key=lambda h: (-sum(by_domain[h].values()), h))[:TOP_DOMAINS]
    shown: dict[str, Counter[str]] = {host: by_domain[host] for host in named}
    other: Counter[str] = Counter()
    for host, counts in by_domain.items():
        if host not in shown:
            other.update(counts)
    if other:
        shown["other"] = other
    family = GaugeMetricFamily(
        "dreamloom_delivery_outcomes_last_hour",
        "Deliveries finished in the last hour per domain and status; retrying: waiting now.",
        labels=["domain", "status"],
    )
    for host, counts in shown.items():
        for status, n in sorted(counts.items()):
            family.add_metric([host, status], n)
    return [family]


async def database_families(rt: Runtime) -> list[Metric]:
    up = GaugeMetricFamily("dreamloom_database_up", "Whether the scrape's queries succeeded.")
    now = rt.now()
    try:
        async with asyncio.timeout(DB_TIMEOUT_S), rt.sessions() as session:
            found = await queue_families(session, now) + await delivery_families(session, now)
    except (SQLAlchemyError, OSError, TimeoutError) as exc:
        log.warning("metrics: the database queries failed: %s", exc)
        up.add_metric([], 0)
        return [up]
    up.add_metric([], 1)
    return [*found, up]


class _Families(Collector):
    """Metric families computed for one scrape."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self.families)


def render(families: list[Metric]) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(families))
    return generate_latest(registry)


async def scrape(request: Request) -> Response:
    rt = runtime(request)
    if not may_scrape(request, rt.settings.server.metrics_token):
        return Response("Not Found", status_code=404, media_type="text/plain")
    families = await database_families(rt)
    body = await asyncio.to_thread(lambda: metrics.exposition() + render(families))
    return Response(body, media_type=metrics.CONTENT_TYPE, headers={"Cache-Control": "no-store"})


routes = [Route("/metrics", scrape, methods=["GET"])]
