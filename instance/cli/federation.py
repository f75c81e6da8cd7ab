"""Federation admin: `domain` (block, silence, reject-media, unblock, list, export, import),
`deliveries` (status, retry, purge) and `remote refresh`.

The rules live below: instance/moderation/domains.py (domain policy),
instance/outbound/backlog.py (deliveries), instance/inbound/refresh.py (refetching).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

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
from instance.errors import UserError
from instance.inbound import refresh as refresh_mod
from instance.moderation import domains
from instance.outbound import backlog
from instance.runtime import Runtime
from instance.storage.models import DomainBlock

domain_app = typer.Typer(
    help="Block, silence or reject the media of remote domains (Mastodon's severities).",
    no_args_is_help=True,
)
deliveries_app = typer.Typer(help="What waits to be delivered, per server.", no_args_is_help=True)
remote_app = typer.Typer(help="Remote actors and posts.", no_args_is_help=True)
app.add_typer(domain_app, name="domain")
app.add_typer(deliveries_app, name="deliveries")
app.add_typer(remote_app, name="remote")

DomainArg = Annotated[str, typer.Argument(help="The domain (its subdomains are covered).")]
PublicComment = Annotated[str, typer.Option("--public-comment", help="The reason, shown publicly.")]
PrivateComment = Annotated[str, typer.Option("--private-comment", help="A note for admins only.")]
ObfuscateOption = Annotated[
    bool, typer.Option("--obfuscate", help="Obfuscate the domain when it is shown publicly.")
]
RejectReports = Annotated[
    bool, typer.Option("--reject-reports", help="Ignore reports (Flags) from this domain.")
]
DomainFilter = Annotated[
    str | None, typer.Option("--domain", help="Only this domain and its subdomains.")
]


def block_json(row: DomainBlock) -> dict[str, Any]:
    return {
        "domain": row.domain,
        "severity": row.severity,
        "reject_media": row.reject_media,
        "reject_reports": row.reject_reports,
        "public_comment": row.public_comment,
        "private_comment": row.private_comment,
        "obfuscate": row.obfuscate,
    }


def _set_block(
    directory: Path | None,
    domain: str,
    severity: str,
    *,
    reject_media: bool,
    reject_reports: bool,
    public_comment: str,
    private_comment: str,
    obfuscate: bool,
    as_json: bool,
) -> None:
    settings = settings_for(directory)

    async def go(rt: Runtime) -> dict[str, Any]:
        row = await domains.block_domain(
            rt, domain, severity, reject_media=reject_media, reject_reports=reject_reports,
            public_comment=public_comment, private_comment=private_comment, obfuscate=obfuscate,
        )  # fmt: skip
        return block_json(row)

    row = run(with_runtime(settings, go))
    if as_json:
        print_json(row)
        return
    extra = " (media rejected)" if row["reject_media"] and severity != "suspend" else ""
    out.print(f"{escape(row['domain'])}: {row['severity']}{extra}", highlight=False)


@domain_app.command("block")
def domain_block(
    domain: DomainArg,
    yes: YesOption = False,
    reject_media: Annotated[
        bool, typer.Option("--reject-media", help="Also reject its media (implied).")
    ] = False,
    reject_reports: RejectReports = False,
    public_comment: PublicComment = "",
    private_comment: PrivateComment = "",
    obfuscate: ObfuscateOption = False,
    directory: DirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Suspend a domain: refuse its activities, remove follows with its accounts, drop
    what is queued to and from it, and stop fetching from and delivering to it."""
    confirm_or_abort(
        f"Suspend {domain}? Follows with its accounts and queued deliveries are removed.", yes
    )
    _set_block(directory, domain, "suspend", reject_media=reject_media,
               reject_reports=reject_reports, public_comment=public_comment,
               private_comment=private_comment, obfuscate=obfuscate, as_json=as_json)  # fmt: skip


