"""The site's icon: one SVG (static/favicon.svg), linked from every page and also answered at
/favicon.ico, where browsers and link previews look without asking the page."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from instance.web.templating import HERE

FAVICON = HERE / "static" / "favicon.svg"


async def favicon(request: Request) -> Response:
    return Response(
        FAVICON.read_bytes(),
        media_type="image/svg+xml",
        headers={"Cache-Control": "public, max-age=86400"},
    )


routes = [Route("/favicon.ico", favicon)]
