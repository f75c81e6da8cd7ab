"""What the local users' page handlers share: the login redirect and refusal pages."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from instance.web.templating import page


def to_login(request: Request) -> Response:
    """303 to /login, coming back to this page afterwards (a page, not a form's target)."""
    if request.method != "GET":
        return RedirectResponse("/login", status_code=303)
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target)}", status_code=303)


def refused(
    request: Request,
    exc: Exception | str,
    status: int,
    template: str = "error.html",
    context: dict[str, Any] | None = None,
) -> Response:
    """`template` with the refusal's message in `error`, its status, and Retry-After when the
    refusal carries one (a full generation queue)."""
    response = page(request, template, {**(context or {}), "error": str(exc)}, status=status)
    retry = getattr(exc, "retry_after_s", None)
    if retry:
        response.headers["Retry-After"] = str(retry)
    return response
