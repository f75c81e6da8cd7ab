"""Notifications: the caller's, in Mastodon's shapes, paged by notification id.

    GET  /api/v1/notifications              read:notifications; `types[]`, `exclude_types[]`,
                                            `account_id`, max_id/since_id/min_id/limit (40,
                                            at most 80, as Mastodon) and a Link header
    GET  /api/v1/notifications/:id          read:notifications
    POST /api/v1/notifications/clear        write:notifications: delete them all
    POST /api/v1/notifications/:id/dismiss  write:notifications: delete one

Which notifications an account has, and which are left out (from a suspended account or
domain), is instance/content/notifications.py's; the JSON is instance/api/entities.py's.
The filters use Mastodon's type names, as entities.py `NOTIFICATION_TYPES` maps our kinds
onto them: `follow`, `follow_request`, `favourite` (a like), `reblog` (a boost), `mention`
(a mention or a reply), `quote` (a remix of the caller's post, Mastodon 4.5's quote
notification). Unknown type names match nothing, as in Mastodon.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.routing import BaseRoute, Route

from instance.api import entities
from instance.api.auth import ApiError, Caller, endpoint, json_response
from instance.api.pagination import link_header, page_of, row_id
from instance.content import notifications
from instance.routes.common import runtime
from instance.storage.models import Account, Notification

DEFAULT_LIMIT, MAX_LIMIT = 40, 80
TYPES: dict[str, set[str]] = {
    name: {kind for kind, named in entities.NOTIFICATION_TYPES.items() if named == name}
    for name in set(entities.NOTIFICATION_TYPES.values())
}
"""Mastodon's type names -> our kinds (the inverse of entities.NOTIFICATION_TYPES)."""


def kinds_of(names: Iterable[str]) -> set[str]:
    """Our kinds for Mastodon type names (unknown names: none)."""
    return {kind for name in names for kind in TYPES.get(name, ())}


def list_param(request: Request, name: str) -> list[str] | None:
    """`name[]=a&name[]=b` (or `name=a`, or `name[0]=a`), None when absent."""
    values = [v for k, v in request.query_params.multi_items() if _named(k, name)]
    return values if values else None


def _named(key: str, name: str) -> bool:
    return key == name or (key.startswith(f"{name}[") and key.endswith("]"))


async def own(session: AsyncSession, me: Account, raw_id: str) -> Notification:
    """One of `me`'s listed notifications by its API id; 404 otherwise."""
    notification_id = row_id(raw_id)
    if notification_id is None:
        raise ApiError(404, "Record not found")
    row = await session.scalar(
        select(Notification).where(Notification.id == notification_id,
                                   *notifications.shown_to(me))
    )  # fmt: skip
    if row is None:
        raise ApiError(404, "Record not found")
    return row


@endpoint("read:notifications")
async def index(request: Request, caller: Caller) -> Any:
    rt = runtime(request)
    me = caller.user()
    page = page_of(request, max_limit=MAX_LIMIT)
    if not request.query_params.get("limit"):
        page = replace(page, limit=DEFAULT_LIMIT)
    query = select(Notification).where(*notifications.shown_to(me))
    types = list_param(request, "types")
    if types is not None:
        query = query.where(Notification.kind.in_(sorted(kinds_of(types))))
    excluded = list_param(request, "exclude_types")
    if excluded:
        query = query.where(Notification.kind.not_in(sorted(kinds_of(excluded))))
    sender = request.query_params.get("account_id")
    if sender:
        sender_id = row_id(sender)
        if sender_id is None:
            return json_response([])
        query = query.where(Notification.from_account_id == sender_id)
    async with rt.sessions() as session:
        rows = page.ordered(list(await session.scalars(
            page.apply(query, Notification.id.expression, numeric=True)
        )))  # fmt: skip
        body = await entities.notifications(rt, session, rows, me)
    return json_response(body, headers=link_header(request, [str(n.id) for n in rows]))


@endpoint("read:notifications")
async def show(request: Request, caller: Caller) -> Any:
    rt = runtime(request)
    me = caller.user()
    async with rt.sessions() as session:
        row = await own(session, me, request.path_params["id"])
        found = await entities.notifications(rt, session, [row], me)
    if not found:  # the entity had nothing left to show (its status is gone)
        raise ApiError(404, "Record not found")
    return found[0]


@endpoint("write:notifications")
async def clear(request: Request, caller: Caller) -> Any:
    async with runtime(request).session() as session:
        await notifications.clear(session, caller.user())
    return {}


@endpoint("write:notifications")
async def dismiss(request: Request, caller: Caller) -> Any:
    me = caller.user()
    async with runtime(request).session() as session:
        row = await own(session, me, request.path_params["id"])
        await notifications.dismiss(session, me, row.id)
    return {}


routes: list[BaseRoute] = [
    Route("/api/v1/notifications", index, methods=["GET"]),
    Route("/api/v1/notifications/clear", clear, methods=["POST"]),
    Route("/api/v1/notifications/{id}", show, methods=["GET"]),
    Route("/api/v1/notifications/{id}/dismiss", dismiss, methods=["POST"]),
]
