"""Maintenance commands: `media prune`, `media renditions`, `backup`, `restore`, `doctor`.
The rules are in instance/maintenance/ (prune.py, backup.py, restore.py, doctor.py) and, for
the renditions, instance/content/rendition_backfill.py."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

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
from instance.content import rendition_backfill
from instance.errors import UserError
from instance.maintenance import backup as backup_mod
from instance.maintenance import doctor as doctor_mod
from instance.maintenance import prune as prune_mod
from instance.maintenance import restore as restore_mod
from instance.maintenance import running
from instance.runtime import Runtime
from instance.settings import Settings, locate_config
from instance.storage.media_store import MediaStoreError

media_app = typer.Typer(help="The media store and the remote media cache.", no_args_is_help=True)
app.add_typer(media_app, name="media")


@contextmanager
def user_errors() -> Iterator[None]:
    """A UserError raised outside `run(...)` is one error line too."""
    try:
        yield
    except UserError as exc:
        fail(str(exc))


@contextmanager
def spinner(what: str) -> Iterator[Callable[[str], None]]:
    """A spinner on stderr naming the member being handled; a callback to advance it."""
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TextColumn("{task.completed} files"),
        TimeElapsedColumn(), console=err, transient=True,
    ) as progress:  # fmt: skip
        task = progress.add_task(what, total=None)

        def advance(name: str) -> None:
            progress.update(task, advance=1, description=f"{what} {escape(name)}")

        yield advance


@media_app.command("prune")
def media_prune(
    remote_older_than: Annotated[
        str | None,
        typer.Option(
            "--remote-older-than", help="Delete cached remote images unused this long (30d, 12h)."
        ),
    ] = None,
    orphans: Annotated[
        bool,
        typer.Option("--orphans", help="Report media files no row names, rows with no file."),
    ] = False,
    fix: Annotated[bool, typer.Option("--fix", help="With --orphans: delete/clear them.")] = False,
    staging: Annotated[
        bool,
        typer.Option(
            "--staging", help="Delete S3 upload staging files over an hour old (a crash's)."
        ),
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only say what would go.")] = False,
    directory: DirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Delete cached remote images past an age; find (and with --fix remove) orphans; delete
    the S3 staging dir's leftovers (never a local store's media)."""
    if remote_older_than is None and not orphans and not staging:
        fail("say what to prune: --remote-older-than AGE, --orphans and/or --staging")
    if fix and not orphans:
        fail("--fix goes with --orphans")
    with user_errors():
        age = None if remote_older_than is None else prune_mod.parse_duration(remote_older_than)
    settings = settings_for(directory)

    async def go(rt: Runtime) -> dict[str, Any]:
        result: dict[str, Any] = {}
        if age is not None:
            result["remote"] = await prune_mod.prune_remote(rt, age, dry_run=dry_run)
        if orphans:
            found = await prune_mod.find_orphans(rt)
            fixing = fix and not dry_run
            if fixing:
                await prune_mod.fix_orphans(rt, found)
            result["orphans"] = {**found.as_json(), "fixed": fixing}
        if staging:
            result["staging"] = await prune_mod.prune_staged(rt, dry_run=dry_run)
        return result

    result = run(with_runtime(settings, go))
    if as_json:
        print_json(result)
        return
    if "remote" in result:
        r = result["remote"]
        verb = "would delete" if dry_run else "deleted"
        out.print(f"remote media cache: {verb} {len(r['files'])} files ({r['bytes']} bytes)",
                  highlight=False)  # fmt: skip
    if "orphans" in result:
        o = result["orphans"]
        for f in o["files"]:
            out.print(f"orphan file: {escape(f)}", highlight=False)
        for row in o["media_rows"]:
            out.print(f"media row {row['id']}: file {escape(row['file_name'])} is missing",
                      highlight=False)  # fmt: skip
        for p in o["pictures"]:
            out.print(f"account {p['account_id']} {p['which']}: file "
                      f"{escape(p['file_name'])} is missing", highlight=False)  # fmt: skip
        total = len(o["files"]) + len(o["media_rows"]) + len(o["pictures"])
        state = "fixed" if o["fixed"] else ("none" if not total else "run again with --fix")
        out.print(f"{total} orphans: {state}", highlight=False)
    if "staging" in result:
        st = result["staging"]
        if st["directory"] is None:
            out.print("staging: the media store stages nothing of its own (local): "
                      "nothing to prune", highlight=False)  # fmt: skip
        else:
            verb = "would delete" if dry_run else "deleted"
            count = len(st["files"]) if dry_run else st["removed"]
            out.print(f"staging {escape(st['directory'])}: {verb} {count} files "
                      f"({st['bytes']} bytes)", highlight=False)  # fmt: skip


