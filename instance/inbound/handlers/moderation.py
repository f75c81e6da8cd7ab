"""Flag: another server reports our accounts or posts; the report waits for the admin
(`dreamloom reports`). Reports about nothing of ours are dropped, and so are reports past
MAX_OPEN_PER_REPORTER open ones from one actor or MAX_OPEN_PER_SERVER from one server: a
flood of reports must not bury the ones an admin needs to read. A domain blocked with
`reject_reports` (instance/moderation/domains.py) has its reports dropped."""

from __future__ import annotations

from sqlalchemy import func, select

from activitypub.objects import ids_of
from instance.content.sanitize import clean_html
from instance.errors import Skip
from instance.inbound.context import Inbound
from instance.inbound.handlers import lookup
from instance.moderation import domains
from instance.storage.idempotent import insert_one
from instance.storage.models import Account, Report

MAX_REPORTED_POSTS = 20
MAX_OPEN_PER_REPORTER = 10
MAX_OPEN_PER_SERVER = 50


async def on_flag(ctx: Inbound) -> None:
    policy = await domains.policy_for_host(ctx.session, ctx.actor.domain)
    if policy is not None and policy.reject_reports:  # an admin's domain block says so
        raise Skip("reports from this domain are rejected")
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
    await _within_limits(ctx)
    content = ctx.activity.raw.get("content")
    await insert_one(
        ctx.session, Report, uri=ctx.activity.id or "", reporter_id=ctx.actor.id,
        target_id=target.id if target else None, post_uris=posts,
        comment=clean_html(content if isinstance(content, str) else "")[:5000],
        created_at=ctx.now,
    )  # fmt: skip


async def _within_limits(ctx: Inbound) -> None:
    open_reports = select(func.count()).select_from(Report).join(
        Account, Account.id == Report.reporter_id
    ).where(Report.resolved_at.is_(None))
    mine = await ctx.session.scalar(open_reports.where(Report.reporter_id == ctx.actor.id))
    if (mine or 0) >= MAX_OPEN_PER_REPORTER:
        raise Skip(f"{ctx.actor.uri} already has {mine} open reports")
    theirs = await ctx.session.scalar(open_reports.where(Account.domain == ctx.actor.domain))
    if (theirs or 0) >= MAX_OPEN_PER_SERVER:
        raise Skip(f"{ctx.actor.domain} already has {theirs} open reports")
