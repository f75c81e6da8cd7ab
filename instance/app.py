"""The Starlette application and its lifespan: runtime in, workers started, all closed out.

This is where the wings meet: the route tables of the federation endpoints (instance/routes)
and the HTML pages (instance/web), and the background workers `dreamloom serve` runs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from instance.api import routes as api
from instance.roles import WEB, beating, worker_factories
from instance.routes import actors, health, inbox, media, metrics, posts, wellknown
from instance.runtime import Runtime, open_runtime
from instance.settings import Settings
from instance.setup import ensure_instance
from instance.wakeups import Wakeups, wakeups_for
from instance.web import (
    compose,
    explore,
    follow,
    icons,
    login,
    notifications,
    pages,
    post_actions,
    timelines,
)
from instance.web.errors import ErrorPages
from instance.workers import Workers


def all_routes() -> list[BaseRoute]:
    return [
        *wellknown.routes,
        *health.routes,  # /healthz and /metrics (admin only)
        *metrics.routes,
        *inbox.routes,  # before actors: /users/{username}/{collection} would match
        *posts.routes,
        *actors.routes,
        *media.routes,
        *api.routes,  # the Mastodon client API and OAuth
        *pages.routes,
        *login.routes,  # local users: login, timelines, compose, follows, buttons
        *timelines.routes,
        *explore.routes,
        *compose.routes,
        *follow.routes,
        *notifications.routes,
        *post_actions.routes,
        *icons.routes,
    ]


def create_app(
    settings: Settings,
    *,
    run_workers: bool | None = None,
    runtime: Runtime | None = None,
    notify_workers: bool = False,
) -> Starlette:
    """Build the app. `run_workers` (every worker in this process) defaults to `[server]
    run_workers`; tests pass False and advance the workers step by step. `notify_workers`:
    the workers run in other processes (instance/roles.py), woken through
    instance/wakeups.py when a request queues work."""
    start_workers = settings.server.run_workers if run_workers is None else run_workers

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        rt = runtime or await open_runtime(settings)
        await ensure_instance(rt)
        app.state.runtime = rt
        workers = None
        wakeups: Wakeups | None = None
        if start_workers:
            workers = Workers(rt, worker_factories())
            await workers.start()
        elif notify_workers:
            wakeups = wakeups_for(settings)
            rt.waker = wakeups.notify
        try:
            if notify_workers:  # a web process of the supervisor: it beats too
                async with beating(rt, [WEB]):
                    yield
            else:
                yield
        finally:
            if workers is not None:
                await workers.stop()
            if wakeups is not None:
                await wakeups.aclose()
            if runtime is None:
                await rt.aclose()

    return Starlette(
        routes=all_routes(),
        lifespan=lifespan,
        exception_handlers={ClientDisconnect: gone_client},
        middleware=[Middleware(ErrorPages)],  # browsers get the site's 404/410 page
    )


async def gone_client(request: Request, exc: Exception) -> Response:
    """The client went away while we read its request: nobody waits for an answer, and it is
    not our error to log."""
    return Response(status_code=400)
