"""`dreamloom account suspend|unsuspend|delete|password|rotate-key|avatar`: what an admin
does to one account.

The rules live elsewhere, one home each: what a suspended account may still do
(instance/moderation/suspension.py), what suspending federates (instance/content/
suspensions.py), deleting an account (instance/content/account_delete.py), rotating its key
(instance/content/key_rotation.py). Pictures go through the same code as `account set`.
"""

from __future__ import annotations

import asyncio
import secrets
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from sqlalchemy import select

from instance import accounts as accounts_mod
from instance.api.tokens import revoke_account_tokens
from instance.cli.common import (
    DirOption,
    JsonOption,
    YesOption,
    account_app,
    account_row,
    confirm_or_abort,
    err,
    fail,
    out,
    print_json,
    run,
    settings_for,
    with_runtime,
)
from instance.content import account_delete, suspensions
from instance.content.key_rotation import rotate_key
from instance.errors import NotFound, UserError
from instance.generation.personas import ProfileChanges, update_profile
from instance.inbound import resolve
from instance.outbound.delivery import DeliveryWorker
from instance.runtime import Runtime
from instance.storage.models import Account
from webfinger.client import split_handle

LocalArg = Annotated[str, typer.Argument(help="The local account.")]
AnyArg = Annotated[
    str, typer.Argument(help="An account: a local name, @user@host, or an actor URL.")
]
WAIT_POLL_S = 0.5


async def find_any(rt: Runtime, who: str) -> Account:
    """A local or remote account we know (by name, handle or actor URL) without asking the
    network; else resolved through WebFinger and a fetch (instance/inbound/resolve.py)."""
    who = who.strip()
    async with rt.sessions() as s:
        if who.startswith(("http://", "https://")):
            known = await s.scalar(select(Account).where(Account.uri == who))
        else:
            user, host = split_handle(who) if "@" in who.lstrip("@") else (who.lstrip("@"), "")
            domain = "" if host in ("", rt.settings.host) else host.lower()
            known = await s.scalar(
                select(Account).where(
                    Account.username_key == user.casefold(),
                    Account.domain == domain,
                    Account.deleted_at.is_(None),
                )
            )
            if known is None and not domain:
                raise NotFound(f"no local account named {user!r}")
    if known is not None:
        if known.deleted_at is not None:
            raise NotFound(f"{known.uri} was deleted")
        return known
    return await resolve.account(rt, who)


def _handle(account: Account, host: str) -> str:
    return f"@{account.username}@{account.domain or host}"


def _suspension(directory: Path | None, who: str, as_json: bool, lift: bool) -> None:
    settings = settings_for(directory)

    async def go(rt: Runtime) -> dict[str, Any]:
        account = await find_any(rt, who)
        act = suspensions.unsuspend if lift else suspensions.suspend
        changed = await act(rt, account)
        return {
            "account": _handle(account, settings.host),
            "actor": account.uri,
            "local": account.local,
            "suspended": not lift,
            "changed": changed,
            "suspended_at": account.suspended_at.isoformat() if account.suspended_at else None,
        }

    row = run(with_runtime(settings, go))
    if as_json:
        print_json(row)
        return
    verb = "unsuspended" if lift else "suspended"
    if not row["changed"]:
        out.print(f"{escape(row['account'])} was already {verb}; nothing changed", highlight=False)
        return
    note = ""
    if row["local"]:
        note = " (followers get an Update; deliveries " + ("resume)" if lift else "held)")
    out.print(f"{verb} {escape(row['account'])}{note}", highlight=False)


@account_app.command("suspend")
def account_suspend(who: AnyArg, directory: DirOption = None, as_json: JsonOption = False) -> None:
    """Suspend an account, local or remote (Mastodon's suspension; follows are kept).

    Ours: its pages answer 403, it cannot log in, its followers get an actor Update with
    `suspended: true` and its queued deliveries wait. Remote: its activities are refused at
    our inbox and its posts hidden everywhere."""
    _suspension(directory, who, as_json, lift=False)


