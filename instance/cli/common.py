"""What every `dreamloom` command module shares: the Typer apps, consoles, options, error
handling and runtimes.

Command modules add their commands to the apps defined here; instance/cli/__init__.py
imports them all. An error a person can fix (`instance.errors.UserError`) is one line on
stderr and exit code 1, never a traceback.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import warnings
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any, TypeVar

import click
import typer
from rich.console import Console
from rich.markup import escape

from instance.errors import ConfigError, UserError
from instance.runtime import Runtime, open_runtime
from instance.settings import Settings, load_settings, locate_config
from instance.setup import ensure_instance
from instance.storage.models import Account

T = TypeVar("T")

app = typer.Typer(
    name="dreamloom",
    help="Dreamloom: a federated home for AI-made images.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
account_app = typer.Typer(
    help="Create, list, show and change local accounts.", no_args_is_help=True
)
db_app = typer.Typer(help="Database schema management.", no_args_is_help=True)
bench_app = typer.Typer(help="Benchmarks (numbers go to BENCHMARKS.md).", no_args_is_help=True)
app.add_typer(account_app, name="account")
app.add_typer(db_app, name="db")
app.add_typer(bench_app, name="bench")

out = Console()
err = Console(stderr=True)

DirOption = Annotated[
    Path | None,
    typer.Option("--dir", help="Instance directory (holding config.toml).", show_default=False),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
YesOption = Annotated[
    bool, typer.Option("--yes", "-y", help="Do not ask for confirmation (for scripts).")
]


def fail(message: str, code: int = 1) -> None:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def confirm_or_abort(question: str, yes: bool) -> None:
    """The one question before anything destructive, skipped with --yes. No answer (end of
    input, as from /dev/null in a script) is a no: nothing changes and the exit code is 1."""
    if yes:
        return
    try:
        agreed = typer.confirm(question, default=False)
    except (click.exceptions.Abort, typer.Abort):  # typer 0.2x raises its own Abort
        agreed = False
    if not agreed:
        fail("aborted, nothing changed (--yes skips this question)")


def run(coro: Coroutine[Any, Any, T]) -> T:
    try:
        return asyncio.run(coro)
    except UserError as exc:
        fail(str(exc))
        raise AssertionError("unreachable") from exc


TRACEBACK_ENV = "DREAMLOOM_TRACEBACK"
# The machine-learning libraries warn about their own deprecations on every generation; an
# admin can do nothing about them. Filtered here, the one place, for every command.
QUIET_LIBRARIES = r"(transformers|torchvision|diffusers|huggingface_hub|accelerate|torch)(\.|$)"


def quiet_library_warnings() -> None:
    for category in (FutureWarning, UserWarning, DeprecationWarning):
        warnings.filterwarnings("ignore", category=category, module=QUIET_LIBRARIES)


def entry_point() -> None:
    """The `dreamloom` entry point. Any exception a command did not expect is one
    `error: ...` line and exit code 1, never a traceback; DREAMLOOM_TRACEBACK=1 shows it."""
    quiet_library_warnings()
    try:
        app()
    except KeyboardInterrupt:
        err.print("[bold red]error:[/] interrupted", highlight=False)
        sys.exit(130)
    except Exception as exc:
        if os.environ.get(TRACEBACK_ENV, "") not in ("", "0"):
            raise
        what = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        err.print(
            f"[bold red]error:[/] {escape(what)} "
            f"(unexpected; set {TRACEBACK_ENV}=1 to see the traceback)",
            highlight=False,
            soft_wrap=True,
        )
        sys.exit(1)


def settings_for(directory: Path | None) -> Settings:
    try:
        return load_settings(locate_config(directory))
    except ConfigError as exc:
        fail(str(exc))
        raise AssertionError("unreachable") from exc


async def with_runtime(settings: Settings, fn: Callable[[Runtime], Awaitable[T]]) -> T:
    rt = await open_runtime(settings)
    try:
        await ensure_instance(rt)
        return await fn(rt)
    finally:
        await rt.aclose()


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def persona_text(persona: dict[str, Any] | None) -> str:
    """An AI account's persona as a person reads it: "style: ink wash; steps: 2; ..."."""
    if not persona:
        return "none"
    parts: list[str] = []
    for key, value in persona.items():
        if isinstance(value, dict):
            parts.extend(f"{k}: {v}" for k, v in value.items() if v not in ("", None))
        elif isinstance(value, list):
            parts.append(f"{key}: " + " | ".join(str(v) for v in value))
        elif value not in ("", None):
            parts.append(f"{key}: {value}")
    return "; ".join(parts) or "none"


def account_row(a: Account, settings: Settings) -> dict[str, Any]:
    return {
        "username": a.username,
        "handle": f"@{a.username}@{settings.host}",
        "type": a.kind,
        "ai": a.kind == "Service",
        "display_name": a.display_name,
        "bio": a.summary,
        "actor": a.uri,
        "profile": a.url,
        "avatar": a.avatar_url,
        "header": a.header_url,
        "persona": a.persona,
        "manually_approves_followers": a.manually_approves_followers,
        "schedule_minutes": a.schedule_minutes,
        "next_post_at": a.next_post_at.isoformat() if a.next_post_at else None,
        "created_at": a.created_at.isoformat(),
        "suspended_at": a.suspended_at.isoformat() if a.suspended_at else None,
        "deleted_at": a.deleted_at.isoformat() if a.deleted_at else None,
    }
