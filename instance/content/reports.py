"""Reports: the Flags other servers send about our accounts (instance/inbound/handlers/
moderation.py stores them), the ones our admin files about remote accounts, and what the admin
does about either.

- **Filing** (`file_report`): an outgoing Report row about a *remote* account and, optionally,
  some of its posts; the reporter is the instance actor (one anonymous voice for the whole
  instance, as Mastodon forwards reports).
- **Forwarding** (`forward`): the report as Mastodon's Flag, `{"type": "Flag", "actor":
  <instance actor>, "object": [account, posts...], "content": comment, "id": <report>}`,
  queued through the outbound machinery (instance/outbound/fanout.py; the delivery worker
  signs it with the instance actor's key) to the reported account's server: its shared inbox,
  else the account's inbox. Once per report (`forwarded_at`); only outgoing reports (an
  incoming one is about our own accounts). A report arriving from elsewhere is never
  forwarded anywhere.
- **Acting** (`act`): any of delete the reported posts (ours through the federated delete of
  instance/content/posting.py; remote ones are tombstoned here only), suspend the reported
  account (instance/content/suspensions.py), block its domain (instance/moderation/
  domains.py; never our own). The report is then resolved and `action_taken` lists what was
  done.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from instance.accounts import ensure_instance_actor
from instance.content import posting, suspensions
from instance.content.counters import recount
from instance.errors import UserError
from instance.moderation import domains
from instance.outbound.fanout import enqueue
from instance.runtime import Runtime
from instance.storage.ids import new_public_id
from instance.storage.models import Account, MediaAttachment, Post, Report
from instance.urls import INSTANCE_ACTOR_USERNAME

AS = "https://www.w3.org/ns/activitystreams"
MAX_COMMENT = 5000
MAX_POSTS = 20  # as for incoming Flags (handlers/moderation.py)


def _handle(account: Account | None) -> str | None:
    if account is None:
        return None
    return f"{account.username}@{account.domain}" if account.domain else account.username


async def report_row(session: AsyncSession, r: Report) -> dict[str, Any]:
    reporter = await session.get_one(Account, r.reporter_id)
    target = await session.get(Account, r.target_id) if r.target_id else None
    return {
        "id": r.id,
        "outgoing": r.outgoing,
        "from": reporter.uri,
        "about": _handle(target),
        "account": target.uri if target else None,
        "posts": list(r.post_uris),
        "comment": r.comment,
        "created_at": r.created_at.isoformat(),
        "resolved": r.resolved_at is not None,
        "resolved_at": r.resolved_at.isoformat() if r.resolved_at else None,
        "forwarded_at": r.forwarded_at.isoformat() if r.forwarded_at else None,
        "action_taken": list(r.action_taken or []),
    }


async def list_reports(rt: Runtime, *, everything: bool) -> list[dict[str, Any]]:
    """Open reports, newest first (`everything`: handled ones too)."""
    query = select(Report).order_by(Report.id.desc())
    if not everything:
        query = query.where(Report.resolved_at.is_(None))
    async with rt.sessions() as s:
        return [await report_row(s, r) for r in await s.scalars(query)]


async def _get(s: AsyncSession, report_id: int) -> Report:
    report = await s.get(Report, report_id)
    if report is None:
        raise UserError(f"no report {report_id} (see `dreamloom reports --all`)")
    return report


async def resolve(rt: Runtime, report_id: int) -> bool:
    """Mark the report handled; False when it already was."""
    async with rt.session() as s:
        report = await _get(s, report_id)
        if report.resolved_at is not None:
            return False
        report.resolved_at = rt.now()
    return True


async def file_report(
    rt: Runtime, target: Account, posts: list[Post], comment: str
) -> dict[str, Any]:
    """An outgoing report about the remote `target` (and some of its posts), from the
    instance actor. UserError for one of our own accounts or someone else's post."""
    if target.local:
        raise UserError(
            f"{target.username} is an account on this instance; `dreamloom account` and "
            "`reports act` handle those"
        )
    if len(posts) > MAX_POSTS:
        raise UserError(f"at most {MAX_POSTS} posts in one report")
    for p in posts:
        if p.account_id != target.id:
            raise UserError(f"{p.uri} is not a post by {_handle(target)}")
    async with rt.session() as s:
        actor = await ensure_instance_actor(s, rt.urls, rt.settings.instance.name)
        report = Report(
            uri=rt.urls.activity(INSTANCE_ACTOR_USERNAME, new_public_id()),
            reporter_id=actor.id,
            target_id=target.id,
            post_uris=list(dict.fromkeys(p.uri for p in posts)),
            comment=comment.strip()[:MAX_COMMENT],
            created_at=rt.now(),
            outgoing=True,
            action_taken=[],
        )
        s.add(report)
        await s.flush()
        return await report_row(s, report)