@account_app.command("unsuspend")
def account_unsuspend(
    who: AnyArg, directory: DirOption = None, as_json: JsonOption = False
) -> None:
    """Lift a suspension: pages and login come back, the followers get the full actor in an
    Update and the held deliveries go out."""
    _suspension(directory, who, as_json, lift=True)


async def _deliver_until_done(
    rt: Runtime, activity_id: int, timeout_s: float
) -> account_delete.Progress:
    """Send the Delete's deliveries from here (alongside a running `dreamloom serve`: rows
    are leased, never sent twice at once) until each has ended, or waits for a paused
    server, or `timeout_s` passed."""
    worker = DeliveryWorker(rt)
    now = await account_delete.delivery_progress(rt, activity_id)
    deadline = time.monotonic() + timeout_s
    with Progress(
        TextColumn("Delete to known inboxes"), BarColumn(), MofNCompleteColumn(), console=err,
        transient=True,
    ) as bar:  # fmt: skip
        task = bar.add_task("deliveries", total=now.total, completed=now.ended)
        while not now.settled and time.monotonic() < deadline:
            await worker.run_once()
            now = await account_delete.delivery_progress(rt, activity_id)
            bar.update(task, completed=now.ended, total=now.total)
            if not now.settled:
                await asyncio.sleep(WAIT_POLL_S)  # retries wait for their time
    return now


