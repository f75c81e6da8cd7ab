"""Who calls the API, what their token allows, and the shape of every answer.

Every endpoint of the Mastodon client API is a function `handler(request, caller)` under
`@endpoint(scope)`:

- `Authorization: Bearer <token>`: the token is looked up by its SHA-256 digest
  (instance/storage/models.py `OAuthToken`); an unknown, revoked or expired token, or one
  whose account may no longer log in, answers 401 with `WWW-Authenticate: Bearer`, as
  Mastodon does, even on endpoints that anyone may read.
- `scope`: the granular scope the endpoint needs (instance/api/scopes.py); a token without it
  answers 403. `user=True` (the default for a scope) also refuses app-only tokens (the
  client-credentials grant) with 422, as Mastodon does.
- The handler returns a Response, or anything JSON can hold (sent as 200 JSON).
- Errors are Mastodon's shape: `{"error": "..."}` with its status code. `ApiError` carries
  its own; a `UserError` from the content wings becomes 422 (404 for `NotFound`). A NUL
  character in the path or query is refused with 400 before the handler runs (and in a
  body by the body reader, instance/api/params.py, with `refuse_nul`).
- Rate limits: 300 requests per 5 minutes per account (per client address for an app-only
  token or none: anyone may mint app tokens), in memory per process; every answer carries
  `X-RateLimit-Limit`, `-Remaining` and `-Reset`, and past the limit it is 429.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response

from instance.api import scopes as scope_rules
from instance.errors import NotFound, UserError
from instance.moderation import suspension
from instance.routes.common import client_ip, dumps, runtime
from instance.runtime import Runtime
from instance.storage.models import Account, OAuthToken

RATE_LIMIT, RATE_WINDOW = 300, timedelta(minutes=5)
TOUCH_EVERY = timedelta(hours=1)  # how stale `last_used_at` may get before it is written


class ApiError(Exception):
    """An answer in Mastodon's error shape."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def digest(secret: str) -> str:
    """How a token, refresh token, code or client secret is kept: SHA-256 hex. They are 256
    random bits each, so a slow password hash would add nothing but cost per request."""
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class Caller:
    """The token behind a request (None fields: no token was sent)."""

    token_id: int | None = None
    app_id: int | None = None
    account: Account | None = None
    scopes: tuple[str, ...] = ()

    @property
    def account_id(self) -> int | None:
        return self.account.id if self.account else None

    def user(self) -> Account:
        """The calling user; 422 for an app-only token, 401 without a token."""
        if self.account is not None:
            return self.account
        if self.token_id is not None:
            raise ApiError(422, "This method requires an authenticated user")
        raise ApiError(401, "The access token is invalid", _CHALLENGE)


ANONYMOUS = Caller()
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="Dreamloom", error="invalid_token"'}


def bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    kind, _, value = header.partition(" ")
    if kind.lower() == "bearer" and value.strip():
        return value.strip()
    return None


async def caller_of(rt: Runtime, token: str | None) -> Caller:
    """The caller a bearer token stands for; ApiError(401) for a token that does not work."""
    if token is None:
        return ANONYMOUS
    now = rt.now()
    async with rt.session() as session:
        row = (
            await session.execute(
                select(OAuthToken).where(OAuthToken.access_digest == digest(token))
            )
        ).scalar_one_or_none()
        if row is None or row.revoked_at is not None or _expired(row, now):
            raise ApiError(401, "The access token is invalid", _CHALLENGE)
        account = None
        if row.account_id is not None:
            account = await session.get(Account, row.account_id)
            if account is None or not account.local or not suspension.may_log_in(account):
                raise ApiError(401, "The access token is invalid", _CHALLENGE)
        if row.last_used_at is None or now - row.last_used_at > TOUCH_EVERY:
            row.last_used_at = now
        return Caller(row.id, row.app_id, account, tuple(scope_rules.parse(row.scope)))


def _expired(row: OAuthToken, now: datetime) -> bool:
    return row.expires_at is not None and row.expires_at <= now


def check_scope(caller: Caller, needed: tuple[str, ...], user: bool) -> None:
    """403 unless the caller's token covers one of `needed`; 401 without a token."""
    if caller.token_id is None:
        raise ApiError(401, "The access token is invalid", _CHALLENGE)
    if not any(scope_rules.covers(caller.scopes, s) for s in needed):
        raise ApiError(403, "This action is outside the authorized scopes")
    if user:
        caller.user()


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(dumps(data), status_code=status, headers=headers,
                    media_type="application/json")  # fmt: skip


