"""The timeline pages: /home (signed in), /local and /federated (public), newest first."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from instance.content import timelines
from instance.routes.common import runtime
from instance.web.cards import cards
from instance.web.common import to_login
from instance.web.sessions import current_account
from instance.web.templating import page

TITLES = {"home": "Home", "local": "Local", "federated": "Federated"}


def _before(request: Request) -> datetime | None:
    """`?before=` as an aware time (a date without a zone is read as UTC); None when absent
    or unreadable."""
    try:
        at = datetime.fromisoformat(request.query_params.get("before", ""))
    except ValueError:
        return None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


async def timeline(request: Request) -> Response:
    kind = request.url.path.strip("/")
    rt = runtime(request)
    async with rt.sessions() as session:
        me = await current_account(request, session)
        if kind == "home" and me is None:
            return to_login(request)
        entries = await timelines.read(session, kind, viewer=me, before=_before(request),
                                       now=rt.now())  # fmt: skip
        posts = await cards(session, rt, entries, me)
    older = None
    if len(entries) == timelines.PAGE:
        older = f"/{kind}?" + urlencode({"before": entries[-1].at.isoformat()})
    return page(request, "timeline.html",
                {"kind": kind, "title": TITLES[kind], "posts": posts, "older": older})  # fmt: skip


routes = [Route("/home", timeline), Route("/local", timeline), Route("/federated", timeline)]
