"""What every `dreamloom` command module shares: consoles, options, error handling, runtimes.

Command modules (instance/cli.py and the COMMAND_MODULES it registers) import from here, never
from instance/cli.py, so that any of them can be imported on its own.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from instance import accounts as accounts_mod
from instance.runtime import Runtime, open_runtime
from instance.settings import ConfigError, Settings, load_settings, locate_config

T = TypeVar("T")

account_app = typer.Typer(
    help="Create, list, show and change local accounts.", no_args_is_help=True
)

out = Console()
err = Console(stderr=True)

DirOption = Annotated[
    Path | None,
    typer.Option("--dir", help="Instance directory (holding config.toml).", show_default=False),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]

USER_ERRORS: tuple[type[Exception], ...] = (ConfigError, accounts_mod.AccountError)


def register_user_error(exc_type: type[Exception]) -> None:
    """Let another module's error type print as one clean line (e.g. generation errors)."""
    global USER_ERRORS
    USER_ERRORS = (*USER_ERRORS, exc_type)


def fail(message: str, code: int = 1) -> None:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def run(coro: Coroutine[Any, Any, T]) -> T:
    try:
        return asyncio.run(coro)
    except USER_ERRORS as exc:
        fail(str(exc))
        raise AssertionError("unreachable") from exc


def settings_for(directory: Path | None) -> Settings:
    try:
        return load_settings(locate_config(directory))
    except ConfigError as exc:
        fail(str(exc))
        raise AssertionError("unreachable") from exc


async def with_runtime(settings: Settings, fn: Callable[[Runtime], Awaitable[T]]) -> T:
    rt = await open_runtime(settings)
    try:
        from instance.setup import ensure_instance

        await ensure_instance(rt)
        return await fn(rt)
    finally:
        await rt.aclose()


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def account_row(a: Any, settings: Settings) -> dict[str, Any]:
    return {
        "username": a.username,
        "handle": f"@{a.username}@{settings.host}",
        "type": a.kind,
        "ai": a.kind == "Service",
        "display_name": a.display_name,
        "bio": a.summary,
        "actor": a.uri,
        "profile": a.url,
        "persona": a.persona,
        "manually_approves_followers": a.manually_approves_followers,
        "schedule_minutes": a.schedule_minutes,
        "next_post_at": a.next_post_at.isoformat() if a.next_post_at else None,
        "created_at": a.created_at.isoformat(),
    }
