"""Accounts in the client API: the caller's own profile, other accounts, their posts and
lists, following and follow requests.

    GET   /api/v1/accounts/verify_credentials   the caller, with `source` (read:accounts, profile)
    PATCH /api/v1/accounts/update_credentials   name, note, avatar, header, fields, locked, ...
    GET   /api/v1/accounts/lookup?acct=         an account we know, by `user` or `user@host`
    GET   /api/v1/accounts/relationships?id[]=  the caller's relationship with each
    GET   /api/v1/accounts/:id                  one account
    GET   /api/v1/accounts/:id/statuses         its posts the caller may see (Link paging)
    GET   /api/v1/accounts/:id/followers        and /following (Link paging, up to 80)
    POST  /api/v1/accounts/:id/follow           and /unfollow: the Relationship
    GET   /api/v1/follow_requests               who waits for the caller's approval
    POST  /api/v1/follow_requests/:id/authorize and /reject

What they do is the content wing's: a profile changes through instance/generation/personas.py
`update_profile` (instance/content/profiles.py, pictures.py; the actor Update to followers
when the actor changed), follows through instance/content/actions.py, what the caller may
see of an account's posts through instance/content/timelines.py. Reads that Mastodon lets
anyone make (an account, its posts and lists, a lookup) need no token; one that is sent must
hold the read scope, as Mastodon's `authorize_if_got_token!` asks. A deleted or suspended
account, the instance actor, and accounts of suspended domains answer 404, as if unknown.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, cast

from sqlalchemy import Select, exists, func, literal, or_, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from instance.accounts import find_local
from instance.api import entities
from instance.api.auth import ApiError, Caller, check_scope, endpoint, json_response
from instance.api.pagination import Page, link_header, page_of, row_id
from instance.api.params import Limits, query_flag, read
from instance.content import actions, pictures, timelines
from instance.generation.personas import ProfileChanges, update_profile
from instance.moderation import domains
from instance.routes.common import runtime
from instance.runtime import Runtime
from instance.storage.models import Account, Boost, Follow, MediaAttachment, Post, PostTag

ACCOUNT_LIST_LIMIT = 80  # followers, following, follow requests: Mastodon's largest page
BODY_LIMITS = Limits(  # an avatar, a header and the rest
    max_fields=200, max_files=4, max_file_bytes=pictures.MAX_INPUT_BYTES,
    max_bytes=2 * pictures.MAX_INPUT_BYTES + (1 << 20),
)  # fmt: skip
NOT_FOUND = "Record not found"


# -- reading accounts ----------------------------------------------------------------------
def _read_scope(caller: Caller, scope: str) -> None:
    """Mastodon's `authorize_if_got_token!`: anyone may read, but a token must allow it."""
    if caller.token_id is not None:
        check_scope(caller, (scope,), user=False)


def _account_id(request: Request) -> int:
    found = row_id(request.path_params["id"])
    if found is None:
        raise ApiError(404, NOT_FOUND)
    return found


def shown_accounts() -> list[Any]:
    """WHERE clauses over `Account`: the accounts the API shows (not deleted, not suspended,
    not the instance actor, not of a suspended domain)."""
    return [
        Account.deleted_at.is_(None),
        Account.suspended_at.is_(None),
        Account.kind != "Application",
        or_(Account.local.is_(True), ~domains.host_blocked(Account.domain)),
    ]


async def shown_account(session: AsyncSession, account_id: int) -> Account:
    """The account behind an API id; ApiError(404) for one the API does not show."""
    found = await session.scalar(select(Account).where(Account.id == account_id, *shown_accounts()))
    if found is None:
        raise ApiError(404, NOT_FOUND)
    return found


async def relationships(
    session: AsyncSession, me: Account, others: Sequence[Account]
) -> list[dict[str, Any]]:
    """Mastodon's Relationship entity of `me` with each of `others`, in their order. There
    are no blocks, mutes, notes or endorsements here; boosts are always shown."""
    ids = [a.id for a in others]
    rows = await session.scalars(
        select(Follow).where(
            or_(
                (Follow.follower_id == me.id) & Follow.followee_id.in_(ids),
                (Follow.followee_id == me.id) & Follow.follower_id.in_(ids),
            )
        )
    )
    mine: dict[int, bool] = {}  # followee -> accepted
    theirs: dict[int, bool] = {}  # follower -> accepted
    for row in rows:
        if row.follower_id == me.id:
            mine[row.followee_id] = row.accepted
        if row.followee_id == me.id:
            theirs[row.follower_id] = row.accepted
    out = []
    for other in others:
        following, requested = mine.get(other.id) is True, mine.get(other.id) is False
        out.append({
            "id": str(other.id),
            "following": following,
            "showing_reblogs": following or requested,
            "notifying": False,
            "languages": None,
            "followed_by": theirs.get(other.id) is True,
            "blocking": False,
            "blocked_by": False,
            "muting": False,
            "muting_notifications": False,
            "requested": requested,
            "requested_by": theirs.get(other.id) is False,
            "domain_blocking": False,
            "endorsed": False,
            "note": "",
        })  # fmt: skip
    return out


