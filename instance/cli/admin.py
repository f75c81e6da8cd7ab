"""Admin commands: `account set` (profile, AI persona, schedule) and `pin` / `unpin`.

Options are parsed here into typed values, and a bad value fails with one line naming the
option and the accepted forms; the work is done by instance/profiles.py and instance/pins.py.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.markup import escape
from sqlalchemy import select

from instance.accounts import get_local
from instance.cli.common import (
    DirOption,
    JsonOption,
    account_app,
    account_row,
    fail,
    out,
    print_json,
    register_user_error,
    run,
    settings_for,
    with_runtime,
)
from instance.content import pins
from instance.content.profiles import ProfileChanges, ProfileError, update_profile
from instance.generation.requests import GenerationRefused, parse_size
from instance.generation.schedule import parse_schedule
from instance.runtime import Runtime
from instance.storage.models import Account, Report

T = TypeVar("T")
AccountArg = Annotated[str, typer.Argument(help="The local account.")]
PostUrlArg = Annotated[str, typer.Argument(help="The post's URL or id on this instance.")]


def _option(name: str, parse: Callable[[str], T], value: str | None) -> T | None:
    """Parse one option's value, or fail with one line naming the option."""
    if value is None:
        return None
    try:
        return parse(value)
    except (ValueError, GenerationRefused) as exc:
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
            account = await get_local(s, name)
            federated = await update_profile(s, rt, account, changes)
            return {**account_row(account, settings), "federated_update": federated}

    row = run(with_runtime(settings, go))
    if as_json:
        print_json(row)
        return
    note = " (followers get an Update)" if row["federated_update"] else ""
    out.print(f"updated {escape(row['handle'])}{note}", highlight=False)


def _pin_command(verb: str) -> Callable[..., None]:
    act = pins.pin if verb == "pin" else pins.unpin

    def command(
        account: AccountArg,
        post_url: PostUrlArg,
        directory: DirOption = None,
        as_json: JsonOption = False,
    ) -> None:
        settings = settings_for(directory)

        async def go(rt: Runtime) -> dict[str, Any]:
            async with rt.session() as s:
                me = await get_local(s, account)
                post = await pins.find_local_post(s, post_url)
                changed = await act(s, rt.urls, me, post, rt.now())
                pinned = await pins.pinned_count(s, me)
            return {"account": me.username, "action": verb, "post": post.uri,
                    "changed": changed, "pinned": pinned}  # fmt: skip

        row = run(with_runtime(settings, go))
        if as_json:
            print_json(row)
            return
        state = f"{verb}ned" if row["changed"] else f"already {verb}ned"
        out.print(
            f"{row['account']}: {state} {escape(row['post'])} ({row['pinned']} pinned)",
            highlight=False,
        )

    command.__doc__ = (
        "Pin a post to the account's profile (its featured collection; at most 5)."
        if verb == "pin"
        else "Unpin a post from the account's profile."
    )
    return command


def reports(
    resolve: Annotated[
        int | None, typer.Option("--resolve", help="Mark report ID as handled.")
    ] = None,
    everything: Annotated[bool, typer.Option("--all", help="Include handled reports.")] = False,
    directory: DirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Reports (Flags) other servers sent about this instance's accounts and posts."""
    settings = settings_for(directory)

    async def go(rt: Runtime) -> list[dict[str, Any]]:
        async with rt.session() as s:
            if resolve is not None:
                report = await s.get(Report, resolve)
                if report is None:
                    raise ProfileError(f"no report {resolve}")
                report.resolved_at = report.resolved_at or rt.now()
            query = select(Report).order_by(Report.id.desc())
            if not everything:
                query = query.where(Report.resolved_at.is_(None))
            rows = []
            for r in await s.scalars(query):
                reporter = await s.get_one(Account, r.reporter_id)
                target = await s.get(Account, r.target_id) if r.target_id else None
                rows.append({
                    "id": r.id, "from": reporter.uri, "about": target.username if target else None,
                    "posts": r.post_uris, "comment": r.comment,
                    "created_at": r.created_at.isoformat(), "resolved": r.resolved_at is not None,
                })  # fmt: skip
            return rows

    rows = run(with_runtime(settings, go))
    if as_json:
        print_json(rows)
        return
    for r in rows:
        state = "handled" if r["resolved"] else "open"
        out.print(
            f"#{r['id']} [{state}] about @{r['about']} from {escape(r['from'])}: "
            f"{escape(r['comment'][:120])} ({len(r['posts'])} posts)",
            highlight=False,
        )
    if not rows:
        out.print("no reports")


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    for error in (ProfileError, pins.PinError):
        register_user_error(error)
    account_app.command("set")(account_set)
    app.command("pin")(_pin_command("pin"))
    app.command("unpin")(_pin_command("unpin"))
    app.command("reports")(reports)
