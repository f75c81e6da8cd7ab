"""Update of an actor (profile changes, never its key), Delete of an actor, Block, Move."""

from __future__ import annotations

from sqlalchemy import delete, or_, select, update

from activitypub.objects import ids_of
from instance.content import actions
from instance.errors import ActorUnavailable, Skip
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


async def on_move(ctx: Inbound) -> None:
    """The actor moved to a new account (Mastodon's Move{object: old, target: new}). Only
    when the new account, fetched from its own server, names the old one in `alsoKnownAs`:
    our accounts that followed the old one follow the new one, and stop following the old."""
    old = ctx.actor
    if ctx.object_id != old.uri:
        raise Skip("a Move of another actor than its sender")
    moved_to = ctx.obj
    if moved_to is None or not moved_to.id or moved_to.id == old.uri:
        raise Skip("a Move without a new account")
    if old.uri not in ids_of(moved_to.get("alsoKnownAs")):
        raise Skip(f"{moved_to.id} does not name {old.uri} in alsoKnownAs")
    new = await lookup.account(ctx.session, moved_to.id)
    if new is None or new.local or new.deleted_at is not None:
        raise Skip(f"the new account {moved_to.id} is not a live remote account")
    followers = await ctx.session.scalars(
        select(Account)
        .join(Follow, Follow.follower_id == Account.id)
        .where(Follow.followee_id == old.id, Follow.accepted.is_(True), Account.local.is_(True))
    )
    for me in list(followers):
        await actions.follow(ctx.session, ctx.rt, me, new)
        await actions.unfollow(ctx.session, ctx.rt, me, old)