async def credential_account(rt: Runtime, session: AsyncSession, me: Account) -> dict[str, Any]:
    """Mastodon's CredentialAccount: the Account, plus `source` (what the owner typed)."""
    data = await entities.account(rt, session, me)
    waiting = await session.scalar(
        select(func.count()).select_from(Follow)
        .where(Follow.followee_id == me.id, Follow.accepted.is_(False))
    )  # fmt: skip
    data["source"] = {
        "note": me.summary or "",
        "fields": [
            {"name": f["name"], "value": f["value"], "verified_at": None} for f in me.fields or []
        ],
        "privacy": "public",  # what a post is when its author says nothing (posting.Draft)
        "sensitive": False,
        "language": None,
        "follow_requests_count": int(waiting or 0),
    }
    return data


@endpoint("read:accounts", "profile")
async def verify_credentials(request: Request, caller: Caller) -> dict[str, Any]:
    rt = runtime(request)
    async with rt.sessions() as session:
        me = await session.get_one(Account, caller.user().id)
        return await credential_account(rt, session, me)


@endpoint()
async def show(request: Request, caller: Caller) -> dict[str, Any]:
    _read_scope(caller, "read:accounts")
    rt = runtime(request)
    async with rt.sessions() as session:
        return await entities.account(
            rt, session, await shown_account(session, _account_id(request))
        )


@endpoint()
async def lookup(request: Request, caller: Caller) -> dict[str, Any]:
    """An account this instance knows, by `user`, `@user` or `user@host` (Mastodon looks
    up no unknown account here either: /api/v2/search with resolve=true does)."""
    _read_scope(caller, "read:accounts")
    rt = runtime(request)
    acct = request.query_params.get("acct", "").strip().lstrip("@")
    if not acct:
        raise ApiError(422, "acct is required")
    user, _, host = acct.partition("@")
    async with rt.sessions() as session:
        if not host or host.lower() == rt.settings.host.lower():
            found = await find_local(session, user)
        else:
            found = await session.scalar(
                select(Account).where(Account.local.is_(False), Account.domain == host.lower(),
                                      Account.username_key == user.casefold())
            )  # fmt: skip
        if found is None:
            raise ApiError(404, NOT_FOUND)
        return await entities.account(rt, session, await shown_account(session, found.id))


@endpoint()
async def statuses(request: Request, caller: Caller) -> Response:
    """The account's posts and boosts the caller may see, newest first: `only_media`,
    `pinned` and `tagged` list posts only (a boost has no media, pin or tags of its own, as
    in Mastodon), `exclude_reblogs` leaves boosts out, `exclude_replies` replies out (but
    replies to itself, as Mastodon keeps threads)."""
    _read_scope(caller, "read:statuses")
    rt = runtime(request)
    page = page_of(request)
    viewer = caller.account
    tag = request.query_params.get("tagged", "").strip().lstrip("#").lower()
    posts_only = any(query_flag(request, f) for f in ("only_media", "pinned")) or bool(tag)
    async with rt.sessions() as session:
        author = await shown_account(session, _account_id(request))
        where = timelines.shown_posts("account", viewer=viewer, author=author)
        if query_flag(request, "only_media"):
            where.append(exists().where(MediaAttachment.post_id == Post.id))
        if query_flag(request, "exclude_replies"):
            parent = aliased(Post)
            own = exists().where(parent.id == Post.in_reply_to_id,
                                 parent.account_id == Post.account_id)  # fmt: skip
            where.append(or_(Post.in_reply_to_uri.is_(None), own))
        if query_flag(request, "pinned"):
            where.append(Post.pinned_at.is_not(None))
        if tag:
            where.append(exists().where(PostTag.post_id == Post.id, PostTag.name == tag))
        parts: list[Any] = [
            select(Post.public_id.label("sid"), Post.id.label("post_id"),
                   literal(None).label("boost_id")).where(*where)
        ]  # fmt: skip
        if not posts_only and not query_flag(request, "exclude_reblogs"):
            parts.append(
                select(Boost.public_id, literal(None), Boost.id)
                .join(Post, Post.id == Boost.post_id)
                .where(*timelines.account_boosts(author, viewer))
            )
        merged = union_all(*parts).subquery() if len(parts) > 1 else parts[0].subquery()
        query = select(merged.c.sid, merged.c.post_id, merged.c.boost_id)
        rows = page.ordered(list(await session.execute(page.apply(query, merged.c.sid))))
        items = await _items(session, rows)
        data = await entities.timeline(rt, session, items, viewer)
    return json_response(data, headers=link_header(request, [sid for sid, _, _ in rows]))


