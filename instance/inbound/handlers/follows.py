"""Follow, Accept/Reject of our Follows, Undo{Follow}."""

from __future__ import annotations

from sqlalchemy import delete, select

from activitypub.objects import Activity, build_accept
from instance.content.notifications import notify
from instance.inbound.context import Inbound
from instance.inbound.handlers import lookup
from instance.outbound.fanout import enqueue
from instance.storage.idempotent import insert_one
from instance.storage.ids import new_public_id
from instance.storage.models import Account, Follow
from instance.urls import INSTANCE_ACTOR_USERNAME


async def on_follow(ctx: Inbound) -> None:
    """Auto-Accept, or a pending request when the account approves followers by hand.

    A repeated Follow (Mastodon re-sends them, e.g. after a key rotation) makes no new row
    or notification; an accepted follow is Accepted again under the new Follow id."""
    followee = await lookup.local_account(ctx.session, ctx.object_id)
    if followee is None or followee.username == INSTANCE_ACTOR_USERNAME:
        return
    follower, follow_id = ctx.actor, ctx.activity.id or ""
    row = await _follow_row(ctx, follower, followee)
    if row is None:
        accepted = not followee.manually_approves_followers
        await insert_one(ctx.session, Follow, follower_id=follower.id, followee_id=followee.id,
                         uri=follow_id, accepted=accepted, created_at=ctx.now)  # fmt: skip
        row = await _follow_row(ctx, follower, followee)
        await notify(ctx.session, recipient=followee, sender=follower, now=ctx.now,
                     kind="follow" if accepted else "follow_request")  # fmt: skip
    elif row.uri != follow_id:
        row.uri = follow_id
    if row is not None and row.accepted:
        await send_accept(ctx, followee, follower, follow_id)


async def _follow_row(ctx: Inbound, follower: Account, followee: Account) -> Follow | None:
    return await ctx.session.scalar(
        select(Follow).where(Follow.follower_id == follower.id, Follow.followee_id == followee.id)
    )


async def send_accept(ctx: Inbound, followee: Account, follower: Account, follow_id: str) -> None:
    """Accept{object: the Follow, embedded}, to the follower (Mastodon matches the Accept to
    its Follow by the embedded id)."""
    accept = build_accept(
        activity_id=ctx.rt.urls.activity(followee.username, new_public_id()),
        actor=followee.uri,
        follow={"id": follow_id, "actor": follower.uri, "object": followee.uri},
    )
    await enqueue(ctx.session, ctx.rt, followee, accept, to=[follower])


async def _our_follow(ctx: Inbound) -> Follow | None:
    """The Follow of ours an Accept/Reject answers: by its id, else by the embedded actor.

    Only the followee itself can answer it: an Accept from anyone else is ignored, so nobody
    can make one of our accounts follow a locked account's private posts."""
    answered = ctx.activity.object_activity
    row = await ctx.session.scalar(select(Follow).where(Follow.uri == ctx.object_id))
    if row is None and answered is not None:
        follower = await lookup.local_account(ctx.session, answered.actor)
        if follower is not None and answered.object_id == ctx.actor.uri:
            row = await ctx.session.scalar(
                select(Follow).where(
                    Follow.follower_id == follower.id, Follow.followee_id == ctx.actor.id
                )
            )
    if row is None or row.followee_id != ctx.actor.id:
        return None
    follower_row = await ctx.session.get(Account, row.follower_id)
    return row if follower_row is not None and follower_row.local else None


async def on_accept(ctx: Inbound) -> None:
    row = await _our_follow(ctx)
    if row is not None:
        row.accepted = True


async def on_reject(ctx: Inbound) -> None:
    row = await _our_follow(ctx)
    if row is not None:
        await ctx.session.delete(row)


async def on_undo(ctx: Inbound) -> None:
    """Undo{Follow}: the embedded Follow by id, else by actor + object; only its follower
    may undo it."""
    undone = ctx.activity.object_activity or Activity({})
    row = await ctx.session.scalar(select(Follow).where(Follow.uri == undone.id))
    if row is None:
        followee = await lookup.local_account(ctx.session, undone.object_id)
        if followee is not None:
            row = await _follow_row(ctx, ctx.actor, followee)
    await undo_follow(ctx, row)


async def undo_follow(ctx: Inbound, row: Follow | None) -> None:
    if row is not None and row.follower_id == ctx.actor.id:
        await ctx.session.execute(delete(Follow).where(Follow.id == row.id))
