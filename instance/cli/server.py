"""`dreamloom init`, `serve` and `db upgrade`: making, running and migrating an instance."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import time
from typing import Annotated

import typer
from rich.markup import escape

from generator.locating import BUILTIN_TINY
from instance import logs, metrics, supervisor
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
from instance.roles import (
    ROLES,
    WEB,
    WORKER_ROLES,
    StoppedWhileLoading,
    parse_roles,
    run_worker,
    with_concurrency,
)
from instance.runtime import Runtime, open_runtime
from instance.settings import Settings, locate_config
from instance.setup import c2pa_credentials, ensure_instance, write_config
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
    role: Annotated[
        str | None,
        typer.Option(help="Roles to run, comma-separated: web, inbox, delivery, generation "
                     "(default: all; [server] run_workers = false: web)."),
    ] = None,
    web_processes: Annotated[
        int | None, typer.Option(help="HTTP processes sharing the port ([server] web_processes).")
    ] = None,
    processes: Annotated[
        str, typer.Option(help="Processes per role, e.g. inbox=2,delivery=2 (default 1 each).")
    ] = "",
    workers: Annotated[
        bool | None,
        typer.Option("--workers/--no-workers", help="--no-workers is --role web."),
    ] = None,
) -> None:
    """Run the instance: one process per role (web, inbox, delivery, generation), each
    started again if it dies, until SIGTERM or Ctrl-C (instance/supervisor.py)."""
    settings = settings_for(directory)
    try:
        roles = _serve_roles(settings, role, workers)
        counts = supervisor.parse_counts(processes, ROLES)
        count = settings.server.web_processes if web_processes is None else web_processes
        if count < 1:
            raise UserError(f"--web-processes must be at least 1, not {count}")
        counts.setdefault(WEB, count)
        bind_host = host or settings.server.host
        bind_port = port or settings.server.port
        logs.configure_logging(settings.logging)  # the fetch's lines are log lines
        if "generation" in roles:
            ensure_model(settings, log=logging.getLogger("dreamloom.model"))  # once, with progress
        run(_prepare(settings))  # schema and instance actor once, before any process races
        sock = supervisor.bind(bind_host, bind_port) if "web" in roles else None
        with running.serving(settings):  # a restore refuses while this is held
            _supervise(settings, roles, counts, sock, f"http://{bind_host}:{bind_port}")
    except UserError as exc:
        fail(str(exc))


def _serve_roles(settings: Settings, role: str | None, workers: bool | None) -> tuple[str, ...]:
    if role is not None:
        return parse_roles(role)
    if workers is False or (workers is None and not settings.server.run_workers):
        return (WEB,)
    return ROLES


async def _prepare(settings: Settings) -> None:
    rt = await open_runtime(settings)
    try:
        await ensure_instance(rt)
    finally:
        await rt.aclose()


def _supervise(settings: Settings, roles: tuple[str, ...], counts: dict[str, int],
               sock: socket.socket | None, listening: str) -> None:  # fmt: skip
    log = logging.getLogger("dreamloom.server")
    config = settings.config_path or locate_config(None)
    if metrics.multiprocess_dir() is None:  # every process counts into one directory
        os.environ[metrics.MULTIPROC_ENV] = str(settings.data_path / "run" / "metrics")
    directory = metrics.multiprocess_dir()
    assert directory is not None
    metrics.prepare_multiprocess_dir(directory)
    processes = supervisor.plan(
        config, roles, counts=counts, web_fd=sock.fileno() if sock else None,
        worker_nice=settings.server.worker_nice,
    )  # fmt: skip
    shape = ", ".join(
        f"{r} x{counts.get(r, 1)}" if r == WEB or counts.get(r, 1) > 1 else r for r in roles
    )
    where = f" on {listening}" if sock else ""
    log.info("Dreamloom serving %s%s (%s)", settings.base_url, where, shape)
    began = time.monotonic()
    boss = supervisor.Supervisor(processes, on_exit=metrics.process_exited)
    try:
        boss.run()
    finally:
        if sock is not None:
            sock.close()
    why = boss.stopped_by or "shut down"
    log.info("Dreamloom stopped (%s, after %.1f s)", why, time.monotonic() - began,
             extra={"signal": boss.stopped_by})  # fmt: skip


@app.command("web", hidden=True)
def web(
    directory: DirOption = None,
    fd: Annotated[int, typer.Option(help="The listening socket the supervisor passes.")] = -1,
) -> None:
    """One web process of `dreamloom serve` (started by its supervisor, not by hand)."""
    settings = settings_for(directory)
    sock = socket.socket(fileno=fd)  # family and type read from the descriptor
    application = create_app(settings, run_workers=False, notify_workers=True)
    logs.serve(
        application,
        settings.logging,
        f"web process {os.getpid()} accepting",
        stopped_as=f"web process {os.getpid()} stopped",
        sockets=[sock],
        proxy_headers=bool(settings.server.trusted_proxies.strip()),
        forwarded_allow_ips=settings.server.trusted_proxies.strip() or None,
        server_header=False,
    )


@app.command()
def worker(
    role: Annotated[
        str, typer.Option(help="Roles to run here, comma-separated: inbox, delivery, generation.")
    ],
    directory: DirOption = None,
    concurrency: Annotated[
        int | None,
        typer.Option(help="Inbox items at once, deliveries in flight, or images per batch."),
    ] = None,
) -> None:
    """Run worker roles in the foreground until SIGTERM (a GPU host runs `--role
    generation` against the shared PostgreSQL; systemd restarts it)."""
    settings = settings_for(directory)
    try:
        roles = parse_roles(role, WORKER_ROLES)
        settings = with_concurrency(settings, roles, concurrency)
    except UserError as exc:
        fail(str(exc))
        return
    logs.configure_logging(settings.logging)
    log = logging.getLogger("dreamloom.server")

    async def main() -> str | None:
        stop = asyncio.Event()
        stopped_by: list[str] = []

        def on_signal(sig: signal.Signals) -> None:
            stopped_by.append(sig.name)
            stop.set()

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, on_signal, sig)
        try:
            await run_worker(settings, roles, stop)
        except StoppedWhileLoading:  # the loading thread cannot be joined; nothing was claimed
            log.info("worker %s (pid %d) stopped while loading the model", ",".join(roles),
                     os.getpid())  # fmt: skip
            logging.shutdown()
            os._exit(0)
        return stopped_by[0] if stopped_by else None

    try:
        with running.serving(settings):
            why = asyncio.run(main())
    except UserError as exc:
        fail(str(exc))
        return
    log.info("worker %s (pid %d) stopped (%s)", ",".join(roles), os.getpid(), why or "shut down")


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
