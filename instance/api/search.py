"""Search: GET /api/v2/search, Mastodon's Search entity `{accounts, statuses, hashtags}`.

Parameters, as Mastodon reads them: `q` (required: 400 without it), `type` (`accounts`,
`statuses` or `hashtags`; without it all three; any other value finds nothing), `resolve`,
`limit` (20 by default, at most 40; 0 finds nothing), `offset` (only with `type`, as
Mastodon counts it per type), `following` (accounts the caller follows only),
`account_id` (statuses of that account only), `max_id`/`min_id` (statuses, by id) and
`exclude_unreviewed` (accepted; no hashtag here waits for a review, Mastodon's is for
trends, so none is held back).

What is found, without `resolve`, from the rows this instance holds:

- accounts: by the start of the username or the display name, case-insensitively
  (`@user@host` or `user@host`: the username's start on a domain starting with `host`),
  the exact handle first, then local accounts, then by name. Deleted and suspended
  accounts, the instance actor and accounts of suspended domains are never listed
  (instance/api/accounts.py `shown_accounts`).
- hashtags: by the start of the name (`#` optional) among the tags of posts the caller may
  see, the exact name first, then the most used. The Tag entity is Mastodon's: `name`,
  `url` (our tag page), `history` (the last 7 days, today first: posts anyone may fetch,
  and their authors, per UTC day), and for a signed-in caller `following` and
  `featuring` (false: there are no followed or featured tags here). Its `id` is the name,
  which is unique here (there is no tag table).
- statuses: only by the exact URL or id (`uri`) of a post we hold. Mastodon finds
  statuses by their words only with Elasticsearch (full-text search is an optional
  service there, and then only in posts the searcher wrote, boosted, liked or was
  mentioned in); this instance has no full-text index, so words find no status.
  A URL query also finds the account with that id or profile URL.

`resolve=true` (a signed-in caller only: 401 otherwise, as Mastodon answers; so is
`offset`) also looks up what this instance does not hold yet, the way the web follow page
and the inbound wing do it (instance/inbound/resolve.py): a handle through WebFinger
(webfinger/client.py), then the actor; an `https` URL fetched once and stored as an actor
or a post (`http` too where the instance allows private addresses, on a LAN or in tests).
Every request goes through the runtime's SSRF-guarded clients (no private address is ever
dialled), and a suspended domain (instance/moderation/domains.py) is never asked. A lookup
that fails finds nothing (200 with empty lists), as Mastodon answers.

Whoever searches, a status they may not see (instance/content/visibility.py, through
`entities.readable`) is never in the answer, and neither are posts of suspended accounts
or domains. A token that is sent needs `read:search`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, case, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.routing import BaseRoute, Route

from instance.api import entities
from instance.api.accounts import shown_accounts
from instance.api.auth import ApiError, Caller, check_scope, endpoint
from instance.api.pagination import DEFAULT_LIMIT, MAX_LIMIT, MAX_ROW_ID, row_id
from instance.content.visibility import served_unsigned_rows
from instance.errors import NotFound
from instance.inbound import resolve
from instance.moderation.domains import shown_domain
from instance.moderation.suspension import shown_author
from instance.routes.common import runtime
from instance.runtime import Runtime
from instance.storage.models import Account, Follow, Post, PostTag

KINDS = ("accounts", "statuses", "hashtags")
HISTORY_DAYS = 7
_FALSE = frozenset({"", "0", "f", "false", "off", "no", "n"})
_HANDLE = re.compile(r"@?(?P<user>[^@\s/]+)@(?P<host>[^@\s/]+)")
_URL = re.compile(r"https?://", re.IGNORECASE)


@dataclass(frozen=True)
class Query:
    """One search, as the request asked for it."""

    q: str
    kinds: frozenset[str]
    resolve: bool
    limit: int
    offset: int
    following: bool
    account_id: str | None
    max_id: str | None
    min_id: str | None


def _truthy(params: QueryParams, name: str) -> bool:
    """Rails' boolean cast, which Mastodon's `truthy_param?` uses."""
    value = params.get(name)
    return value is not None and value.strip().lower() not in _FALSE


def _count(params: QueryParams, name: str, default: int) -> int:
    raw = params.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(422, f"{name} must be a number") from None
    if value < 0:
        raise ApiError(400, "Pagination values for `offset` and `limit` must be positive")
    return min(value, MAX_ROW_ID)  # beyond any row count; the database takes no more


def read_query(params: QueryParams, signed_in: bool) -> Query:
    """The search a request asks for; ApiError in Mastodon's words and codes."""
    q = (params.get("q") or "").strip()
    if not q:
        raise ApiError(400, "param is missing or the value is empty: q")
    if not signed_in and params.get("offset"):
        raise ApiError(401, "Search queries pagination is not supported without authentication")
    resolving = _truthy(params, "resolve")
    if not signed_in and resolving:
        raise ApiError(
            401, "Search queries that resolve remote resources are not supported without "
            "authentication"
        )  # fmt: skip
    kind = (params.get("type") or "").strip()
    kinds = frozenset(KINDS) if not kind else frozenset({kind}) & frozenset(KINDS)
    limit = min(_count(params, "limit", DEFAULT_LIMIT), MAX_LIMIT)
    offset = _count(params, "offset", 0) if kind else 0
    return Query(q, kinds, resolving, limit, offset, _truthy(params, "following"),
                 params.get("account_id") or None, params.get("max_id") or None,
                 params.get("min_id") or None)  # fmt: skip


