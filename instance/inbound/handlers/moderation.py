"""Flag: another server reports our accounts or posts; the report waits for the admin
(`dreamloom reports`). Reports about nothing of ours are dropped."""

from __future__ import annotations

from activitypub.objects import ids_of
from instance.content.sanitize import clean_html
from instance.errors import Skip
from instance.inbound.context import Inbound
from instance.inbound.handlers import lookup
from instance.storage.idempotent import insert_one
from instance.storage.models import Account, Report

MAX_REPORTED_POSTS = 20


async def on_flag(ctx: Inbound) -> None:
    target = None
    posts: list[str] = []
    for uri in ids_of(ctx.activity.raw.get("object"))[: MAX_REPORTED_POSTS + 1]:
        account = await lookup.local_account(ctx.session, uri)
        if account is not None:
            target = target or account
            continue
        post = await lookup.post(ctx.session, uri)
        if post is not None and post.local:
            posts.append(post.uri)
            target = target or await ctx.session.get(Account, post.account_id)
    if target is None and not posts:
        raise Skip("Flag about nothing on this instance")
    content = ctx.activity.raw.get("content")
    await insert_one(
        ctx.session, Report, uri=ctx.activity.id or "", reporter_id=ctx.actor.id,
        target_id=target.id if target else None, post_uris=posts,
        comment=clean_html(content if isinstance(content, str) else "")[:5000],
        created_at=ctx.now,
    )  # fmt: skip
