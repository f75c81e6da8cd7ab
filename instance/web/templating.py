"""The Jinja2 templates (autoescaped) and `page()`, which every HTML page answers through."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from generator.locating import BUILTIN_TINY
from instance.routes.common import runtime
from instance.web.sessions import template_context

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(  # autoescapes .html; every page sees the web session and CSRF token
    directory=str(HERE / "templates"), context_processors=[template_context]
)


def page(request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
    rt = runtime(request)
    base = {
        "instance_name": rt.settings.instance.name,
        "description": rt.settings.instance.description,
        "host": rt.settings.host,
        "tiny_model": rt.settings.generator.model == BUILTIN_TINY,
    }
    response = templates.TemplateResponse(request, name, {**base, **context}, status_code=status)
    response.headers["Vary"] = "Accept"
    return response