# -- the rules of what may be shown --------------------------------------------------------
def _shown_posts(viewer: Account | None) -> list[ColumnElement[bool]]:
    """The posts a search may list for `viewer`: those it may read, of shown authors."""
    return [Post.deleted_at.is_(None), entities.readable(viewer), shown_author(), shown_domain()]


def _status_filters(query: Query) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if query.account_id is not None:
        where.append(Post.account_id == (row_id(query.account_id) or -1))
    if query.max_id:
        where.append(Post.public_id < query.max_id)
    if query.min_id:
        where.append(Post.public_id > query.min_id)
    return where


def _followed_by(viewer: Account | None) -> ColumnElement[bool]:
    """Accounts `viewer` follows (an accepted follow); nobody for an anonymous caller."""
    if viewer is None:
        return Account.id.is_(None)
    return exists().where(Follow.follower_id == viewer.id, Follow.followee_id == Account.id,
                          Follow.accepted.is_(True))  # fmt: skip


def _account_rules(query: Query, viewer: Account | None) -> list[Any]:
    rules = shown_accounts()
    if query.following:
        rules.append(_followed_by(viewer))
    return rules


# -- URLs ----------------------------------------------------------------------------------
def fetchable(rt: Runtime, url: str) -> bool:
    """Whether `resolve` may fetch `url`: https, or http where private addresses are allowed
    (the same choice resolve.account makes for WebFinger)."""
    if url.lower().startswith("https://"):
        return True
    return rt.settings.federation.allow_private_addresses and url.lower().startswith("http://")


async def _held_at(
    session: AsyncSession, url: str, query: Query, viewer: Account | None
) -> tuple[list[Account], list[Post]]:
    """The account and the post this instance holds under `url` (id or URL), if shown."""
    accounts: list[Account] = []
    posts: list[Post] = []
    if "accounts" in query.kinds:
        accounts = list(await session.scalars(
            select(Account).where(or_(Account.uri == url, Account.url == url),
                                  *_account_rules(query, viewer)).limit(1)
        ))  # fmt: skip
    if "statuses" in query.kinds:
        posts = list(await session.scalars(
            select(Post).where(or_(Post.uri == url, Post.url == url), *_shown_posts(viewer),
                               *_status_filters(query)).limit(1)
        ))  # fmt: skip
    return accounts, posts