@media_app.command("renditions")
def media_renditions(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only say which renditions would be made.")
    ] = False,
    concurrency: Annotated[
        int, typer.Option("--concurrency", min=1, max=32, help="Images handled at once.")
    ] = rendition_backfill.CONCURRENCY,
    directory: DirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Make every missing rendition (320/640 px WebP) of every stored image: for images
    stored before renditions existed, which an S3 store's public URLs cannot make on
    request. Safe to run again (it makes nothing then); an image that cannot be read is
    reported and skipped, and the exit code is 1 when any was."""
    settings = settings_for(directory)

    async def go(rt: Runtime) -> dict[str, Any]:
        try:
            report = await rendition_backfill.run(rt, dry_run=dry_run, concurrency=concurrency)
        except MediaStoreError as exc:
            raise UserError(f"the media store could not be listed: {exc}") from None
        return report.as_json()

    result = run(with_runtime(settings, go))
    if as_json:
        print_json(result)
    else:
        for failure in result["failed"]:
            out.print(f"failed: {escape(failure['original'])}: {escape(failure['error'])}",
                      highlight=False, soft_wrap=True)  # fmt: skip
        verb = "would make" if dry_run else "made"
        out.print(f"{escape(result['store'])}: {result['originals']} images, "
                  f"{result['present']} renditions already there, {verb} {result['made']}, "
                  f"{len(result['failed'])} failed", highlight=False)  # fmt: skip
    if result["failed"]:
        raise typer.Exit(1)


@app.command("backup")
def backup(
    path: Annotated[Path, typer.Argument(help="The .tar.gz to write (or a directory for it).")],
    directory: DirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Write the database, media, C2PA keys and config.toml into one .tar.gz with a
    manifest of checksums (written to a temporary name, renamed when complete)."""
    settings = settings_for(directory)
    with user_errors():
        target = backup_mod.target_path(path, settings)
    revision = run(backup_mod.schema_revision(settings))
    try:
        with user_errors(), spinner("backing up") as advance:
            manifest = backup_mod.write_backup(settings, target, revision, advance)
    except OSError as exc:
        fail(f"backup failed, nothing written: {exc}")
        return
    row = {
        "path": str(target),
        "files": len(manifest["files"]),
        "bytes": target.stat().st_size,
        "schema_revision": revision,
        "database": manifest["database"],
        "dreamloom_version": manifest["dreamloom_version"],
        "media": manifest["media"],
    }
    if as_json:
        print_json(row)
        return
    out.print(f"wrote {escape(row['path'])}: {row['files']} files, {row['bytes']} bytes, "
              f"{row['database']} schema {revision}", highlight=False)  # fmt: skip
    note = backup_mod.media_note(manifest)
    if note:
        out.print(escape(note), highlight=False)


@app.command("restore")
def restore(
    path: Annotated[Path, typer.Argument(help="A .tar.gz written by `dreamloom backup`.")],
    force: Annotated[
        bool, typer.Option("--force", help="Replace an instance that has accounts or posts.")
    ] = False,
    directory: DirOption = None,
    yes: YesOption = False,
) -> None:
    """Restore a backup onto an empty instance (checksums verified before anything changes;
    this instance's database URL is kept; the schema is migrated to head after). Refused
    while `dreamloom serve` runs on this instance's data directory. Restore only archives
    you made: a PostgreSQL dump runs as SQL with the database role's rights."""
    settings = settings_for(directory)
    with user_errors(), running.stopped(settings):
        _restore(settings, path, force, yes)


def _restore(settings: Settings, path: Path, force: bool, yes: bool) -> None:
    with user_errors(), spinner("verifying") as advance:
        manifest = restore_mod.verify(path, advance)
    contents = run(restore_mod.instance_contents(settings))
    with user_errors():
        restore_mod.check_target(settings, manifest, contents, force)
    confirm_or_abort(
        f"Replace this instance's database, media and keys with {path} "
        f"({manifest.get('domain')}, {manifest.get('created_at')})?",
        yes,
    )
    with spinner("restoring") as advance:
        revision = run(restore_mod.restore(settings, path, manifest, advance))
    out.print(f"restored {escape(str(path))} ({manifest.get('domain')}): schema at {revision}",
              highlight=False)  # fmt: skip


@app.command("doctor")
def doctor(directory: DirOption = None, as_json: JsonOption = False) -> None:
    """Check config, database, media dir, disk, clock, model and WebFinger; exit 1 on FAIL."""
    checks = run(doctor_mod.run_checks(locate_config(directory)))
    if as_json:
        print_json([{"check": c.name, "status": c.status, "detail": c.detail} for c in checks])
    else:
        colour = {"OK": "green", "WARN": "yellow", "FAIL": "red"}
        for c in checks:
            out.print(f"[{colour[c.status]}]{c.status:<4}[/] {c.name:<10} {escape(c.detail)}",
                      highlight=False, soft_wrap=True)  # fmt: skip
    if any(c.status == "FAIL" for c in checks):
        raise typer.Exit(1)
