"""Every federated action from the command line, scriptable with --json:
follow, unfollow, like, unlike, boost, unboost, remix, revoke-remix, edit, delete, timeline,
notifications.

Targets are handles (`@user@host`, or a local name) and post URLs, resolved through WebFinger
and the safe fetcher (instance/resolve.py). Deliveries are queued; `dreamloom serve` sends them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from instance.accounts import get_local
from instance.cli.common import (
    DirOption,
    JsonOption,
    app,
    fail,
    out,
    print_json,
    run,
    settings_for,
    with_runtime,
)
from instance.cli.generate import await_job, report
from instance.content import actions, notifications, posting, quotes, timelines
from instance.content.visibility import visibility_option
from instance.errors import NotFound
from instance.generation.remix import remix
from instance.inbound import resolve
from instance.runtime import Runtime
from instance.storage.models import Account, Post, QuoteAuthorization

AccountArg = Annotated[str, typer.Argument(help="The local account that acts.")]
TargetArg = Annotated[str, typer.Argument(help="An account: @user@host, or a local name.")]
PostArg = Annotated[str, typer.Argument(help="A post's URL or id (local or remote).")]


def _act_on_account(
    directory: Path | None,
    username: str,
    target: str,
    as_json: bool,
    verb: str,
    fn: Callable[..., Awaitable[Any]],
) -> None:
    settings = settings_for(directory)

    async def go(rt: Runtime) -> dict[str, Any]:
        other = await resolve.account(rt, target)
        async with rt.session() as s:
            me = await get_local(s, username)
            result = await fn(s, rt, me, await s.get_one(Account, other.id))
        state = verb
        if verb == "follow":
            state = "following" if result.accepted else "requested (waiting for approval)"
        elif result is False:
            state = f"nothing to {verb}"
        return {"account": username, "action": verb, "target": other.uri, "state": state}

    row = run(with_runtime(settings, go))
    if as_json:
        print_json(row)
    else:
        out.print(f"{username}: {row['state']} {escape(row['target'])}", highlight=False)


def _act_on_post(
    directory: Path | None,
    username: str,
    url: str,
    as_json: bool,
    verb: str,
    fn: Callable[..., Awaitable[Any]],
) -> None:
    settings = settings_for(directory)

    async def go(rt: Runtime) -> dict[str, Any]:
        target = await resolve.post(rt, url)
        async with rt.session() as s:
            me = await get_local(s, username)
            post = await s.get_one(Post, target.id)
            result = await fn(s, rt, me, post)
        counts = {"likes": post.likes_count, "boosts": post.boosts_count}
        state = "nothing to undo" if result is False else "done"
        return {"account": username, "action": verb, "post": target.uri, "state": state, **counts}

    row = run(with_runtime(settings, go))
    if as_json:
        print_json(row)
    else:
        out.print(f"{username}: {verb} {escape(row['post'])}: {row['state']}", highlight=False)


def _account_command(verb: str, fn: Callable[..., Awaitable[Any]], doc: str) -> Callable[..., None]:
    def command(
        name: AccountArg, target: TargetArg, directory: DirOption = None,
        as_json: JsonOption = False,
    ) -> None:  # fmt: skip
        _act_on_account(directory, name, target, as_json, verb, fn)

    command.__doc__ = doc
    return command


def _post_command(verb: str, fn: Callable[..., Awaitable[Any]], doc: str) -> Callable[..., None]:
    def command(
        name: AccountArg, url: PostArg, directory: DirOption = None, as_json: JsonOption = False
    ) -> None:
        _act_on_post(directory, name, url, as_json, verb, fn)

    command.__doc__ = doc
    return command


ACCOUNT_COMMANDS = {
    "follow": (actions.follow, "Follow an account (remote ones answer with Accept)."),
    "unfollow": (actions.unfollow, "Stop following an account (sends Undo{Follow})."),
    "approve": (actions.approve, "Accept a pending follow request (sends Accept)."),
    "reject": (actions.reject, "Refuse a pending follow request (sends Reject)."),
}
POST_COMMANDS = {
    "like": (actions.like, "Like a post."),
    "unlike": (actions.unlike, "Take a like back (sends Undo{Like})."),
    "boost": (actions.boost, "Boost (Announce) a post to your followers."),
    "unboost": (actions.unboost, "Take a boost back (sends Undo{Announce})."),
}


async def local_post(session: AsyncSession, url: str) -> Post:
    """One of our posts, by its id or its page's URL; NotFound otherwise."""
    found = await session.scalar(
        select(Post).where(or_(Post.uri == url, Post.url == url), Post.local.is_(True))
    )
    if found is None:
        raise NotFound(f"no local post at {url}")
    return found