async def _by_url(
    rt: Runtime, query: Query, viewer: Account | None
) -> tuple[list[Account], list[Post]]:
    """What the URL in `q` names: a held row, else (with resolve) the fetched one."""
    if query.offset > 0 or not query.kinds & {"accounts", "statuses"}:
        return [], []  # Mastodon answers a URL only on the first page
    async with rt.sessions() as session:
        accounts, posts = await _held_at(session, query.q, query, viewer)
    if accounts or posts or not query.resolve or not fetchable(rt, query.q):
        return accounts, posts
    try:
        found = await resolve.by_url(rt, query.q)
    except NotFound:
        return [], []
    async with rt.sessions() as session:
        # the row as stored, through the same rules as a held one (its id may differ
        # from the URL that was typed: a profile page, a post's page)
        if isinstance(found, Account):
            return list(await session.scalars(
                select(Account).where(Account.id == found.id, *_account_rules(query, viewer))
            )) if "accounts" in query.kinds else [], []  # fmt: skip
        return [], list(await session.scalars(
            select(Post).where(Post.id == found.id, *_shown_posts(viewer),
                               *_status_filters(query))
        )) if "statuses" in query.kinds else []  # fmt: skip


# -- accounts ------------------------------------------------------------------------------
def _handle(rt: Runtime, q: str) -> tuple[str, str] | None:
    """(user, host) for `@user@host` or `user@host`; host "" for this instance."""
    match = _HANDLE.fullmatch(q)
    if match is None:
        return None
    host = match["host"].lower().rstrip(".")
    return match["user"], "" if host == rt.settings.host.lower() else host


async def _exact(session: AsyncSession, user: str, host: str) -> Account | None:
    return await session.scalar(
        select(Account).where(Account.username_key == user.casefold(), Account.domain == host,
                              Account.local.is_(host == ""), Account.deleted_at.is_(None))
    )  # fmt: skip


async def _resolved_handle(rt: Runtime, q: str, user: str, host: str) -> Account | None:
    """The account a remote handle names: held, else looked up (WebFinger, then the actor)."""
    async with rt.sessions() as session:
        held = await _exact(session, user, host)
    if held is not None:
        return held
    try:
        return await resolve.account(rt, f"{user}@{host}")
    except (NotFound, ValueError):
        return None


async def _accounts(rt: Runtime, query: Query, viewer: Account | None) -> list[Account]:
    q = query.q
    if q.startswith("#") or ("@" in q and " " in q):
        return []  # Mastodon: a hashtag, or words with a handle, name no account
    handle = _handle(rt, q)
    exact: Account | None = None
    if handle is not None and handle[1] and query.resolve and query.offset == 0:
        exact = await _resolved_handle(rt, q, *handle)
    user, host = handle if handle is not None else (q.lstrip("@"), None)
    key = user.casefold()
    async with rt.sessions() as session:
        if exact is None and handle is not None and query.offset == 0:
            exact = await _exact(session, *handle)
        names = Account.username_key.startswith(key, autoescape=True)
        where: list[Any] = _account_rules(query, viewer)
        if host is None:
            typed = func.lower(Account.display_name).startswith(user.lower(), autoescape=True)
            where.append(or_(names, typed))
        elif host == "":
            where += [names, Account.local.is_(True)]
        else:
            where += [names, Account.domain.startswith(host, autoescape=True)]
        first = case((Account.username_key == key, 0), else_=1)
        rows = list(await session.scalars(
            select(Account).where(*where)
            .order_by(first, Account.local.desc(), Account.username_key, Account.domain,
                      Account.id)
            .offset(query.offset).limit(query.limit)
        ))  # fmt: skip
        if exact is not None:
            shown = await session.scalar(
                select(Account).where(Account.id == exact.id, *_account_rules(query, viewer))
            )
            if shown is not None:
                rows = [shown, *(a for a in rows if a.id != shown.id)][: query.limit]
    return rows


# -- hashtags ------------------------------------------------------------------------------
def tag_entity(rt: Runtime, name: str, history: list[dict[str, str]],
               signed_in: bool) -> dict[str, Any]:  # fmt: skip
    """Mastodon's Tag."""
    data: dict[str, Any] = {"id": name, "name": name, "url": rt.urls.tag(name),
                            "history": history}  # fmt: skip
    if signed_in:
        data["following"] = False
        data["featuring"] = False
    return data


