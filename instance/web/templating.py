"""The Jinja2 templates (autoescaped) and `page()`, which every HTML page answers through.

Every link or image taken from data goes through the `link` filter (`safe_link`: http(s)
URLs only), and every page carries a Content-Security-Policy that allows no script at all,
styles and images from this instance only (remote images come through our cache, so a
visitor's browser never asks another server), forms posting only here, and no framing: even
markup that got past the sanitiser could neither run nor be clicked in a frame.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from activitypub.urls import safe_link
from generator.locating import BUILTIN_TINY, effective_model
from instance.routes.common import runtime
from instance.web.sessions import template_context

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(  # autoescapes .html; every page sees the web session and CSRF token
    directory=str(HERE / "templates"), context_processors=[template_context]
)
templates.env.filters["link"] = lambda value: safe_link(value, "#")
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; img-src 'self'; style-src 'self'; "
        "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def page(request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
    rt = runtime(request)
    model = rt.settings.generator.model
    tiny = effective_model(model, rt.settings.cache_path) == BUILTIN_TINY
    base = {
        "instance_name": rt.settings.instance.name,
        "description": rt.settings.instance.description,
        "host": rt.settings.host,
        "tiny_model": tiny,
        "model_not_fetched": tiny and model != BUILTIN_TINY,  # "auto" before its fetch
    }
    response = templates.TemplateResponse(request, name, {**base, **context}, status_code=status)
    response.headers["Vary"] = "Accept"
    response.headers.update(SECURITY_HEADERS)
    return response
