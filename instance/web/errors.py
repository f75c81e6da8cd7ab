"""One error page for browsers: a 404 or 410 answered to a person is the site's own page.

The rule: a GET or HEAD whose Accept asks for HTML (and not for activity JSON) that ends in
404 or 410 gets `not_found.html` in the site's style, with the same status; the message is
the route's own (`{"error": "no such post"}` -> "No such post."), else a generic one. Routes
answer activity requests with JSON as before, and a page that already answered in HTML is
left as it is. `ErrorPages` applies the rule to every route, unknown URLs included, and
`not_found()` is the page itself, for the HTML routes that know better what is missing.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from instance.routes.common import wants_activity_json
from instance.web.templating import page

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PAGE_STATUSES = (404, 410)
TITLES = {403: "Unavailable", 404: "Not found", 410: "Gone"}
GENERIC = {
    404: "There is nothing at this address.",
    410: "What was here has been deleted.",
}


def not_found(request: Request, message: str = "", status: int = 404) -> Response:
    """The site's 404/410 page, saying `message` (or what the status means)."""
    return page(
        request,
        "not_found.html",
        {"title": TITLES.get(status, "Not found"), "message": message or GENERIC[status]},
        status=status,
    )


def wants_page(request: Request) -> bool:
    """A browser asking for a page: GET/HEAD, Accept naming text/html, no activity JSON."""
    accept = request.headers.get("accept", "").lower()
    return (
        request.method in ("GET", "HEAD")
        and "text/html" in accept
        and not wants_activity_json(request)
    )


def _message(body: bytes) -> str:
    try:
        said = json.loads(body).get("error")
    except (ValueError, AttributeError):
        return ""
    if not isinstance(said, str) or not said.strip():
        return ""
    text = said.strip()
    return text[0].upper() + text[1:] + ("" if text.endswith(".") else ".")


class ErrorPages:
    """ASGI middleware: a non-HTML 404/410 answered to a browser becomes `not_found()`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not wants_page(Request(scope)):
            await self.app(scope, receive, send)
            return
        held: Message | None = None
        body = bytearray()

        async def sending(message: Message) -> None:
            nonlocal held
            if message["type"] == "http.response.start":
                headers = dict(message.get("headers") or [])
                media = headers.get(b"content-type", b"").decode("latin-1")
                if message["status"] in PAGE_STATUSES and not media.startswith("text/html"):
                    held = message  # replaced once its body is known
                    return
            elif message["type"] == "http.response.body" and held is not None:
                body.extend(message.get("body", b""))
                if not message.get("more_body"):
                    status = int(held["status"])
                    await not_found(Request(scope), _message(bytes(body)), status)(
                        scope, receive, send
                    )
                return
            await send(message)

        await self.app(scope, receive, sending)
