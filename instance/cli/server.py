"""`dreamloom init`, `serve` and `db upgrade`: making, running and migrating an instance."""

from __future__ import annotations

import logging
from typing import Annotated

import typer
from rich.markup import escape

from generator.locating import BUILTIN_TINY
from instance import logs
from instance.app import create_app
from instance.cli.common import (
    DirOption,
    app,
    db_app,
    fail,
    out,
    run,
    settings_for,
    with_runtime,
)
from instance.cli.model_admin import ensure_model
from instance.errors import ConfigError, UserError
from instance.maintenance import running
from instance.runtime import Runtime
from instance.settings import locate_config
from instance.setup import c2pa_credentials, write_config
from instance.storage.db import make_engine
from instance.storage.migrate import current_revision, upgrade


@app.command()
def init(
    domain: Annotated[str, typer.Option(help="Public host, with an optional port.")],
    scheme: Annotated[str, typer.Option(help="https, or http for loopback/tests.")] = "https",
    allow_private_addresses: Annotated[
        bool, typer.Option(help="Federate with peers on loopback/private addresses (tests, LANs).")
    ] = False,
    model: Annotated[
        str,
        typer.Option(
            help="auto (a real model for this hardware), builtin:tiny, a directory "
            "or a hub id; written to a new config only."
        ),
    ] = "auto",
    directory: DirOption = None,
) -> None:
    """Create an instance: config.toml (if absent), data directory, database, instance actor,
    and the configured model fetched once (auto: a real one for this hardware).

    Safe to run again: nothing that exists is changed."""
    target = directory or locate_config(None).parent
    try:
        result = write_config(
            target, domain, scheme, allow_private_addresses=allow_private_addresses, model=model
        )
    except ConfigError as exc:
        fail(str(exc))
        return
    settings = settings_for(result.config_path)

    async def nothing_more(rt: Runtime) -> None:
        return None

    run(with_runtime(settings, nothing_more))
    verb = "wrote" if result.wrote_config else "kept existing"
    out.print(f"{verb} {result.config_path}")
    out.print(f"database ready at {settings.database_url}")
    out.print(f"instance actor: {settings.base_url}/actor")
    if settings.generator.provenance:
        c2pa_credentials(settings)
        out.print(f"C2PA signing credentials: {settings.data_path / 'c2pa'}")
    ensure_model(settings)  # auto / a hub id: fetched once, with progress; one line if not
    if settings.generator.model == BUILTIN_TINY:
        out.print(
            "[yellow]note:[/] "
            + escape(
                "the image model is builtin:tiny, a test model whose images are noise; "
                "set [generator] model in config.toml to a real diffusers model."
            )
        )


@app.command()
def serve(
    directory: DirOption = None,
    host: Annotated[str | None, typer.Option(help="Bind address.")] = None,
    port: Annotated[int | None, typer.Option(help="Bind port.")] = None,
    workers: Annotated[
        bool | None, typer.Option("--workers/--no-workers", help="Run background workers.")
    ] = None,
) -> None:
    """Serve HTTP (uvicorn) with the background workers in the same process."""
    settings = settings_for(directory)
    bind_host = host or settings.server.host
    bind_port = port or settings.server.port
    logs.configure_logging(settings.logging)  # the fetch's lines are log lines
    ensure_model(settings, log=logging.getLogger("dreamloom.model"))  # once, with progress
    application = create_app(settings, run_workers=workers)
    try:
        with running.serving(settings):  # a restore refuses while this is held
            # logs, the access log and the clean stop on SIGTERM: instance/logs.py
            logs.serve(
                application,
                settings.logging,
                f"Dreamloom serving {settings.base_url} on http://{bind_host}:{bind_port}",
                host=bind_host,
                port=bind_port,
                proxy_headers=bool(settings.server.trusted_proxies.strip()),
                forwarded_allow_ips=settings.server.trusted_proxies.strip() or None,
                server_header=False,
            )
    except UserError as exc:
        fail(str(exc))


@db_app.command("upgrade")
def db_upgrade(directory: DirOption = None) -> None:
    """Bring the database schema up to date (init and serve do this too)."""
    settings = settings_for(directory)

    async def go() -> str | None:
        engine = make_engine(settings.database_url)
        try:
            await upgrade(engine)
            return await current_revision(engine)
        finally:
            await engine.dispose()

    out.print(f"schema at revision {run(go())}")
