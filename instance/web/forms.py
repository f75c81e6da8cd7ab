"""The checks every state-changing form of the web pages passes, in one decorator.

`@form_post()` wraps every state-changing handler, in this order:

    Origin (or Referer) present and not ours -> 403 (a cross-site form)
    body over MAX_FORM_BYTES -> 413; only application/x-www-form-urlencoded is read
    form field `csrf` != the session's token (constant-time) -> 403
    login required and no valid session -> 303 to /login

and marks the handler `csrf_checked = True`; tests/instance/web/test_web_csrf.py walks the
route table and proves every POST/PUT/PATCH/DELETE route outside the ActivityPub inboxes is
marked and answers 403 without a token. GET never changes anything.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qsl, urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from instance.errors import Refused
from instance.runtime import Runtime
from instance.web.sessions import session_of

MAX_FORM_BYTES = 2 * 1024 * 1024  # a 1 MB password must reach the 400, not stop at 413
MAX_FORM_FIELDS = 50


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def check_origin(request: Request, base_url: str) -> None:
    """A state-changing request must come from our own pages."""
    sent = request.headers.get("origin")
    if sent is None and request.headers.get("referer"):
        sent = origin_of(request.headers["referer"])
    if sent is not None and sent.lower() != origin_of(base_url):
        raise Refused(403, "this form was sent from another site")


async def read_form(request: Request) -> dict[str, str]:
    """The url-encoded form, size-capped; other bodies read as an empty form."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_FORM_BYTES:
        raise Refused(413, "that form is too large")
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        return {}
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise Refused(413, "that form is too large")
    try:
        pairs = parse_qsl(body.decode(), keep_blank_values=True,
                          max_num_fields=MAX_FORM_FIELDS)  # fmt: skip
    except (UnicodeDecodeError, ValueError):
        raise Refused(400, "that form could not be read") from None
    return dict(pairs)


Handler = Callable[[Request, dict[str, str]], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]


def form_post(*, login: bool = True) -> Callable[[Handler], Endpoint]:
    """Wrap a form handler: Origin, size, CSRF token, and (by default) a logged-in user.

    The handler is called as `handler(request, form)`; refusals are plain-text pages."""

    def wrap(handler: Handler) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            rt: Runtime = request.app.state.runtime
            try:
                check_origin(request, rt.settings.base_url)
                form = await read_form(request)
                s = session_of(request)
                token = form.get("csrf", "")
                if s is None or not token or not hmac.compare_digest(token, s.csrf):
                    raise Refused(403, "this form has expired or was not sent from this site: "
                                       "reload the page and try again")  # fmt: skip
            except Refused as exc:
                return Response(exc.reason + "\n", exc.status, media_type="text/plain")
            if login and not s.logged_in:
                return RedirectResponse("/login", status_code=303)
            return await handler(request, form)

        endpoint.__name__ = handler.__name__
        endpoint.__doc__ = handler.__doc__
        endpoint.csrf_checked = True  # type: ignore[attr-defined]
        return endpoint

    return wrap


def safe_next(target: str | None, default: str = "/home") -> str:
    """Where to go after login: a path on this site only (no //host, no scheme)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target
