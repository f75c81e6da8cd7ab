"""The `dreamloom` command. Commands parse options, call plain async functions, print.

Every command finds its instance through --dir PATH, else DREAMLOOM_CONFIG, else ./config.toml.
Errors a person can fix are one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.markup import escape
from rich.table import Table

from instance import accounts as accounts_mod
from instance.cli.common import (
    DirOption,
    JsonOption,
    account_app,
    account_row,
    err,
    fail,
    out,
    print_json,
    run,
    settings_for,
    with_runtime,
)
from instance.runtime import Runtime
from instance.settings import ConfigError, locate_config

T = TypeVar("T")

app = typer.Typer(
    name="dreamloom",
    help="Dreamloom: a federated home for AI-made images.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
db_app = typer.Typer(help="Database schema management.", no_args_is_help=True)
bench_app = typer.Typer(help="Benchmarks (numbers go to BENCHMARKS.md).", no_args_is_help=True)
app.add_typer(account_app, name="account")
app.add_typer(db_app, name="db")
app.add_typer(bench_app, name="bench")


# -- init / serve / db -------------------------------------------------------------------------
@app.command()
def init(
    domain: Annotated[str, typer.Option(help="Public host, with an optional port.")],
    scheme: Annotated[str, typer.Option(help="https, or http for loopback/tests.")] = "https",
    allow_private_addresses: Annotated[
        bool, typer.Option(help="Federate with peers on loopback/private addresses (tests, LANs).")
    ] = False,
    directory: DirOption = None,
) -> None:
    """Create an instance: config.toml (if absent), data directory, database, instance actor.

    Safe to run again: nothing that exists is changed."""
    from instance.setup import write_config

    target = directory or locate_config(None).parent
    try:
        result = write_config(
            target, domain, scheme, allow_private_addresses=allow_private_addresses
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
    if settings.generator.model == "builtin:tiny":
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
    import uvicorn

    from instance.app import create_app

    settings = settings_for(directory)
    bind_host = host or settings.server.host
    bind_port = port or settings.server.port
    application = create_app(settings, run_workers=workers)
    err.print(f"Dreamloom serving {settings.base_url} on http://{bind_host}:{bind_port}")
    uvicorn.run(
        application,
        host=bind_host,
        port=bind_port,
        proxy_headers=True,
        forwarded_allow_ips="127.0.0.1",
        log_level="warning",
        access_log=False,
        server_header=False,
    )


@db_app.command("upgrade")
def db_upgrade(directory: DirOption = None) -> None:
    """Bring the database schema up to date (init and serve do this too)."""
    from instance.storage.db import make_engine
    from instance.storage.migrate import current_revision, upgrade

    settings = settings_for(directory)

    async def go() -> str | None:
        engine = make_engine(settings.database_url)
        try:
            await upgrade(engine)
            return await current_revision(engine)
        finally:
            await engine.dispose()

    out.print(f"schema at revision {run(go())}")


# -- accounts ------------------------------------------------------------------------------
@account_app.command("create")
def account_create(
    name: Annotated[str, typer.Argument(help="Account name: lower-case letters, digits, _.")],
    ai: Annotated[bool, typer.Option("--ai", help="An AI account (Service, bot).")] = False,
    display_name: Annotated[str, typer.Option(help="Display name.")] = "",
    bio: Annotated[str, typer.Option(help="Profile text.")] = "",
    persona: Annotated[
        str, typer.Option(help="AI accounts: the style added to every prompt.")
    ] = "",
    password_file: Annotated[
        Path | None, typer.Option(help="File holding the login password (first line).")
    ] = None,
    locked: Annotated[bool, typer.Option(help="Approve followers by hand.")] = False,
    directory: DirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create a local account (with its RSA-2048 key)."""
    settings = settings_for(directory)
    password = None
    if password_file is not None:
        try:
            password = password_file.read_text(encoding="utf-8").splitlines()[0]
        except (OSError, IndexError):
            fail(f"cannot read a password from {password_file}")
    new = accounts_mod.NewAccount(
        username=name,
        ai=ai,
        display_name=display_name,
        bio=bio,
        password=password,
        persona={"style": persona} if ai and persona else None,
        manually_approves_followers=locked,
    )

    async def go(rt: Runtime) -> dict[str, Any]:
        async with rt.session() as session:
            account = await accounts_mod.create_account(session, rt.urls, new)
            return account_row(account, settings)

    row = run(with_runtime(settings, go))
    if as_json:
        print_json(row)
    else:
        out.print(f"created {row['handle']} ({row['type']}) at {row['actor']}")


@account_app.command("list")
def account_list(directory: DirOption = None, as_json: JsonOption = False) -> None:
    """List local accounts."""
    settings = settings_for(directory)

    async def go(rt: Runtime) -> list[dict[str, Any]]:
        async with rt.session() as session:
            return [
                account_row(a, settings)
                for a in await accounts_mod.list_local(session)
                if a.kind != "Application"
            ]

    rows = run(with_runtime(settings, go))
    if as_json:
        print_json(rows)
        return
    table = Table("handle", "type", "display name", "actor")
    for r in rows:
        table.add_row(r["handle"], "AI" if r["ai"] else r["type"], r["display_name"], r["actor"])
    out.print(table)


@account_app.command("show")
def account_show(
    name: Annotated[str, typer.Argument(help="Account name.")],
    directory: DirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show one local account."""
    settings = settings_for(directory)

    async def go(rt: Runtime) -> dict[str, Any]:
        async with rt.session() as session:
            return account_row(await accounts_mod.get_local(session, name), settings)

    row = run(with_runtime(settings, go))
    if as_json:
        print_json(row)
        return
    for key, value in row.items():
        out.print(f"[bold]{key}[/]: {escape(str(value))}", highlight=False)


def _register_command_modules() -> None:
    """Command groups owned by other modules: each has `register(app, bench_app)`."""
    import importlib

    for name in COMMAND_MODULES:
        importlib.import_module(f"instance.{name}").register(app, bench_app)


COMMAND_MODULES: list[str] = [
    "bench.inbox",
    "bench.fanout",
    "bench.timeline",
    "cli.generate",
    "cli.social",
    "cli.admin",
]
_register_command_modules()


def main() -> None:
    app()
