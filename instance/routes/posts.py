"""Posts as ActivityStreams: the Note, its Create, its counters, its replies, its remix
lineage, the quote stamps we issued; 410 once deleted. The HTML permalink is
instance/web/pages.py's."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import selectinload
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from activitypub.objects import AS_CONTEXT
from instance.accounts import find_local
from instance.content import collections
from instance.content.lineage import lineage_of
from instance.content.notes import create_json, note_json
from instance.content.quotes import stamp_json
from instance.content.render import collection_page, ordered_collection
from instance.content.visibility import served_unsigned
from instance.moderation import suspension
from instance.routes.common import (
    ActivityJSONResponse,
    error_json,
    page_number,
    runtime,
    wants_activity_json,
)
from instance.storage.models import Account, Post, QuoteAuthorization


async def find_post(request: Request) -> tuple[Account, Post] | Response:
    """The post at /users/{username}/posts/{public_id} (or /@{username}/{public_id}) if
    anyone may see it; else the answer: 404, or 410 with a Tombstone once deleted."""
    rt = runtime(request)
    async with rt.sessions() as session:
        account = await suspension.local_owner(session, request.path_params["username"])
        if account is None:
            return error_json("no such post", 404)
        status = suspension.page_status(account)  # 410 once deleted, 403 while suspended
        if status is not None:
            return error_json("this account is suspended or deleted", status)
        post = await session.scalar(
            select(Post)
            .where(Post.public_id == request.path_params["public_id"],
                   Post.account_id == account.id)
            .options(selectinload(Post.media))
        )  # fmt: skip
    if post is None:
        return error_json("no such post", 404)
    if post.deleted_at is not None:  # Gone, so that caches and servers forget it
        return ActivityJSONResponse(
            {"@context": AS_CONTEXT, "id": post.uri, "type": "Tombstone"}, status_code=410
        )
    if not served_unsigned(post):
        # followers-only and direct posts are delivered, never served publicly
        return error_json("no such post", 404)
    return account, post


def note_of(request: Request, account: Account, post: Post) -> dict[str, Any]:
    return note_json(post, account, list(post.media), runtime(request).urls)


async def note(request: Request) -> Response:
    found = await find_post(request)
    if isinstance(found, Response):
        return found
    account, post = found
    if not wants_activity_json(request):
        return RedirectResponse(post.url or "/", status_code=303, headers={"Vary": "Accept"})
    return ActivityJSONResponse(note_of(request, account, post))


async def create_activity(request: Request) -> Response:
    found = await find_post(request)
    if isinstance(found, Response):
        return found
    account, post = found
    note_doc = note_of(request, account, post)
    note_doc.pop("@context")
    return ActivityJSONResponse(create_json(post, note_doc))


async def counter(request: Request) -> Response:
    found = await find_post(request)
    if isinstance(found, Response):
        return found
    _, post = found
    which = request.path_params["which"]
    if which not in ("likes", "shares"):
        return error_json("not found", 404)
    total = post.likes_count if which == "likes" else post.boosts_count
    return ActivityJSONResponse(
        {"@context": AS_CONTEXT, "id": f"{post.uri}/{which}", "type": "Collection",
         "totalItems": total}
    )  # fmt: skip


async def replies(request: Request) -> Response:
    """The replies collection a Note names (Mastodon fetches it to backfill a thread)."""
    found = await find_post(request)
    if isinstance(found, Response):
        return found
    _, post = found
    page = page_number(request)
    async with runtime(request).sessions() as session:
        total, items = await collections.replies(session, post, page)
    cid = f"{post.uri}/replies"
    if page is None:
        return ActivityJSONResponse(ordered_collection(cid, total))
    return ActivityJSONResponse(collection_page(cid, page, items, total))


async def lineage(request: Request) -> Response:
    """The remix lineage of a post as JSON, as an anonymous visitor may see it."""
    found = await find_post(request)
    if isinstance(found, Response):
        return found
    _, post = found
    rt = runtime(request)
    async with rt.sessions() as session:
        doc = await lineage_of(session, post, rt.urls, None)
    return JSONResponse({"id": post.uri, **doc}, headers={"Access-Control-Allow-Origin": "*"})


async def quote_authorization(request: Request) -> Response:
    """A FEP-044f stamp we issued; 404 once revoked."""
    rt = runtime(request)
    async with rt.sessions() as session:
        account = await find_local(session, request.path_params["username"])
        stamp = await session.scalar(
            select(QuoteAuthorization).where(
                QuoteAuthorization.public_id == request.path_params["public_id"]
            )
        )
        target = await session.get(Post, stamp.post_id) if stamp else None
    if (
        account is None
        or stamp is None
        or target is None
        or target.account_id != account.id
        or stamp.revoked_at is not None
    ):
        return error_json("no such quote authorization", 404)
    return ActivityJSONResponse(stamp_json(stamp, account, target, rt.urls))


routes = [
    Route("/users/{username}/quote_authorizations/{public_id}", quote_authorization),
    Route("/users/{username}/posts/{public_id}", note),
    Route("/users/{username}/posts/{public_id}/activity", create_activity),
    Route("/users/{username}/posts/{public_id}/lineage", lineage),
    Route("/users/{username}/posts/{public_id}/replies", replies),
    Route("/users/{username}/posts/{public_id}/{which:str}", counter),
]
