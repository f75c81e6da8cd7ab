"""The public HTML pages: home, about, profiles and post permalinks. Every page that has an
ActivityPub twin links to it (`Link: <...>; rel="alternate"`), and a permalink asked for
activity JSON answers with the Note."""

from __future__ import annotations

import sys

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from instance import __version__
from instance.accounts import list_local
from instance.content import collections, timelines
from instance.content.lineage import lineage_of
from instance.content.timelines import Entry
from instance.moderation import suspension
from instance.routes.common import ActivityJSONResponse, runtime, wants_activity_json
from instance.routes.posts import find_post, note_of
from instance.urls import INSTANCE_ACTOR_USERNAME
from instance.web.cards import cards
from instance.web.errors import not_found
from instance.web.previews import post_tags, profile_tags
from instance.web.sessions import current_account
from instance.web.templating import HERE, page

HOME_POSTS = 20


async def home(request: Request) -> Response:
    """The instance's accounts and its latest public posts (the local timeline), with images."""
    rt = runtime(request)
    async with rt.sessions() as session:
        accounts = [
            a
            for a in await list_local(session)
            if a.username != INSTANCE_ACTOR_USERNAME and a.suspended_at is None
        ]
        entries = await timelines.read(session, "local", limit=HOME_POSTS, now=rt.now())
        viewer = await current_account(request, session)
        views = await cards(session, rt, entries, viewer)
    return page(request, "home.html", {"accounts": accounts, "posts": views})


def made_on(device: str) -> str:
    """Where this instance's images are made, as a visitor reads it: its GPU only when it has
    one (a CUDA device configured, or `auto` with CUDA available), its CPU when it has none.
    torch is asked only when the worker has already loaded it (a page never imports it)."""
    if device.startswith("cuda"):
        return "this instance's GPU"
    if device == "cpu":
        return "this instance's CPU"
    torch = sys.modules.get("torch")
    if torch is None:
        return "this instance"
    return "this instance's GPU" if torch.cuda.is_available() else "this instance's CPU"


async def about(request: Request) -> Response:
    rt = runtime(request)
    return page(
        request,
        "about.html",
        {
            "made_on": made_on(rt.settings.generator.device),
            "model": rt.settings.generator.model,
            "version": __version__,
            "actor_uri": rt.urls.actor(INSTANCE_ACTOR_USERNAME),
        },
    )


async def profile(request: Request) -> Response:
    rt = runtime(request)
    username = request.path_params["username"]
    async with rt.sessions() as session:
        account = await suspension.local_owner(session, username)
        if account is None or account.username == INSTANCE_ACTOR_USERNAME:
            return not_found(request, f"There is no account @{username} on this instance.")
        status = suspension.page_status(account)  # 403 suspended, 410 deleted
        if status is not None:
            gone = status == 410
            said = "This account has been deleted." if gone else "This account is suspended."
            return not_found(request, said, status)
        viewer = await current_account(request, session)
        entries = await timelines.read(session, "account", author=account, viewer=viewer,
                                       now=rt.now())  # fmt: skip
        views = await cards(session, rt, entries, viewer)
        counts = {
            "posts": (await collections.outbox(session, account, rt.urls, None))[0],
            "followers": (await collections.followers(session, account, None))[0],
            "following": (await collections.following(session, account, None))[0],
        }
    preview = profile_tags(rt, account, views)
    response = page(request, "profile.html", {"account": account, "counts": counts,
                                              "posts": views, "preview": preview})  # fmt: skip
    response.headers["Link"] = f'<{account.uri}>; rel="alternate"; type="application/activity+json"'
    return response


async def permalink(request: Request) -> Response:
    """The HTML page of a post, with its recipe and remix lineage."""
    found = await find_post(request)
    if isinstance(found, Response):
        return found
    account, post = found
    if wants_activity_json(request):
        return ActivityJSONResponse(note_of(request, account, post))
    rt = runtime(request)
    async with rt.sessions() as session:
        viewer = await current_account(request, session)
        lineage = await lineage_of(session, post, rt.urls, viewer)
        (view,) = await cards(session, rt, [Entry(post.published, post, account, None)], viewer)
    mine = viewer is not None and viewer.id == account.id
    preview = post_tags(rt, post, account, view)
    response = page(request, "post.html", {"account": account, "p": view, "post": post,
                                           "recipe": post.recipe, "lineage": lineage,
                                           "mine": mine, "preview": preview})  # fmt: skip
    response.headers["Link"] = f'<{post.uri}>; rel="alternate"; type="application/activity+json"'
    return response


routes = [
    Route("/", home),
    Route("/about", about),
    Route("/@{username}", profile),
    Route("/@{username}/{public_id}", permalink),
    Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
]