@account_app.command("delete")
def account_delete_cmd(
    name: LocalArg,
    wait: Annotated[
        bool,
        typer.Option("--wait", help="Send the Delete now and wait until every delivery has ended."),
    ] = False,
    timeout: Annotated[
        float, typer.Option(help="With --wait: give up waiting after this many seconds.")
    ] = 300.0,
    yes: YesOption = False,
    directory: DirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Delete a local account for good: a signed Delete of the actor goes to every server we
    know, its posts, media and follows are purged, and a tombstone keeps the name taken (its
    actor, posts and WebFinger answer 410). The key is dropped once the deliveries end."""
    settings = settings_for(directory)

    async def check(rt: Runtime) -> None:
        async with rt.sessions() as s:
            await accounts_mod.get_local(s, name)

    run(with_runtime(settings, check))
    confirm_or_abort(f"Delete @{name} and all its posts for good?", yes)

    async def go(rt: Runtime) -> dict[str, Any]:
        async with rt.sessions() as s:
            account = await accounts_mod.get_local(s, name)
        with err.status("deleting", spinner="dots"):
            done = await account_delete.delete_account(rt, account)
        ended, total = 0, done.inboxes
        if wait:
            now = await _deliver_until_done(rt, done.activity_id, timeout)
            ended, total = now.ended, now.total
        keys_dropped = await account_delete.forget_spent_keys(rt)
        return {
            "account": name,
            "actor": done.account,
            "inboxes": total,
            "deliveries_ended": ended,
            "posts_deleted": done.posts,
            "media_files_deleted": done.media_files,
            "key_dropped": keys_dropped > 0 and ended == total,
        }

    row = run(with_runtime(settings, go))
    if as_json:
        print_json(row)
        return
    out.print(
        f"deleted @{escape(name)}: {row['posts_deleted']} posts, {row['media_files_deleted']} "
        f"files; Delete queued to {row['inboxes']} inboxes",
        highlight=False,
    )
    if wait:
        out.print(f"{row['deliveries_ended']}/{row['inboxes']} deliveries ended", highlight=False)
    if row["deliveries_ended"] < row["inboxes"]:
        out.print("its key is kept until they end (`dreamloom serve` sends them)")


def _read_password(generate: bool) -> tuple[str, bool]:
    """(password, generated): random, or from stdin, or asked twice on a terminal."""
    if generate:
        return secrets.token_urlsafe(18), True
    if sys.stdin.isatty():
        return typer.prompt("New password", hide_input=True, confirmation_prompt=True), False
    line = sys.stdin.readline().rstrip("\r\n")
    if not line:
        fail("no password on standard input (or use --generate)")
    return line, False


@account_app.command("password")
def account_password(
    name: LocalArg,
    generate: Annotated[
        bool, typer.Option("--generate", help="Make a random password and print it.")
    ] = False,
    directory: DirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Set an account's web login password (argon2id), from standard input, asked twice on a
    terminal, or --generate. Every web session and API token of the account ends."""
    settings = settings_for(directory)

    async def check(rt: Runtime) -> None:
        async with rt.sessions() as s:
            account = await accounts_mod.get_local(s, name)
            if account.kind == "Application":
                raise UserError("the instance actor has no password")

    run(with_runtime(settings, check))
    password, generated = _read_password(generate)

    async def go(rt: Runtime) -> None:
        hashed = await asyncio.to_thread(accounts_mod.hash_password, password)
        async with rt.session() as s:
            account = await accounts_mod.get_local(s, name)
            account.password_hash = hashed  # sessions carry its fingerprint: all end now
            await revoke_account_tokens(s, account.id, rt.now())  # and so do its app tokens

    run(with_runtime(settings, go))
    if as_json:
        print_json({"account": name, "password": password if generated else None,
                    "sessions_ended": True, "tokens_revoked": True})  # fmt: skip
        return
    if generated:
        out.print(f"new password for @{escape(name)}: {escape(password)}", highlight=False)
    else:
        out.print(f"password of @{escape(name)} changed", highlight=False)
    out.print("its web sessions have ended")
    out.print("its app tokens are revoked")


@account_app.command("rotate-key")
def account_rotate_key(
    name: LocalArg, yes: YesOption = False, directory: DirOption = None,
    as_json: JsonOption = False,
) -> None:  # fmt: skip
    """Give an account a new RSA key under the same keyId; the followers get an actor Update
    signed with it (servers that cached the old key fetch the new one)."""
    settings = settings_for(directory)

    async def check(rt: Runtime) -> None:
        async with rt.sessions() as s:
            await accounts_mod.get_local(s, name)

    run(with_runtime(settings, check))
    confirm_or_abort(f"Replace the key of @{name}?", yes)

    async def go(rt: Runtime) -> dict[str, Any]:
        async with rt.sessions() as s:
            account = await accounts_mod.get_local(s, name)
        with err.status("making a new RSA key", spinner="dots"):
            key_id = await rotate_key(rt, account)
        return {"account": name, "key_id": key_id, "federated_update": True}

    row = run(with_runtime(settings, go))
    if as_json:
        print_json(row)
        return
    out.print(f"new key for @{escape(name)} ({escape(row['key_id'])}); followers get an Update",
              highlight=False)  # fmt: skip


@account_app.command("avatar")
def account_avatar(
    name: LocalArg,
    file: Annotated[
        Path | None, typer.Argument(help="An image file (PNG, JPEG, GIF, WebP).")
    ] = None,
    generate: Annotated[
        bool, typer.Option("--generate", help="Generate it from the persona (a queued job).")
    ] = False,
    directory: DirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Set an account's avatar from FILE, or --generate it (as `account set --avatar` /
    `--generate-avatar`); the followers get an actor Update."""
    if (file is None) == (not generate):
        fail("give an image FILE or --generate (one of them)")
    data = None
    if file is not None:
        try:
            data = file.read_bytes()
        except OSError as exc:
            fail(f"cannot read {file}: {exc.strerror}")
    changes = ProfileChanges(avatar=data, generate=("avatar",) if generate else ())
    settings = settings_for(directory)

    async def go(rt: Runtime) -> dict[str, Any]:
        async with rt.session() as s:
            account = await accounts_mod.get_local(s, name)
            federated = await update_profile(s, rt, account, changes)
            return {**account_row(account, settings), "federated_update": federated,
                    "generating": generate}  # fmt: skip

    row = run(with_runtime(settings, go))
    if as_json:
        print_json(row)
        return
    if generate:
        out.print(f"avatar of {escape(row['handle'])} queued: `dreamloom serve` generates it",
                  highlight=False)  # fmt: skip
    else:
        out.print(f"avatar of {escape(row['handle'])} set: {row['avatar']}", highlight=False)
