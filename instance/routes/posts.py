"""Posts: the Note (activity JSON), its Create, its HTML permalink, 410 once deleted."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import selectinload
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from instance.accounts import find_local
from instance.content.lineage import lineage_of
from instance.content.notes import NOTE_CONTEXT, create_json, note_json
from instance.content.quotes import stamp_json
from instance.content.timelines import Entry
from instance.routes.common import ActivityJSONResponse, error_json, runtime, wants_activity_json
from instance.storage.models import Account, Post, QuoteAuthorization
from instance.web.auth import current_account
from instance.web.cards import cards
from instance.web.pages import page

VISIBLE_UNSIGNED = ("public", "unlisted")


async def _find(request: Request) -> tuple[Account, Post] | Response:
    rt = runtime(request)
    async with rt.sessions() as session:
        account = await find_local(session, request.path_params["username"])
        if account is None:
            return error_json("no such post", 404)
        post = await session.scalar(
            select(Post)
            .where(Post.public_id == request.path_params["public_id"],
                   Post.account_id == account.id)
            .options(selectinload(Post.media))
        )  # fmt: skip
    if post is None:
        return error_json("no such post", 404)
    if post.deleted_at is not None:  # INTEROP 32
        return ActivityJSONResponse(
            {"@context": NOTE_CONTEXT[0], "id": post.uri, "type": "Tombstone"}, status_code=410
        )
    if post.visibility not in VISIBLE_UNSIGNED:
        # followers-only and direct posts are delivered, never served publicly
        return error_json("no such post", 404)
    return account, post


def _note(request: Request, account: Account, post: Post) -> dict[str, Any]:
    return note_json(post, account, list(post.media), runtime(request).urls)


async def note(request: Request) -> Response:
    found = await _find(request)
    if isinstance(found, Response):
        return found
    account, post = found
    if not wants_activity_json(request):
        return RedirectResponse(post.url or "/", status_code=303, headers={"Vary": "Accept"})
    return ActivityJSONResponse(_note(request, account, post))


async def create_activity(request: Request) -> Response:
    found = await _find(request)
    if isinstance(found, Response):
        return found
    account, post = found
    note_doc = _note(request, account, post)
    note_doc.pop("@context")
    return ActivityJSONResponse(create_json(f"{post.uri}/activity", note_doc))


async def counter(request: Request) -> Response:
    found = await _find(request)
    if isinstance(found, Response):
        return found
    _, post = found
    which = request.path_params["which"]
    if which not in ("likes", "shares"):
        return error_json("not found", 404)
    total = post.likes_count if which == "likes" else post.boosts_count
    return ActivityJSONResponse(
        {"@context": NOTE_CONTEXT[0], "id": f"{post.uri}/{which}", "type": "Collection",
         "totalItems": total}
    )  # fmt: skip


async def lineage(request: Request) -> Response:
    """The remix lineage of a post as JSON: its parent chain and its remixes."""
    found = await _find(request)
    if isinstance(found, Response):
        return found
    _, post = found
    async with runtime(request).sessions() as session:
        doc = await lineage_of(session, post)
    return JSONResponse({"id": post.uri, **doc}, headers={"Access-Control-Allow-Origin": "*"})


async def permalink(request: Request) -> Response:
    """The HTML page of a post, with its recipe and remix lineage (INTEROP 7)."""
    found = await _find(request)
    if isinstance(found, Response):
        return found
    account, post = found
    if wants_activity_json(request):
        return ActivityJSONResponse(_note(request, account, post))
    rt = runtime(request)
    async with rt.sessions() as session:
        lineage = await lineage_of(session, post)
        viewer = await current_account(request, session)
        (view,) = await cards(session, rt, [Entry(post.published, post, account, None)], viewer)
    response = page(
        request,
        "post.html",
        {
            "account": account,
            "p": view,
            "post": post,
            "recipe": post.recipe,
            "lineage": lineage,
        },
    )
    response.headers["Link"] = f'<{post.uri}>; rel="alternate"; type="application/activity+json"'
    return response


async def quote_authorization(request: Request) -> Response:
    """A FEP-044f stamp we issued (INTEROP 47); 404 once revoked."""
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
    Route("/users/{username}/posts/{public_id}/{which:str}", counter),
    Route("/@{username}/{public_id}", permalink),
]
