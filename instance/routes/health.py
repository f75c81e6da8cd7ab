"""`GET /healthz`: whether this instance can do its work, for a load balancer or a pager.

Three checks, each in the JSON answer:

- `database`: a `SELECT 1`, with the milliseconds it took;
- `media`: the media store takes a file (`check_media`; for the local store, a temporary
  file created and removed in the media directory; for S3, the bucket answers a HEAD);
- `roles`: every worker process's last heartbeat (instance/heartbeats.py): role, host, pid,
  seconds since its last beat.

200 when all is well; 503 when the database or the media check fails, or when a role that
beat in the last day has no process that beat within heartbeats.STALE_AFTER_S (the role's
processes died or hang). An instance that runs no worker roles (tests, `serve --role web`)
has no heartbeats and is healthy. Each check has HEALTH_TIMEOUT_S: a hung database is a
503, not a hung probe. Errors are named by their kind, never with their text (a driver's
message can carry connection details): the details go to the log.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from instance import heartbeats
from instance.routes.common import dumps, runtime
from instance.runtime import Runtime

log = logging.getLogger("dreamloom.health")

HEALTH_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Check:
    ok: bool
    detail: str = ""
    ms: float | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ok": self.ok}
        if self.ms is not None:
            out["ms"] = round(self.ms, 2)
        if self.detail:
            out["detail"] = self.detail
        return out


async def check_database(rt: Runtime) -> Check:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(HEALTH_TIMEOUT_S), rt.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except TimeoutError:
        log.warning("health: the database did not answer within %g s", HEALTH_TIMEOUT_S)
        return Check(False, f"no answer within {HEALTH_TIMEOUT_S:g} s")
    except Exception as exc:
        log.warning("health: the database check failed: %s", exc)
        return Check(False, type(exc).__name__)
    return Check(True, ms=(time.perf_counter() - started) * 1000)


async def check_media(rt: Runtime) -> Check:
    """Whether our media store takes files now: its own probe (instance/storage/media_store.py:
    a temporary file in the local directory, or the bucket answering). The store's detail
    names paths or endpoints, so it goes to the log; the answer says which store failed."""
    store = rt.settings.media.store
    try:
        async with asyncio.timeout(HEALTH_TIMEOUT_S):
            found = await rt.media.check()
    except TimeoutError:
        log.warning("health: the %s media store did not answer in %g s", store, HEALTH_TIMEOUT_S)
        return Check(False, f"the {store} media store did not answer in {HEALTH_TIMEOUT_S:g} s")
    if not found.ok:
        log.warning("health: the %s media store failed its check: %s", store, found.detail)
        return Check(False, f"the {store} media store does not take files (see the log)")
    return Check(True)


async def health(rt: Runtime) -> tuple[bool, dict[str, Any]]:
    """(healthy, the report /healthz answers)."""
    database, media = await asyncio.gather(check_database(rt), check_media(rt))
    beats: list[heartbeats.Beat] = []
    if database.ok:
        try:
            beats = await heartbeats.roles(rt)
        except Exception as exc:
            log.warning("health: the heartbeats could not be read: %s", exc)
            database = Check(False, type(exc).__name__)
    now = rt.now()
    stale = heartbeats.stale_roles(beats, now)
    healthy = database.ok and media.ok and not stale
    report = {
        "status": "ok" if healthy else "unhealthy",
        "database": database.to_json(),
        "media": media.to_json(),
        "roles": [
            {
                "role": b.role, "host": b.host, "pid": b.pid,
                "seconds_since_beat": round(b.age_s(now), 1),
                "started_at": b.started_at.isoformat(), "detail": b.detail,
            }
            for b in beats
        ],
        "stale_roles": sorted(stale),
    }  # fmt: skip
    return healthy, report


async def healthz(request: Request) -> Response:
    healthy, report = await health(runtime(request))
    return Response(
        dumps(report),
        status_code=200 if healthy else 503,
        media_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


routes = [Route("/healthz", healthz, methods=["GET", "HEAD"])]
