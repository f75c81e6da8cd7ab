"""Actor documents and their collections, negotiated between activity JSON and HTML."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from activitypub.objects import AS_CONTEXT
from instance.content import collections
from instance.content.render import actor_document, collection_page, ordered_collection
from instance.content.suspensions import suspended_actor
from instance.moderation import suspension
from instance.routes.common import (
    ActivityJSONResponse,
    error_json,
    page_number,
    runtime,
    wants_activity_json,
)
from instance.storage.models import Account
from instance.urls import INSTANCE_ACTOR_USERNAME


async def _account_or_404(
    request: Request, username: str, *, suspended_ok: bool = False
) -> Account | Response:
    """The account, or the answer instead: 404, 410 once deleted, 403 while suspended
    (instance/moderation/suspension.py; the actor itself is still served, minimal)."""
    async with runtime(request).sessions() as session:
        account = await suspension.local_owner(session, username)
    if account is None:
        return error_json("no such account", 404)
    status = suspension.page_status(account)
    if status == suspension.GONE_STATUS:
        return ActivityJSONResponse(
            {"@context": AS_CONTEXT, "id": account.uri, "type": "Tombstone"}, status_code=status
        )
    if status is not None and not suspended_ok:
        return error_json("this account is suspended", status)
    return account


async def actor(request: Request) -> Response:
    username = request.path_params.get("username", INSTANCE_ACTOR_USERNAME)
    if username == INSTANCE_ACTOR_USERNAME and "username" in request.path_params:
        return error_json("no such account", 404)
    if not wants_activity_json(request):
        if username == INSTANCE_ACTOR_USERNAME:
            return RedirectResponse("/about", status_code=303, headers={"Vary": "Accept"})
        return RedirectResponse(f"/@{username}", status_code=303, headers={"Vary": "Accept"})
    found = await _account_or_404(request, username, suspended_ok=True)
    if isinstance(found, Response):
        return found
    rt = runtime(request)
    if suspension.is_suspended(found):  # Mastodon's minimal actor, so its key still verifies
        return ActivityJSONResponse(suspended_actor(rt, found))
    doc = actor_document(found, rt.urls, rt.settings.host, rt.settings.generator.model)
    return ActivityJSONResponse(doc)


async def collection(request: Request) -> Response:
    username = request.path_params.get("username", INSTANCE_ACTOR_USERNAME)
    name = request.path_params["collection"]
    found = await _account_or_404(request, username)
    if isinstance(found, Response):
        return found
    rt = runtime(request)
    page = page_number(request)
    items: list[str] | list[dict[str, Any]]
    async with rt.sessions() as session:
        if name == "followers":
            total, items = await collections.followers(session, found, page)
            cid = rt.urls.followers(username)
        elif name == "following":
            total, items = await collections.following(session, found, page)
            cid = rt.urls.following(username)
        elif name == "outbox":
            total, items = await collections.outbox(session, found, rt.urls, page)
            cid = rt.urls.outbox(username)
        else:
            return error_json("no such collection", 404)
    if page is None:
        return ActivityJSONResponse(ordered_collection(cid, total))
    return ActivityJSONResponse(collection_page(cid, page, items, total))


async def featured(request: Request) -> Response:
    username = request.path_params.get("username", INSTANCE_ACTOR_USERNAME)
    found = await _account_or_404(request, username)
    if isinstance(found, Response):
        return found
    rt = runtime(request)
    async with rt.sessions() as session:
        items = await collections.featured(session, found, rt.urls)
    doc = ordered_collection(rt.urls.featured(username), len(items))
    doc.pop("first", None)
    doc.pop("last", None)
    doc["orderedItems"] = items
    return ActivityJSONResponse(doc)


routes = [
    Route("/actor", actor),
    # the instance actor's collections (it advertises them: GoToSocial fetches them)
    Route("/actor/collections/featured", featured),
    Route("/actor/{collection:str}", collection),
    Route("/users/{username}", actor),
    Route("/users/{username}/collections/featured", featured),
    Route("/users/{username}/{collection:str}", collection),
]