async def _history(
    rt: Runtime, session: AsyncSession, names: Sequence[str]
) -> dict[str, list[dict[str, str]]]:
    """Mastodon's tag history for each name: per UTC day of the last HISTORY_DAYS, today
    first, the posts with the tag that anyone may fetch (Mastodon counts public and
    unlisted ones) and how many accounts wrote them; the numbers as strings."""
    today = rt.now().astimezone(UTC).date()
    days = [today - timedelta(days=n) for n in range(HISTORY_DAYS)]
    start = datetime.combine(days[-1], time.min, UTC)
    rows = await session.execute(
        select(PostTag.name, Post.published, Post.account_id)
        .join(Post, Post.id == PostTag.post_id)
        .where(PostTag.name.in_(names), Post.published >= start, Post.deleted_at.is_(None),
               served_unsigned_rows(), shown_author(), shown_domain())
    )  # fmt: skip
    uses: dict[tuple[str, Any], int] = {}
    authors: dict[tuple[str, Any], set[int]] = {}
    for name, published, account_id in rows:
        slot = (name, published.astimezone(UTC).date())
        uses[slot] = uses.get(slot, 0) + 1
        authors.setdefault(slot, set()).add(account_id)
    out: dict[str, list[dict[str, str]]] = {}
    for name in names:
        out[name] = [
            {"day": str(int(datetime.combine(day, time.min, UTC).timestamp())),
             "uses": str(uses.get((name, day), 0)),
             "accounts": str(len(authors.get((name, day), ())))}
            for day in days
        ]  # fmt: skip
    return out


def tag_term(q: str) -> str | None:
    """The hashtag name a query starts (posts list names lower case, without '#')."""
    term = q.strip().lstrip("#").lower()
    if not term or "@" in q or any(c.isspace() for c in term):
        return None
    return term


async def _hashtags(
    rt: Runtime, session: AsyncSession, query: Query, viewer: Account | None
) -> list[dict[str, Any]]:
    term = tag_term(query.q)
    if term is None:
        return []
    uses = func.count(PostTag.post_id)
    rows = await session.execute(
        select(PostTag.name, uses).join(Post, Post.id == PostTag.post_id)
        .where(PostTag.name.startswith(term, autoescape=True), *_shown_posts(viewer))
        .group_by(PostTag.name)
        .order_by(case((PostTag.name == term, 0), else_=1), uses.desc(), PostTag.name)
        .offset(query.offset).limit(query.limit)
    )  # fmt: skip
    names = [name for name, _ in rows]
    history = await _history(rt, session, names) if names else {}
    return [tag_entity(rt, n, history[n], viewer is not None) for n in names]


# -- the endpoint --------------------------------------------------------------------------
async def run_search(rt: Runtime, query: Query, viewer: Account | None) -> dict[str, Any]:
    """The Search entity for `query` as `viewer` sees it (None: anonymous)."""
    accounts: list[Account] = []
    posts: list[Post] = []
    hashtags: list[dict[str, Any]] = []
    if query.limit > 0 and query.kinds:
        if _URL.match(query.q):
            accounts, posts = await _by_url(rt, query, viewer)
        else:
            if "accounts" in query.kinds:
                accounts = await _accounts(rt, query, viewer)
            if "hashtags" in query.kinds:
                async with rt.sessions() as session:
                    hashtags = await _hashtags(rt, session, query, viewer)
    async with rt.sessions() as session:
        return {
            "accounts": await entities.accounts(rt, session, accounts),
            "statuses": await entities.statuses(rt, session, posts, viewer),
            "hashtags": hashtags,
        }


@endpoint()
async def search(request: Request, caller: Caller) -> dict[str, Any]:
    """GET /api/v2/search: anyone may search (Mastodon's `authorize_if_got_token!`); a
    token that is sent must hold read:search; resolving and paging need a user."""
    if caller.token_id is not None:
        check_scope(caller, ("read:search",), user=False)
    rt = runtime(request)
    query = read_query(request.query_params, signed_in=caller.account is not None)
    viewer = caller.account
    if viewer is not None:
        async with rt.sessions() as session:
            viewer = await session.get_one(Account, viewer.id)
    return await run_search(rt, query, viewer)


routes: list[BaseRoute] = [Route("/api/v2/search", search, methods=["GET"])]