def error_response(exc: ApiError) -> Response:
    return json_response({"error": exc.message}, exc.status, exc.headers)


Handler = Callable[[Request, Caller], Awaitable[Any]]


def endpoint(
    *scope: str, user: bool | None = None
) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """Make `handler(request, caller)` a Starlette endpoint of the API. `scope`: the
    granular scopes any one of which lets a token in (none: anyone may call it, a bad token
    still answers 401). `user`: a user's token is required (default: when a scope is)."""
    needs_user = bool(scope) if user is None else user

    def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        @functools.wraps(handler)
        async def run(request: Request) -> Response:
            rt = runtime(request)
            limits = rt.service(RateLimits)
            key = f"ip:{client_ip(request)}"
            try:
                caller = await caller_of(rt, bearer(request))
                if caller.account_id is not None:  # not per token: tokens are cheap to mint
                    key = f"account:{caller.account_id}"
                remaining, reset = limits.hit(key, rt.now())
                if remaining < 0:
                    raise ApiError(429, "Too many requests", {"Retry-After": str(reset)})
                refuse_nul([request.scope["path"], *request.query_params.multi_items()])
                if scope:
                    check_scope(caller, scope, needs_user)
                result = await handler(request, caller)
                response = result if isinstance(result, Response) else json_response(result)
            except ApiError as exc:
                response = error_response(exc)
                remaining, reset = limits.peek(key, rt.now())
            except NotFound as exc:
                response = error_response(ApiError(404, str(exc) or "Record not found"))
                remaining, reset = limits.peek(key, rt.now())
            except UserError as exc:
                response = error_response(ApiError(422, str(exc)))
                remaining, reset = limits.peek(key, rt.now())
            response.headers["X-RateLimit-Limit"] = str(RATE_LIMIT)
            response.headers["X-RateLimit-Remaining"] = str(max(0, remaining))
            reset_at = rt.now() + timedelta(seconds=reset)
            response.headers["X-RateLimit-Reset"] = reset_at.isoformat()
            return response

        return cookieless(run)

    return wrap


NUL_REFUSED = "The request contains a NUL character"


def refuse_nul(value: Any) -> None:
    """ApiError(400) when a string in `value` (in dicts and lists too) holds a NUL
    character: no id, name or text has one, and PostgreSQL's text cannot hold or compare
    it. The path and query are checked by `@endpoint`; params.read and oauth.read_pairs check
    the bodies."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ApiError(400, NUL_REFUSED)
    elif isinstance(value, dict):
        for key, item in value.items():
            refuse_nul(key)
            refuse_nul(item)
    elif isinstance(value, list | tuple):
        for item in value:
            refuse_nul(item)


E = TypeVar("E", bound=Callable[..., Any])


def cookieless(fn: E) -> E:
    """Mark an endpoint that never reads the session cookie (a bearer token or client
    credentials, or nothing, authenticate it): a cross-site form cannot act through it, so
    it needs no CSRF token (tests/instance/web/test_web_csrf.py reads the mark)."""
    fn.cookieless = True  # type: ignore[attr-defined]
    return fn


class RateLimits:
    """Requests per token (or address) in fixed windows of RATE_WINDOW; `rt.service`."""

    def __init__(self, rt: Runtime, max_keys: int = 50_000) -> None:
        self.windows: dict[str, tuple[datetime, int]] = {}
        self.max_keys = max_keys

    def _window(self, key: str, now: datetime) -> tuple[datetime, int]:
        start, count = self.windows.get(key, (now, 0))
        if now - start >= RATE_WINDOW:
            start, count = now, 0
        return start, count

    def hit(self, key: str, now: datetime) -> tuple[int, int]:
        """Count one request: (requests left, seconds until the window resets)."""
        start, count = self._window(key, now)
        if key not in self.windows and len(self.windows) >= self.max_keys:
            self.windows.pop(next(iter(self.windows)))  # memory stays bounded
        self.windows[key] = (start, count + 1)
        return RATE_LIMIT - count - 1, self._reset(start, now)

    def peek(self, key: str, now: datetime) -> tuple[int, int]:
        start, count = self._window(key, now)
        return RATE_LIMIT - count, self._reset(start, now)

    @staticmethod
    def _reset(start: datetime, now: datetime) -> int:
        return max(0, int((start + RATE_WINDOW - now).total_seconds()) + 1)
