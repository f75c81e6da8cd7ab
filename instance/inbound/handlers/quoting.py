"""FEP-044f: QuoteRequests for our posts, and answers to ours (instance/quotes.py)."""

from __future__ import annotations

from instance.content import quotes
from instance.inbound.context import Inbound


def answers_quote_request(ctx: Inbound) -> bool:
    """An Accept/Reject whose object is a QuoteRequest (embedded, or by our id for it)."""
    return ctx.object_type == "QuoteRequest" or (ctx.object_id or "").endswith("/quote_request")


async def on_quote_request(ctx: Inbound) -> None:
    await quotes.answer_quote_request(ctx.session, ctx.rt, ctx.raw, ctx.actor)


async def on_accept(ctx: Inbound) -> None:
    await quotes.on_accept(ctx.session, ctx.rt, ctx.raw, ctx.actor)


async def on_reject(ctx: Inbound) -> None:
    await quotes.on_reject(ctx.session, ctx.rt, ctx.raw, ctx.actor)
