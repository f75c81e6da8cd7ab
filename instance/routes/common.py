"""Helpers every route module uses: the runtime, content negotiation, JSON responses."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from instance.runtime import Runtime

ACTIVITY_JSON = "application/activity+json"
LD_JSON_AS = 'application/ld+json; profile="https://www.w3.org/ns/activitystreams"'


def client_ip(request: Request) -> str:
    """The client's address: the TCP peer, or what a trusted proxy says it is (uvicorn reads
    X-Forwarded-For only from `[server] trusted_proxies`)."""
    return request.client.host if request.client else "unknown"


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


def wants_activity_json(request: Request) -> bool:
    """Activity JSON when Accept names activity+json or ld+json (how servers ask for the
    ActivityStreams twin of a page), HTML otherwise."""
    accept = request.headers.get("accept", "").lower()
    return "application/activity+json" in accept or "application/ld+json" in accept


def dumps(doc: Any) -> bytes:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()


class ActivityJSONResponse(Response):
    """`application/activity+json`, the type Mastodon >= 4.2.5 and GoToSocial require."""

    media_type = ACTIVITY_JSON

    def __init__(self, content: Any, status_code: int = 200, vary: bool = True) -> None:
        headers = {"Vary": "Accept"} if vary else None
        super().__init__(dumps(content), status_code=status_code, headers=headers)

    def render(self, content: Any) -> bytes:
        return content if isinstance(content, bytes) else dumps(content)


class JRDResponse(Response):
    media_type = "application/jrd+json"

    def render(self, content: Any) -> bytes:
        return dumps(content)


def error_json(message: str, status: int) -> Response:
    return Response(dumps({"error": message}), status_code=status, media_type="application/json")


MAX_PAGE = 100_000  # past it every collection is empty anyway; bigger numbers overflow SQL


def page_number(request: Request) -> int | None:
    """`?page=N` (1 <= N <= MAX_PAGE) or None for the collection head; unreadable values mean
    page 1, huge ones the last page we serve (an empty one)."""
    raw = request.query_params.get("page")
    if raw is None:
        return None
    if len(raw) > 12:
        return MAX_PAGE if raw.strip().isdigit() else 1
    try:
        return min(MAX_PAGE, max(1, int(raw)))
    except ValueError:
        return 1