async def _items(session: AsyncSession, rows: Sequence[Any]) -> list[Post | Boost]:
    """The Post and Boost rows of (sid, post_id, boost_id) rows, in their order."""
    post_ids = {r.post_id for r in rows if r.post_id is not None}
    boost_ids = {r.boost_id for r in rows if r.boost_id is not None}
    posts = {p.id: p for p in await session.scalars(select(Post).where(Post.id.in_(post_ids)))}
    boosts = {b.id: b for b in await session.scalars(select(Boost).where(Boost.id.in_(boost_ids)))}
    return [posts[r.post_id] if r.post_id is not None else boosts[r.boost_id] for r in rows]


async def _account_page(
    rt: Runtime, request: Request, query: Select[int, Account], page: Page
) -> Response:
    """A page of (Follow.id, Account) rows as Account entities, paged by the follow's id."""
    paged = page.apply(cast("Select[Any]", query), Follow.id.expression, numeric=True)
    async with rt.sessions() as session:
        rows = page.ordered(list(await session.execute(paged)))
        data = await entities.accounts(rt, session, [account for _, account in rows])
    return json_response(data, headers=link_header(request, [str(fid) for fid, _ in rows]))


async def _follow_list(request: Request, caller: Caller, followers: bool) -> Response:
    _read_scope(caller, "read:accounts")
    rt = runtime(request)
    page = page_of(request, ACCOUNT_LIST_LIMIT)
    async with rt.sessions() as session:
        target = await shown_account(session, _account_id(request))
    near, far = (Follow.followee_id, Follow.follower_id) if followers else (
        Follow.follower_id, Follow.followee_id)  # fmt: skip
    query = (
        select(Follow.id, Account).join(Account, Account.id == far)
        .where(near == target.id, Follow.accepted.is_(True), *shown_accounts())
    )  # fmt: skip
    return await _account_page(rt, request, query, page)


@endpoint()
async def followers(request: Request, caller: Caller) -> Response:
    return await _follow_list(request, caller, followers=True)


@endpoint()
async def following(request: Request, caller: Caller) -> Response:
    return await _follow_list(request, caller, followers=False)


@endpoint("read:follows")
async def relationships_of(request: Request, caller: Caller) -> list[dict[str, Any]]:
    rt = runtime(request)
    raw = [*request.query_params.getlist("id[]"), *request.query_params.getlist("id")]
    ids = list(dict.fromkeys(i for i in map(row_id, raw) if i is not None))
    async with rt.sessions() as session:
        me = await session.get_one(Account, caller.user().id)
        found = {a.id: a for a in await session.scalars(
            select(Account).where(Account.id.in_(ids), *shown_accounts()))}  # fmt: skip
        return await relationships(session, me, [found[i] for i in ids if i in found])


# -- following -----------------------------------------------------------------------------
@endpoint("write:follows")
async def follow(request: Request, caller: Caller) -> dict[str, Any]:
    """Follow: at once for an unlocked local account, else a request (a Follow is queued
    for a remote one); following again changes nothing. Mastodon's `reblogs`, `notify` and
    `languages` options are not kept here."""
    return await _follow_action(request, caller, actions.follow)


@endpoint("write:follows")
async def unfollow(request: Request, caller: Caller) -> dict[str, Any]:
    """Unfollow, or take back a follow request (an Undo is queued for a remote account)."""
    return await _follow_action(request, caller, actions.unfollow)


async def _follow_action(
    request: Request, caller: Caller, act: Callable[..., Awaitable[Any]]
) -> dict[str, Any]:
    """`act(session, rt, me, target)` on the account of the path; the Relationship after."""
    rt = runtime(request)
    async with rt.session() as session:
        me = await session.get_one(Account, caller.user().id)
        target = await shown_account(session, _account_id(request))
        await act(session, rt, me, target)
        (relationship,) = await relationships(session, me, [target])
    return relationship


