"""Like (Misskey reactions and Pleroma `EmojiReact` count as likes), Announce, their Undos.

Counters are recounted from the rows after every change (instance/content/counters.py).
"""

from __future__ import annotations

from typing import TypeVar

from sqlalchemy import delete, select

from activitypub.objects import Activity
from instance.content.counters import recount
from instance.content.notifications import notify
from instance.content.visibility import can_boost
from instance.inbound.context import Inbound
from instance.inbound.handlers import lookup
from instance.inbound.handlers.follows import undo_follow
from instance.inbound.handlers.notes import store_note
from instance.storage.idempotent import insert_one
from instance.storage.models import Account, Boost, Follow, Like, NotificationKind, Post

Row = TypeVar("Row", Like, Boost)


async def _notify_author(ctx: Inbound, post: Post, kind: NotificationKind) -> None:
    author = await ctx.session.get(Account, post.account_id)
    if author is not None:
        await notify(ctx.session, recipient=author, kind=kind, sender=ctx.actor, post=post,
                     now=ctx.now)  # fmt: skip


async def on_like(ctx: Inbound) -> None:
    post = await lookup.post(ctx.session, ctx.object_id)
    if post is None:
        return
    added = await insert_one(ctx.session, Like, account_id=ctx.actor.id, post_id=post.id,
                             uri=ctx.activity.id, created_at=ctx.now)  # fmt: skip
    if added is not None:
        await recount(ctx.session, post.id)
        await _notify_author(ctx, post, "like")


async def on_announce(ctx: Inbound) -> None:
    post = await lookup.post(ctx.session, ctx.object_id)
    if post is None and ctx.obj is not None and ctx.obj.is_type("Note"):
        author = await lookup.account(ctx.session, ctx.obj.attributed_to)
        post = await store_note(ctx, ctx.obj, author) if author is not None else None
    if post is None or not can_boost(post):
        return
    added = await insert_one(ctx.session, Boost, account_id=ctx.actor.id, post_id=post.id,
                             uri=ctx.activity.id, published=ctx.now)  # fmt: skip
    if added is not None:
        await recount(ctx.session, post.id)
        await _notify_author(ctx, post, "boost")


async def _undo_row(ctx: Inbound, model: type[Row]) -> None:
    """The embedded activity by id, else the actor's row for its object; only the original
    actor may undo it."""
    undone = ctx.activity.object_activity or Activity({})
    row: Row | None = await ctx.session.scalar(select(model).where(model.uri == undone.id))
    if row is None:
        post = await lookup.post(ctx.session, undone.object_id)
        if post is not None:
            row = await ctx.session.scalar(
                select(model).where(model.account_id == ctx.actor.id, model.post_id == post.id)
            )
    await _delete_row(ctx, row)


async def _delete_row(ctx: Inbound, row: Like | Boost | None) -> None:
    if row is None or row.account_id != ctx.actor.id:
        return
    await ctx.session.execute(delete(type(row)).where(type(row).id == row.id))
    await recount(ctx.session, row.post_id)


async def on_undo_like(ctx: Inbound) -> None:
    await _undo_row(ctx, Like)


async def on_undo_announce(ctx: Inbound) -> None:
    await _undo_row(ctx, Boost)


async def on_undo_reference(ctx: Inbound) -> None:
    """Undo naming its activity only by id: whichever of ours has that id."""
    uri = ctx.object_id
    for model in (Like, Boost):
        row: Like | Boost | None = await ctx.session.scalar(select(model).where(model.uri == uri))
        if row is not None:
            await _delete_row(ctx, row)
            return
    await undo_follow(ctx, await ctx.session.scalar(select(Follow).where(Follow.uri == uri)))
