"""`dreamloom account create|list|show|set`: local accounts from the command line."""

from __future__ import annotations

from collections.abc import Callable
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
    fail,
    out,
    print_json,
    run,
    settings_for,
    with_runtime,
)
from instance.errors import UserError
from instance.generation.personas import ProfileChanges, update_profile
from instance.generation.recipes import parse_size
from instance.generation.schedule import parse_schedule
from instance.runtime import Runtime

T = TypeVar("T")
AccountArg = Annotated[str, typer.Argument(help="The local account.")]


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


def _option(name: str, parse: Callable[[str], T], value: str | None) -> T | None:
    """Parse one option's value, or fail with one line naming the option."""
    if value is None:
        return None
    try:
        return parse(value)
    except (ValueError, UserError) as exc:
        fail(f"{name}: {exc}")
        raise AssertionError("unreachable") from exc


def _steps(value: str) -> int:
    if not value.strip().isdigit():
        raise ValueError(f"expected a whole number of steps like 4 or 25; got {value!r}")
    return int(value)


def _prompt_lines(path: Path | None) -> list[str] | None:
    if path is None:
        return None
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"--prompts-file: cannot read {path}: {getattr(exc, 'strerror', None) or exc}")
        raise AssertionError("unreachable") from exc


@account_app.command("set")
def account_set(
    name: AccountArg,
    display_name: Annotated[str | None, typer.Option(help="Display name.")] = None,
    bio: Annotated[str | None, typer.Option(help="Profile text.")] = None,
    persona: Annotated[
        str | None, typer.Option(help="AI accounts: the style added to every prompt.")
    ] = None,
    steps: Annotated[str | None, typer.Option(help="AI accounts: default steps.")] = None,
    size: Annotated[
        str | None, typer.Option(help="AI accounts: default size, WIDTHxHEIGHT.")
    ] = None,
    negative: Annotated[
        str | None, typer.Option(help="AI accounts: default negative prompt.")
    ] = None,
    schedule: Annotated[
        str | None,
        typer.Option(help="AI accounts: post an image every 90m, 2h, 1h30m ... or off."),
    ] = None,
    prompts_file: Annotated[
        Path | None,
        typer.Option(help="AI accounts: subjects for scheduled posts, one a line."),
    ] = None,
    locked: Annotated[
        bool | None, typer.Option("--locked/--unlocked", help="Approve followers by hand.")
    ] = None,
    directory: DirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Change an account's profile, or an AI account's persona, recipe and schedule.

    Followers get an Update when the profile they see changes."""
    changes = ProfileChanges(
        display_name=display_name,
        bio=bio,
        locked=locked,
        style=persona,
        steps=_option("--steps", _steps, steps),
        size=_option("--size", parse_size, size),
        negative=negative,
        prompts=_prompt_lines(prompts_file),
        schedule_minutes=_option("--schedule", lambda v: parse_schedule(v) or 0, schedule),
    )
    if not changes.changed():
        fail("nothing to change: give at least one option (see --help)")
    settings = settings_for(directory)

    async def go(rt: Runtime) -> dict[str, Any]:
        async with rt.session() as s:
            account = await accounts_mod.get_local(s, name)
            federated = await update_profile(s, rt, account, changes)
            return {**account_row(account, settings), "federated_update": federated}

    row = run(with_runtime(settings, go))
    if as_json:
        print_json(row)
        return
    note = " (followers get an Update)" if row["federated_update"] else ""
    out.print(f"updated {escape(row['handle'])}{note}", highlight=False)