@domain_app.command("silence")
def domain_silence(
    domain: DomainArg,
    reject_media: Annotated[
        bool, typer.Option("--reject-media", help="Also reject its media.")
    ] = False,
    reject_reports: RejectReports = False,
    public_comment: PublicComment = "",
    private_comment: PrivateComment = "",
    obfuscate: ObfuscateOption = False,
    directory: DirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Silence a domain: its posts leave the public timelines; federation goes on."""
    _set_block(directory, domain, "silence", reject_media=reject_media,
               reject_reports=reject_reports, public_comment=public_comment,
               private_comment=private_comment, obfuscate=obfuscate, as_json=as_json)  # fmt: skip


@domain_app.command("reject-media")
def domain_reject_media(
    domain: DomainArg,
    public_comment: PublicComment = "",
    private_comment: PrivateComment = "",
    directory: DirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Reject a domain's media only: its images are neither fetched nor served."""
    _set_block(directory, domain, "noop", reject_media=True, reject_reports=False,
               public_comment=public_comment, private_comment=private_comment,
               obfuscate=False, as_json=as_json)  # fmt: skip


@domain_app.command("unblock")
def domain_unblock(
    domain: DomainArg, directory: DirOption = None, as_json: JsonOption = False
) -> None:
    """Remove a domain's block (follows removed by a suspend are not restored)."""
    settings = settings_for(directory)

    async def go(rt: Runtime) -> bool:
        return await domains.unblock_domain(rt, domain)

    name = checked_domain(domain)
    removed = run(with_runtime(settings, go))
    if not removed:
        raise_user(f"{name} is not blocked")
    if as_json:
        print_json({"domain": name, "unblocked": True})
        return
    out.print(f"{escape(name)}: unblocked", highlight=False)


def raise_user(message: str) -> None:
    fail(message)


def checked_domain(text: str) -> str:
    """`text` as a domain, or the one error line and exit 1."""
    try:
        return domains.normalize_domain(text)
    except UserError as exc:
        fail(str(exc))
        raise AssertionError("unreachable") from exc


@domain_app.command("list")
def domain_list(directory: DirOption = None, as_json: JsonOption = False) -> None:
    """List blocked domains."""
    settings = settings_for(directory)

    async def go(rt: Runtime) -> list[dict[str, Any]]:
        async with rt.sessions() as session:
            return [block_json(row) for row in await domains.list_blocks(session)]

    rows = run(with_runtime(settings, go))
    if as_json:
        print_json(rows)
        return
    if not rows:
        out.print("no domain is blocked")
        return
    table = Table("domain", "severity", "media", "reports", "public comment")
    for row in rows:
        table.add_row(escape(row["domain"]), row["severity"],
                      "rejected" if row["reject_media"] else "",
                      "rejected" if row["reject_reports"] else "",
                      escape(row["public_comment"]))  # fmt: skip
    out.print(table)


@domain_app.command("export")
def domain_export(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
    directory: DirOption = None,
) -> None:
    """Export blocks as Mastodon's CSV blocklist."""
    settings = settings_for(directory)

    async def go(rt: Runtime) -> str:
        async with rt.sessions() as session:
            return domains.export_csv(await domains.list_blocks(session))

    text = run(with_runtime(settings, go))
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
        err.print(f"wrote {text.count(chr(10)) - 1} domains to {escape(str(output))}")


@domain_app.command("import")
def domain_import(
    file: Annotated[Path, typer.Argument(help="Mastodon CSV blocklist, or one domain a line.")],
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Also weaken existing blocks to what the file says.")
    ] = False,
    yes: YesOption = False,
    directory: DirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Import blocks; an existing block is never weakened unless --overwrite."""
    settings = settings_for(directory)
    try:
        text = file.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise_user(f"cannot read {file}: {exc.strerror or exc}")
        return
    entries = run(_parse(text))

    async def plan_of(rt: Runtime) -> domains.ImportPlan:
        async with rt.sessions() as session:
            return await domains.plan_import(session, entries)

    async def go(rt: Runtime) -> dict[str, Any]:
        plan = await plan_of(rt)
        if plan.downgrades and not as_json:
            verb = "weakened" if overwrite else "kept (use --overwrite to weaken)"
            err.print(f"{len(plan.downgrades)} blocks would be weaker; {verb}:")
            for old, new in plan.downgrades:
                err.print(f"  {escape(old.domain)}: {_describe(old)} -> {_describe(new)}",
                          highlight=False)  # fmt: skip
            if overwrite:
                confirm_or_abort(f"Weaken {len(plan.downgrades)} blocks?", yes)
        todo = domains.to_write(plan, overwrite=overwrite)
        steps = len(todo) + sum(1 for e in todo if e.severity == "suspend")
        with Progress(
            TextColumn("importing blocks"), BarColumn(), MofNCompleteColumn(), console=err,
            transient=True, disable=steps == 0,
        ) as bar:  # fmt: skip
            task = bar.add_task("import", total=steps)
            written = await domains.apply_import(
                rt, plan, overwrite=overwrite, progress=lambda n: bar.advance(task, n)
            )
        return {
            "read": len(entries),
            "new": len(plan.new),
            "strengthened": len(plan.stronger),
            "downgrades": [
                {"domain": o.domain, "from": _describe(o), "to": _describe(n)}
                for o, n in plan.downgrades
            ],
            "downgrades_applied": overwrite,
            "unchanged": plan.unchanged,
            "written": written,
        }

    summary = run(with_runtime(settings, go))
    if as_json:
        print_json(summary)
        return
    out.print(
        f"read {summary['read']}: {summary['new']} new, {summary['strengthened']} strengthened, "
        f"{len(summary['downgrades'])} weaker "
        f"({'applied' if overwrite else 'kept'}), {summary['unchanged']} unchanged",
        highlight=False,
    )


async def _parse(text: str) -> list[domains.Entry]:
    return domains.parse_blocklist(text)


def _describe(entry: domains.Entry) -> str:
    flags = [f for f, on in (("reject_media", entry.reject_media),
                             ("reject_reports", entry.reject_reports)) if on]  # fmt: skip
    return "+".join([entry.severity, *flags])


# -- deliveries ----------------------------------------------------------------------------
@deliveries_app.command("status")
def deliveries_status(
    domain: DomainFilter = None, directory: DirOption = None, as_json: JsonOption = False
) -> None:
    """Per server: queued, failing (retrying), failed, paused, blocked, the last error."""
    settings = settings_for(directory)

    async def go(rt: Runtime) -> list[dict[str, Any]]:
        return [entry.as_json() for entry in await backlog.status(rt, domain)]

    rows = run(with_runtime(settings, go))
    if as_json:
        print_json(rows)
        return
    if not rows:
        out.print("nothing waits to be delivered")
        return
    table = Table("host", "queued", "failing", "failed", "paused", "blocked", "last error")
    for row in rows:
        table.add_row(escape(row["host"]), str(row["queued"]), str(row["failing"]),
                      str(row["failed"]), "yes" if row["paused"] else "",
                      "yes" if row["blocked"] else "",
                      escape((row["last_error"] or "")[:80]))  # fmt: skip
    out.print(table)


@deliveries_app.command("retry")
def deliveries_retry(
    domain: DomainFilter = None, directory: DirOption = None, as_json: JsonOption = False
) -> None:
    """Make failed deliveries, and those waiting for a paused server, due now."""
    settings = settings_for(directory)

    async def go(rt: Runtime) -> int:
        return await backlog.retry(rt, domain)

    n = run(with_runtime(settings, go))
    if as_json:
        print_json({"retried": n, "domain": domain})
        return
    out.print(f"{n} deliveries due now")


@deliveries_app.command("purge")
def deliveries_purge(
    domain: DomainFilter = None,
    yes: YesOption = False,
    directory: DirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Delete every delivery not yet made (queued, retrying, failed)."""
    settings = settings_for(directory)
    if domain:
        checked_domain(domain)
    confirm_or_abort(f"Delete every undelivered delivery{' to ' + domain if domain else ''}?", yes)

    async def go(rt: Runtime) -> int:
        return await backlog.purge(rt, domain)

    n = run(with_runtime(settings, go))
    if as_json:
        print_json({"purged": n, "domain": domain})
        return
    out.print(f"{n} deliveries deleted")


# -- remote --------------------------------------------------------------------------------
@remote_app.command("refresh")
def remote_refresh(
    target: Annotated[str, typer.Argument(help="@user@host, or an actor or post URL.")],
    directory: DirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Fetch a remote actor or post again and update what is stored."""
    settings = settings_for(directory)

    async def go(rt: Runtime) -> refresh_mod.Refreshed:
        with err.status(f"fetching {escape(target)}"):
            return await refresh_mod.refresh(rt, target)

    done = run(with_runtime(settings, go))
    if as_json:
        print_json({"kind": done.kind, "uri": done.uri, "handle": done.handle})
        return
    out.print(f"refreshed {done.kind} {escape(done.uri)} ({escape(done.handle)})", highlight=False)


__all__ = ["deliveries_app", "domain_app", "remote_app"]
