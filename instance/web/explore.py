"""The Explore page: public posts, local and federated, ranked by likes and remixes decayed
by age (the rule is instance/content/explore.py's; the why is docs/explore.md)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from instance.content import explore as ranking
from instance.routes.common import runtime
from instance.web.cards import cards
from instance.web.sessions import current_account
from instance.web.templating import page


async def explore(request: Request) -> Response:
    rt = runtime(request)
    async with rt.sessions() as session:
        me = await current_account(request, session)
        key = f"{id(rt)}:{rt.settings.database_url}"
        ranked = await ranking.ranked_cached(session, now=rt.now(), key=key)
        entries = await ranking.entries(session, ranked)
        posts = await cards(session, rt, entries, me)
    return page(
        request,
        "explore.html",
        {"kind": "explore", "title": "Explore", "posts": posts, "shown": ranking.SHOWN},
    )


routes = [Route("/explore", explore)]