@endpoint("read:follows")
async def follow_requests(request: Request, caller: Caller) -> Response:
    rt = runtime(request)
    me = caller.user()
    query = (
        select(Follow.id, Account).join(Account, Account.id == Follow.follower_id)
        .where(Follow.followee_id == me.id, Follow.accepted.is_(False), *shown_accounts())
    )  # fmt: skip
    return await _account_page(rt, request, query, page_of(request, ACCOUNT_LIST_LIMIT))


async def _answer_request(request: Request, caller: Caller, accept: bool) -> dict[str, Any]:
    rt = runtime(request)
    async with rt.session() as session:
        me = await session.get_one(Account, caller.user().id)
        follower = await session.get(Account, _account_id(request))
        if follower is None:
            raise ApiError(404, NOT_FOUND)
        answer = actions.approve if accept else actions.reject
        if not await answer(session, rt, me, follower):
            raise ApiError(404, NOT_FOUND)
        (relationship,) = await relationships(session, me, [follower])
    return relationship


@endpoint("write:follows")
async def authorize_request(request: Request, caller: Caller) -> dict[str, Any]:
    """Accept a follow request (the follower's server gets the Accept)."""
    return await _answer_request(request, caller, accept=True)


@endpoint("write:follows")
async def reject_request(request: Request, caller: Caller) -> dict[str, Any]:
    """Refuse a follow request (the follower's server gets the Reject)."""
    return await _answer_request(request, caller, accept=False)


# -- changing the profile ------------------------------------------------------------------
@endpoint("write:accounts")
async def update_credentials(request: Request, caller: Caller) -> dict[str, Any]:
    """Change the caller's profile: `display_name`, `note` (plain text), `avatar` and
    `header` (image files, cropped and rewritten as instance/content/pictures.py says),
    `fields_attributes` (a JSON list or Rails' `fields_attributes[i][name]` form fields),
    `locked`, `discoverable` (read by instance/api/params.py, a form or JSON); followers
    get the actor Update. `bot`
    may only repeat what the account is: here an account is a bot when it is an AI account
    (made with --ai), which a profile cannot change."""
    rt = runtime(request)
    body = await read(request, BODY_LIMITS)
    fields = body.indexed("fields_attributes")
    changes = ProfileChanges(
        display_name=body.text("display_name"),
        bio=body.text("note"),
        locked=body.flag("locked"),
        discoverable=body.flag("discoverable"),
        profile_fields=None if fields is None else [
            (str(f.get("name") or ""), str(f.get("value") or "")) for f in fields
        ],
        avatar=body.file("avatar"),
        header=body.file("header"),
    )  # fmt: skip
    bot = body.flag("bot")
    async with rt.session() as session:
        me = await session.get_one(Account, caller.user().id)
        if bot is not None and bot != (me.kind == "Service"):
            raise ApiError(422, "bot: only AI accounts are bots, and that cannot be changed")
        await update_profile(session, rt, me, changes)
        await session.flush()
        return await credential_account(rt, session, me)


routes: list[BaseRoute] = [
    Route("/api/v1/accounts/verify_credentials", verify_credentials, methods=["GET"]),
    Route("/api/v1/accounts/update_credentials", update_credentials, methods=["PATCH"]),
    Route("/api/v1/accounts/lookup", lookup, methods=["GET"]),
    Route("/api/v1/accounts/relationships", relationships_of, methods=["GET"]),
    Route("/api/v1/accounts/{id:int}", show, methods=["GET"]),
    Route("/api/v1/accounts/{id:int}/statuses", statuses, methods=["GET"]),
    Route("/api/v1/accounts/{id:int}/followers", followers, methods=["GET"]),
    Route("/api/v1/accounts/{id:int}/following", following, methods=["GET"]),
    Route("/api/v1/accounts/{id:int}/follow", follow, methods=["POST"]),
    Route("/api/v1/accounts/{id:int}/unfollow", unfollow, methods=["POST"]),
    Route("/api/v1/follow_requests", follow_requests, methods=["GET"]),
    Route("/api/v1/follow_requests/{id:int}/authorize", authorize_request, methods=["POST"]),
    Route("/api/v1/follow_requests/{id:int}/reject", reject_request, methods=["POST"]),
]
