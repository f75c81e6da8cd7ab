"""The Starlette application and its lifespan: runtime in, workers started, all closed out."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from starlette.applications import Starlette

from instance.routes import all_routes
from instance.runtime import Runtime, open_runtime
from instance.settings import Settings
from instance.setup import ensure_instance

Hook = Callable[[Runtime], Awaitable[None]]


def create_app(
    settings: Settings,
    *,
    run_workers: bool | None = None,
    runtime: Runtime | None = None,
) -> Starlette:
    """Build the app. `run_workers` defaults to `[server] run_workers`; tests pass False and
    advance the workers step by step."""
    start_workers = settings.server.run_workers if run_workers is None else run_workers

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        rt = runtime or await open_runtime(settings)
        await ensure_instance(rt)
        app.state.runtime = rt
        workers = None
        if start_workers:
            from instance.workers import Workers

            workers = Workers(rt)
            await workers.start()
        try:
            yield
        finally:
            if workers is not None:
                await workers.stop()
            if runtime is None:
                await rt.aclose()

    return Starlette(routes=all_routes(), lifespan=lifespan)
