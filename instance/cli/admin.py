"""Admin commands: `pin` / `unpin` (an account's featured posts), `reports` (Flags other
servers sent about this instance's accounts and posts; `reports act`, `reports forward`) and
`report` (file one about a remote account). The rules are in instance/content/reports.py."""

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
    YesOption,
    app,
    confirm_or_abort,
    err,
    fail,
    out,
    print_json,
    run,
    settings_for,
    with_runtime,
)
from instance.content import pins
from instance.content import reports as reports_mod
from instance.errors import NotFound, UserError
from instance.inbound import resolve as remote
from instance.runtime import Runtime
from instance.storage.models import Account, Post

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


reports_app = typer.Typer(
    help="Reports (Flags): those other servers sent about our accounts, ours about theirs."
)
app.add_typer(reports_app, name="reports")
ReportArg = Annotated[int, typer.Argument(help="The report's number, as `reports` shows it.")]


@reports_app.callback(invoke_without_command=True)
def reports(
    ctx: typer.Context,
    resolve: Annotated[
        int | None, typer.Option("--resolve", help="Mark report ID as handled.")
    ] = None,
    forward: Annotated[
        int | None, typer.Option("--forward", help="Send report ID to the reported server.")
    ] = None,
    everything: Annotated[bool, typer.Option("--all", help="Include handled reports.")] = False,
    directory: DirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Reports (Flags) other servers sent about this instance's accounts and posts, and the
    ones filed here with `dreamloom report`."""
    if ctx.invoked_subcommand is not None:
        return
    settings = settings_for(directory)

    async def go(rt: Runtime) -> list[dict[str, Any]]:
        if resolve is not None:
            await reports_mod.resolve(rt, resolve)
        if forward is not None:
            await reports_mod.forward(rt, forward)
        return await reports_mod.list_reports(rt, everything=everything)

    rows = run(with_runtime(settings, go))
    if as_json:
        print_json(rows)
        return
    if forward is not None:
        out.print(f"report {forward}: Flag queued to the reported server", highlight=False)
    for r in rows:
        state = "handled" if r["resolved"] else "open"
        if r["outgoing"]:
            sent = ", forwarded" if r["forwarded_at"] else ""
            line = f"#{r['id']} {escape(f'[{state}{sent}]')} ours about {escape(r['about'] or '?')}"
        else:
            line = f"#{r['id']} {escape(f'[{state}]')} about @{r['about']} from {escape(r['from'])}"
        done = escape(f" [{', '.join(r['action_taken'])}]") if r["action_taken"] else ""
        out.print(
            f"{line}: {escape(r['comment'][:120])} ({len(r['posts'])} posts){done}",
            highlight=False,
        )
    if not rows:
        out.print("no reports")


@reports_app.command("forward")
def forward_report(
    report_id: ReportArg, directory: DirOption = None, as_json: JsonOption = False
) -> None:
    """Send a report filed here to the reported account's server, as a Flag (once)."""
    settings = settings_for(directory)

    async def go(rt: Runtime) -> reports_mod.Forwarded:
        return await reports_mod.forward(rt, report_id)

    sent = run(with_runtime(settings, go))
    if as_json:
        print_json({"report": sent.report, "inbox": sent.inbox, "activity": sent.activity})
        return
    out.print(
        f"report {sent.report}: Flag queued to {escape(sent.inbox)} (`dreamloom serve` sends it)",
        highlight=False,
    )


@reports_app.command("act")
def act_on_report(
    report_id: ReportArg,
    delete_posts: Annotated[
        bool, typer.Option("--delete-posts", help="Delete the reported posts.")
    ] = False,
    suspend: Annotated[bool, typer.Option("--suspend", help="Suspend the account.")] = False,
    block_domain: Annotated[
        bool, typer.Option("--block-domain", help="Block the account's whole domain.")
    ] = False,
    yes: YesOption = False,
    directory: DirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Act on a report: delete its posts, suspend the account, block its domain; resolves it."""
    settings = settings_for(directory)
    asked = (
        ("delete the reported posts", delete_posts),
        ("suspend the account", suspend),
        ("block its domain", block_domain),
    )
    chosen = [name for name, on in asked if on]
    if not chosen:
        fail("say what to do: --delete-posts, --suspend and/or --block-domain")
    confirm_or_abort(f"Report {report_id}: {', '.join(chosen)}?", yes)

    async def go(rt: Runtime) -> reports_mod.Acted:
        return await reports_mod.act(
            rt, report_id, delete_posts=delete_posts, suspend=suspend, block_domain=block_domain
        )

    done = run(with_runtime(settings, go))
    row = {
        "report": done.report,
        "account": done.account,
        "action_taken": done.actions,
        "deleted_posts": done.deleted_posts,
        "resolved_at": done.resolved_at.isoformat(),
    }
    if as_json:
        print_json(row)
        return
    extra = f" ({done.deleted_posts} posts deleted)" if delete_posts else ""
    out.print(f"report {done.report}: {', '.join(done.actions)}{extra}; resolved", highlight=False)


TargetsArg = Annotated[
    list[str],
    typer.Argument(help="The account (@user@host or actor URL) and/or its post URLs."),
]


@app.command("report")
def report(
    targets: TargetsArg,
    comment: Annotated[str, typer.Option("--comment", help="Why (sent with a forward).")] = "",
    forward: Annotated[
        bool, typer.Option("--forward", help="Also send it to the account's server.")
    ] = False,
    directory: DirOption = None,
    as_json: JsonOption = False,
) -> None:
    """File a report about a remote account (and some of its posts), from the instance."""
    settings = settings_for(directory)

    async def go(rt: Runtime) -> dict[str, Any]:
        target, posts = await _resolve_targets(rt, targets)
        row = await reports_mod.file_report(rt, target, posts, comment)
        if forward:
            sent = await reports_mod.forward(rt, row["id"])
            row = {**row, "forwarded_to": sent.inbox}
        return row

    with err.status("finding the account and posts", spinner="dots"):
        row = run(with_runtime(settings, go))
    if as_json:
        print_json(row)
        return
    sent = f"; Flag queued to {escape(row['forwarded_to'])}" if forward else ""
    out.print(
        f"report {row['id']} filed about {escape(row['about'])} ({len(row['posts'])} posts){sent}",
        highlight=False,
    )


async def _resolve_targets(rt: Runtime, targets: list[str]) -> tuple[Account, list[Post]]:
    """Handles and actor URLs name the account; post URLs its posts (their author is the
    account when no handle is given). One account per report."""
    accounts: dict[int, Account] = {}
    posts: list[Post] = []
    for t in targets:
        if "://" in t:
            async with rt.sessions() as s:
                known = await s.scalar(select(Account).where(Account.uri == t))
            if known is not None:
                accounts[known.id] = known
                continue
            try:
                posts.append(await remote.post(rt, t))
                continue
            except NotFound:
                pass  # an actor URL, then
        who = await remote.account(rt, t)
        accounts[who.id] = who
    async with rt.sessions() as s:
        for p in posts:
            if not accounts:
                author = await s.get_one(Account, p.account_id)
                accounts[author.id] = author
    if len(accounts) != 1:
        raise UserError("a report is about one account: name it once, with its posts")
    (target,) = accounts.values()
    return target, posts


app.command("pin")(_pin_command("pin"))
app.command("unpin")(_pin_command("unpin"))
