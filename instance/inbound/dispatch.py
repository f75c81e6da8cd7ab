"""One `match` on (activity type, object type); each case calls one named handler
(instance/inbound/handlers/). Anything else is accepted and dropped, with the reason kept on
the inbox row."""

from __future__ import annotations

from activitypub.objects import ACTOR_TYPES
from instance.errors import Skip
from instance.inbound.context import Inbound
from instance.inbound.handlers import actors, follows, interactions, moderation, notes, quoting


async def dispatch(ctx: Inbound) -> None:
    match (ctx.type, ctx.object_type):
        case ("Follow", _):
            await follows.on_follow(ctx)
        case ("Accept", _) if quoting.answers_quote_request(ctx):
            await quoting.on_accept(ctx)
        case ("Reject", _) if quoting.answers_quote_request(ctx):
            await quoting.on_reject(ctx)
        case ("Accept", _):
            await follows.on_accept(ctx)
        case ("Reject", _):
            await follows.on_reject(ctx)
        case ("Undo", "Follow"):
            await follows.on_undo(ctx)
        case ("Undo", "Like" | "EmojiReact"):
            await interactions.on_undo_like(ctx)
        case ("Undo", "Announce"):
            await interactions.on_undo_announce(ctx)
        case ("Undo", None):
            await interactions.on_undo_reference(ctx)
        case ("Like" | "EmojiReact", _):
            await interactions.on_like(ctx)
        case ("Announce", _):
            await interactions.on_announce(ctx)
        case ("Create", kind) if kind in notes.POST_TYPES:
            await notes.on_create(ctx)
        case ("Update", kind) if kind in notes.POST_TYPES:
            await notes.on_update(ctx)
        case ("Update", kind) if kind in ACTOR_TYPES:
            await actors.on_update(ctx)
        case ("Delete", _) if ctx.object_id == ctx.actor.uri:
            await actors.on_delete(ctx)
        case ("Delete", _):
            await notes.on_delete(ctx)
        case ("Block", _):
            await actors.on_block(ctx)
        case ("Move", _):
            await actors.on_move(ctx)
        case ("Flag", _):
            await moderation.on_flag(ctx)
        case ("QuoteRequest", _):
            await quoting.on_quote_request(ctx)
        case _:
            raise Skip(f"{ctx.type} of {ctx.object_type or 'an object without a type'} "
                       "is not handled")  # fmt: skip
