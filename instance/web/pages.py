"""HTML pages: home, profiles, about. Every page that has an ActivityPub twin links to it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from instance import __version__
from instance.accounts import find_local, list_local
from instance.content import collections, timelines
from instance.routes.common import runtime
from instance.urls import INSTANCE_ACTOR_USERNAME
from instance.web.auth import current_account, template_context
from instance.web.cards import cards

HERE = Path(__file__).resolve().parent
HOME_POSTS = 20
templates = Jinja2Templates(  # autoescapes .html; every page sees the web session and CSRF token
    directory=str(HERE / "templates"), context_processors=[template_context]
)


def page(request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
    rt = runtime(request)
    base = {
        "instance_name": rt.settings.instance.name,
        "description": rt.settings.instance.description,
        "host": rt.settings.host,
        "tiny_model": rt.settings.generator.model == "builtin:tiny",
    }
    response = templates.TemplateResponse(request, name, {**base, **context}, status_code=status)
    response.headers["Vary"] = "Accept"
    return response


async def home(request: Request) -> Response:
    """The instance's accounts and its latest public posts (the local timeline), with images."""
    rt = runtime(request)
    async with rt.sessions() as session:
        accounts = [a for a in await list_local(session) if a.username != INSTANCE_ACTOR_USERNAME]
        entries = await timelines.read(session, "local", limit=HOME_POSTS)
        viewer = await current_account(request, session)
        views = await cards(session, rt, entries, viewer)
    return page(request, "home.html", {"accounts": accounts, "posts": views})


async def about(request: Request) -> Response:
    rt = runtime(request)
    return page(
        request,
        "about.html",
        {
            "model": rt.settings.generator.model,
            "version": __version__,
            "actor_uri": rt.urls.actor(INSTANCE_ACTOR_USERNAME),
        },
    )


async def profile(request: Request) -> Response:
    rt = runtime(request)
    username = request.path_params["username"]
    async with rt.sessions() as session:
        account = await find_local(session, username)
        if account is None or account.username == INSTANCE_ACTOR_USERNAME:
            return page(request, "home.html", {"accounts": []}, status=404)
        viewer = await current_account(request, session)
        entries = await timelines.read(session, "account", author=account, viewer=viewer)
        views = await cards(session, rt, entries, viewer)
        counts = {
            "posts": (await collections.outbox(session, account, rt.urls, None))[0],
            "followers": (await collections.followers(session, account, None))[0],
            "following": (await collections.following(session, account, None))[0],
        }
    response = page(
        request,
        "profile.html",
        {
            "account": account,
            "counts": counts,
            "posts": views,
        },
    )
    response.headers["Link"] = f'<{account.uri}>; rel="alternate"; type="application/activity+json"'
    return response


routes = [
    Route("/", home),
    Route("/about", about),
    Route("/@{username}", profile),
    Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
]
