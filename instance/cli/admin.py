"""Admin commands: `pin` / `unpin` (an account's featured posts) and `reports` (Flags other
servers sent about this instance's accounts and posts)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.markup import escape
from sqlalchemy import select

from instance.accounts import get_local
from instance.cli.common import (
    DirOption,
    JsonOption,
    app,
    out,
    print_json,
    run,
    settings_for,
    with_runtime,
)
from instance.content import pins
from instance.errors import UserError
from instance.runtime import Runtime
from instance.storage.models import Account, Report

AccountArg = Annotated[str, typer.Argument(help="The local account.")]
PostUrlArg = Annotated[str, typer.Argument(help="The post's URL or id on this instance.")]


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
                changed = await act(s, rt, me, post)
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


@app.command("reports")
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
                    raise UserError(f"no report {resolve}")
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


app.command("pin")(_pin_command("pin"))
app.command("unpin")(_pin_command("unpin"))
