"""The notifications page: likes, boosts, mentions, replies, remixes and follows."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from instance.content.notifications import list_for
from instance.routes.common import runtime
from instance.web.common import to_login
from instance.web.sessions import current_account
from instance.web.templating import page


async def notifications(request: Request) -> Response:
    rt = runtime(request)
    async with rt.sessions() as session:
        me = await current_account(request, session)
        if me is None:
            return to_login(request)
        items = await list_for(session, me, rt.urls)
    return page(request, "notifications.html", {"items": items})


routes = [Route("/notifications", notifications)]