def said(row: dict[str, Any], as_json: bool) -> None:
    """What an action on a post did: its JSON, or "NAME: STATE POST"."""
    if as_json:
        print_json(row)
    else:
        out.print(f"{row['account']}: {row['state']} {escape(row['post'])}", highlight=False)


def delete_command(
    name: AccountArg, url: PostArg, directory: DirOption = None, as_json: JsonOption = False
) -> None:
    """Delete one of the account's posts (sends Delete; its URL then answers 410)."""
    settings = settings_for(directory)

    async def go(rt: Runtime) -> dict[str, Any]:
        async with rt.session() as s:
            me = await get_local(s, name)
            target = await local_post(s, url)
            await posting.delete(s, rt, me, target)
            return {"account": name, "action": "delete", "post": target.uri, "state": "deleted"}

    said(run(with_runtime(settings, go)), as_json)


def remix_command(
    name: AccountArg,
    url: PostArg,
    prompt: Annotated[str | None, typer.Option(help="An edited prompt.")] = None,
    seed: Annotated[int | None, typer.Option(help="The new seed (default: random).")] = None,
    from_image: Annotated[
        bool, typer.Option("--from-image", help="Image-to-image from the post's picture.")
    ] = False,
    strength: Annotated[
        float, typer.Option(help="With --from-image: how far to move (0-1].")
    ] = 0.6,
    visibility: Annotated[
        str, typer.Option(help="public, unlisted, followers or direct.")
    ] = "public",
    directory: DirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Remix a post: same recipe with a new seed, an edited prompt, or from its image."""
    settings = settings_for(directory)

    async def go(rt: Runtime) -> Any:
        parent = await resolve.post(rt, url)
        async with rt.session() as s:
            me = await get_local(s, name)
            job = await remix(s, rt, me, await s.get_one(Post, parent.id), prompt=prompt,
                              seed=seed, from_image=from_image, strength=strength,
                              visibility=visibility_option(visibility))  # fmt: skip
        return await await_job(rt, job.id, job.public_id, show_progress=not as_json)

    report(run(with_runtime(settings, go)), settings, as_json)


def edit_command(
    name: AccountArg,
    url: PostArg,
    text: Annotated[str, typer.Argument(help="The post's new text.")],
    cw: Annotated[
        str | None, typer.Option("--cw", help='A content warning ("" removes it).')
    ] = None,
    sensitive: Annotated[
        bool | None, typer.Option("--sensitive/--not-sensitive", help="Hide the image.")
    ] = None,
    language: Annotated[str | None, typer.Option(help="The post's language.")] = None,
    directory: DirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Edit one of the account's posts (sends Update; Mastodon shows it as edited)."""
    settings = settings_for(directory)

    async def go(rt: Runtime) -> dict[str, Any]:
        async with rt.session() as s:
            me = await get_local(s, name)
            target = await local_post(s, url)
            await posting.edit(s, rt, me, target, text=text, summary=cw, sensitive=sensitive,
                               language=language)  # fmt: skip
            return {"account": name, "action": "edit", "post": target.uri, "state": "edited"}

    said(run(with_runtime(settings, go)), as_json)


def revoke_remix_command(
    name: AccountArg,
    url: Annotated[str, typer.Argument(help="The remix (a quote of one of NAME's posts).")],
    directory: DirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Take back the approval of a remix of one of the account's posts: its stamp answers
    404 from now on and a Delete of it is federated (Mastodon then shows the quote as
    removed by its author)."""
    settings = settings_for(directory)

    async def go(rt: Runtime) -> dict[str, Any]:
        async with rt.session() as s:
            me = await get_local(s, name)
            remix_uri = await s.scalar(
                select(Post.uri).where(or_(Post.uri == url, Post.url == url))
            ) or url  # fmt: skip
            stamp = await s.scalar(
                select(QuoteAuthorization)
                .join(Post, Post.id == QuoteAuthorization.post_id)
                .where(QuoteAuthorization.quoting_uri == remix_uri, Post.account_id == me.id)
            )
            if stamp is None:
                raise NotFound(f"{name} has not approved a remix at {url}")
            already = stamp.revoked_at is not None
            await quotes.revoke(s, rt, stamp)
            state = "already revoked" if already else "revoked"
            return {"account": name, "action": "revoke-remix", "remix": remix_uri, "state": state}

    row = run(with_runtime(settings, go))
    if as_json:
        print_json(row)
    else:
        out.print(f"{name}: {row['state']} the approval of {escape(row['remix'])}", highlight=False)


def requests_command(
    name: AccountArg, directory: DirOption = None, as_json: JsonOption = False
) -> None:
    """Follow requests waiting for an account that approves followers by hand."""
    settings = settings_for(directory)

    async def go(rt: Runtime) -> list[dict[str, Any]]:
        async with rt.sessions() as s:
            me = await get_local(s, name)
            return [
                {"handle": rt.urls.handle(a), "actor": a.uri}
                for a in await actions.pending_followers(s, me)
            ]

    rows = run(with_runtime(settings, go))
    if as_json:
        print_json(rows)
        return
    for r in rows:
        out.print(f"{r['handle']}  {escape(r['actor'])}", highlight=False)
    if not rows:
        out.print("no pending follow requests")


def timeline(
    name: AccountArg,
    kind: Annotated[str, typer.Option(help="home, local, federated, or own.")] = "home",
    limit: Annotated[int, typer.Option(help="How many entries.")] = 20,
    directory: DirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Read a timeline as an account sees it."""
    kinds = (*timelines.KINDS, "own")
    if kind not in kinds:
        fail(f"--kind: unknown timeline {kind!r} (use one of {', '.join(kinds)})")
    settings = settings_for(directory)

    async def go(rt: Runtime) -> list[dict[str, Any]]:
        async with rt.sessions() as s:
            me = await get_local(s, name)
            which = "account" if kind == "own" else kind
            entries = await timelines.read(s, which, viewer=me, author=me, limit=limit,
                                           now=rt.now())  # fmt: skip
            return [await timelines.entry_json(s, e, rt.urls) for e in entries]

    rows = run(with_runtime(settings, go))
    if as_json:
        print_json(rows)
        return
    table = Table("when", "who", "text", "images", "♥", "⟳", show_lines=False)
    for r in rows:
        who = r["author"] + (f" (boosted by {r['boosted_by']})" if r["boosted_by"] else "")
        table.add_row(r["at"][:16], who, r["text"][:80], str(len(r["media"])),
                      str(r["likes"]), str(r["boosts"]))  # fmt: skip
    out.print(table)


def notifications_command(
    name: AccountArg,
    limit: Annotated[int, typer.Option(help="How many.")] = 40,
    directory: DirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Likes, boosts, mentions, replies, remixes and follows of an account."""
    settings = settings_for(directory)

    async def go(rt: Runtime) -> list[dict[str, Any]]:
        async with rt.sessions() as s:
            me = await get_local(s, name)
            return await notifications.list_for(s, me, rt.urls, limit=limit)

    rows = run(with_runtime(settings, go))
    if as_json:
        print_json(rows)
        return
    table = Table("when", "kind", "from", "post")
    for r in rows:
        table.add_row(r["created_at"][:16], r["kind"], r["from"], r["post"] or "")
    out.print(table)


for _verb, (_on_account, _doc) in ACCOUNT_COMMANDS.items():
    app.command(_verb)(_account_command(_verb, _on_account, _doc))
for _verb, (_on_post, _doc) in POST_COMMANDS.items():
    app.command(_verb)(_post_command(_verb, _on_post, _doc))
app.command("remix")(remix_command)
app.command("delete")(delete_command)
app.command("revoke-remix")(revoke_remix_command)
app.command("edit")(edit_command)
app.command("requests")(requests_command)
app.command("timeline")(timeline)
app.command("notifications")(notifications_command)