def flag_activity(report: Report, actor: Account, target: Account) -> dict[str, Any]:
    """Mastodon's Flag (its ActivityPub::FlagSerializer): the report's id, the instance
    actor, the account first and then the posts, the comment as content."""
    return {
        "@context": AS,
        "id": report.uri,
        "type": "Flag",
        "actor": actor.uri,
        "object": [target.uri, *report.post_uris],
        "content": report.comment,
    }


@dataclass(frozen=True)
class Forwarded:
    report: int
    inbox: str
    activity: dict[str, Any]


async def forward(rt: Runtime, report_id: int) -> Forwarded:
    """Queue the report's Flag to the reported account's server, once."""
    async with rt.session() as s:
        report = await _get(s, report_id)
        if not report.outgoing:
            raise UserError(
                f"report {report_id} came from another server about an account here; "
                "only reports about remote accounts are forwarded"
            )
        target = await s.get(Account, report.target_id) if report.target_id else None
        if target is None or target.local:
            raise UserError(f"report {report_id} names no remote account to forward to")
        if report.forwarded_at is not None:
            raise UserError(
                f"report {report_id} was already forwarded to {target.domain} "
                f"at {report.forwarded_at.isoformat()}; it is sent only once"
            )
        inbox = target.shared_inbox_uri or target.inbox_uri
        if not inbox:
            raise UserError(f"{_handle(target)} has no inbox to forward the report to")
        actor = await ensure_instance_actor(s, rt.urls, rt.settings.instance.name)
        activity = flag_activity(report, actor, target)
        await enqueue(s, rt, actor, activity, inboxes=[inbox], object_uri=target.uri)
        report.forwarded_at = rt.now()
    return Forwarded(report_id, inbox, activity)


@dataclass(frozen=True)
class Acted:
    report: int
    account: str | None
    actions: list[str]
    deleted_posts: int
    resolved_at: datetime


async def act(
    rt: Runtime,
    report_id: int,
    *,
    delete_posts: bool = False,
    suspend: bool = False,
    block_domain: bool = False,
) -> Acted:
    """Do what the admin chose about the report, then resolve it with `action_taken`."""
    if not (delete_posts or suspend or block_domain):
        raise UserError("say what to do: --delete-posts, --suspend and/or --block-domain")
    async with rt.sessions() as s:
        report = await _get(s, report_id)
        target = await s.get(Account, report.target_id) if report.target_id else None
        post_uris = list(report.post_uris)
    if (suspend or block_domain) and target is None:
        raise UserError(f"report {report_id} names no account")
    if block_domain and target is not None and target.local:
        raise UserError(f"{target.username} is on this instance; its domain cannot be blocked")
    actions: list[str] = []
    deleted = 0
    if delete_posts:
        deleted = await _delete_posts(rt, post_uris)
        actions.append("delete-posts")
    if suspend and target is not None:
        await suspensions.suspend(rt, target)
        actions.append("suspend")
    if block_domain and target is not None:
        await domains.block_domain(rt, target.domain, private_comment=f"report {report_id}")
        actions.append("block-domain")
    async with rt.session() as s:
        report = await _get(s, report_id)
        report.action_taken = list(dict.fromkeys([*(report.action_taken or []), *actions]))
        report.resolved_at = report.resolved_at or rt.now()
        resolved_at = report.resolved_at
    return Acted(report_id, _handle(target), actions, deleted, resolved_at)


async def _delete_posts(rt: Runtime, uris: list[str]) -> int:
    """Ours: deleted and the Delete federated; remote: tombstoned here (and their cached
    images dropped). How many were deleted now."""
    deleted = 0
    async with rt.session() as s:
        for uri in uris:
            post = await s.scalar(select(Post).where(Post.uri == uri))
            if post is None or post.deleted_at is not None:
                continue
            if post.local:
                author = await s.get_one(Account, post.account_id)
                await posting.delete(s, rt, author, post)
            else:
                post.deleted_at = rt.now()
                post.content, post.raw = "", None
                await s.execute(
                    delete(MediaAttachment).where(
                        MediaAttachment.post_id == post.id, MediaAttachment.file_name.is_(None)
                    )
                )
                await s.flush()
                if post.in_reply_to_id is not None:
                    await recount(s, post.in_reply_to_id)
            deleted += 1
    return deleted
