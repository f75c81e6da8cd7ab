"""Update of an actor (profile changes, never its key), Delete of an actor, Block."""

from __future__ import annotations

from sqlalchemy import delete, or_, update

from instance.errors import ActorUnavailable
from instance.inbound.context import Inbound
from instance.inbound.handlers import lookup
from instance.inbound.keyring import KeyRing
from instance.inbound.media_cache import drop_remote_media
from instance.inbound.remote import upsert_actor
from instance.storage.models import Account, Follow, MediaAttachment, Post, RemoteKey


async def on_update(ctx: Inbound) -> None:
    """Profile changes by the actor itself. A new publicKey is NOT taken from an Update: the
    stored key stays until a fetch from the actor's own server changes it (whoever could
    sign one Update would otherwise keep the account)."""
    if ctx.obj is None or ctx.object_id != ctx.actor.uri:
        return
    try:
        await upsert_actor(ctx.session, dict(ctx.obj.raw), ctx.now, trusted_key=False)
    except ActorUnavailable:
        return


async def on_delete(ctx: Inbound) -> None:
    """The account is gone: mark it deleted, drop its follows, keys, posts and their media."""
    account = await ctx.session.get_one(Account, ctx.actor.id)
    account.deleted_at = account.deleted_at or ctx.now
    either = or_(Follow.follower_id == account.id, Follow.followee_id == account.id)
    await ctx.session.execute(delete(Follow).where(either))
    await ctx.session.execute(
        update(Post).where(Post.account_id == account.id, Post.deleted_at.is_(None))
        .values(deleted_at=ctx.now, content="", raw=None)
    )  # fmt: skip
    await drop_remote_media(ctx.session, ctx.rt, MediaAttachment.account_id == account.id)
    await ctx.session.execute(delete(RemoteKey).where(RemoteKey.owner_uri == account.uri))
    account.public_key_pem = None
    ctx.rt.service(KeyRing).forget_owner(account.uri)


async def on_block(ctx: Inbound) -> None:
    """A remote actor blocks one of ours: no follow remains either way."""
    blocked = await lookup.local_account(ctx.session, ctx.object_id)
    if blocked is None:
        return
    pair = (ctx.actor.id, blocked.id)
    await ctx.session.execute(
        delete(Follow).where(
            or_(
                (Follow.follower_id == pair[0]) & (Follow.followee_id == pair[1]),
                (Follow.follower_id == pair[1]) & (Follow.followee_id == pair[0]),
            )
        )
    )
