"""Who is logged in to the web pages, and the checks every form post passes (SECURITY 28, 30).

Sessions are a signed cookie, nothing stored on the server:

    dreamloom_session = base64url(JSON payload) "." base64url(HMAC-SHA256(secret, payload))
    payload = {"a": account id | null, "u": username, "c": CSRF token, "t": issued (unix s),
               "k": a fingerprint of the account's password hash}

- The secret is 32 random bytes in `<data dir>/web-session.key` (mode 0600), created the
  first time a cookie is signed or read, never at import. Every process of an instance
  shares it through the data directory (which must be shared anyway, for media). Deleting
  the file logs everybody out.
- `k` ties a session to the password: a new password (or a rehash) ends every session.
  Logging out clears the cookie in that browser; a copied cookie stays valid until it
  expires (SESSION_DAYS) or the password changes.
- Cookie flags: HttpOnly; Secure when `[instance] scheme` is https; SameSite=Lax. Strict
  would drop the cookie on the first page a reader opens from a link elsewhere in the
  fediverse (they would look logged out until they reload); Lax still withholds it from
  cross-site POSTs, and GET never changes anything here, so Lax gives up nothing.
- Anonymous visitors get a session too (account null) so the login form has a CSRF token.

`@form_post()` wraps every state-changing handler of the web pages, in this order:

    Origin (or Referer) present and not ours -> 403
    body over MAX_FORM_BYTES -> 413; only application/x-www-form-urlencoded is read
    form field `csrf` != the session's token (constant-time) -> 403
    login required and no valid session -> 303 to /login

and marks the handler `csrf_checked = True`; tests/instance/test_web_csrf.py walks the route
table and proves every POST/PUT/PATCH/DELETE route outside the ActivityPub inboxes is marked
and answers 403 without a token.

Login throttle (SECURITY 28): 25 failed logins per 5 minutes per client IP and 25 per hour
per account name -> 429 with Retry-After. It lives in memory, per process: a restart or a
second server process starts counting afresh (state this in the docs). The client IP is the
ASGI peer: behind a reverse proxy run uvicorn with `--proxy-headers` and the proxy's address
in `--forwarded-allow-ips`, or every visitor shares the proxy's budget.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import os
import secrets
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from instance.runtime import Runtime
from instance.storage.models import Account

COOKIE = "dreamloom_session"
SESSION_DAYS = 30
KEY_FILE = "web-session.key"
MAX_FORM_BYTES = 2 * 1024 * 1024  # a 1 MB password must reach the 400, not stop at 413
MAX_FORM_FIELDS = 50
IP_LIMIT, IP_WINDOW = 25, timedelta(minutes=5)
ACCOUNT_LIMIT, ACCOUNT_WINDOW = 25, timedelta(hours=1)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


# -- the secret --------------------------------------------------------------------------------
def _secret(rt: Runtime) -> bytes:
    cached = rt.extras.get("web_secret")
    if cached is None:
        cached = rt.extras["web_secret"] = load_or_create_secret(rt.settings.data_path)
    secret: bytes = cached
    return secret


def load_or_create_secret(directory: Path) -> bytes:
    """The instance's session secret; made on first use, race-safe across processes."""
    path = directory / KEY_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        data = path.read_bytes().strip()
        if len(data) < 64:
            raise RuntimeError(f"{path} is damaged: delete it (everyone is logged out)") from None
        return bytes.fromhex(data.decode())
    with os.fdopen(fd, "w") as f:
        secret = secrets.token_bytes(32)
        f.write(secret.hex() + "\n")
    return secret


# -- sessions ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class WebSession:
    account_id: int | None
    username: str
    csrf: str
    issued: int
    key: str = ""  # password fingerprint

    @property
    def logged_in(self) -> bool:
        return self.account_id is not None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(rt: Runtime, data: bytes) -> bytes:
    return hmac.new(_secret(rt), data, hashlib.sha256).digest()


def password_key(rt: Runtime, account: Account) -> str:
    return _b64(_mac(rt, b"pw:" + (account.password_hash or "").encode()))[:16]


def encode(rt: Runtime, s: WebSession) -> str:
    payload = {"a": s.account_id, "u": s.username, "c": s.csrf, "t": s.issued, "k": s.key}
    body = json.dumps(payload, separators=(",", ":")).encode()
    return f"{_b64(body)}.{_b64(_mac(rt, body))}"


def decode(rt: Runtime, value: str, now: datetime) -> WebSession | None:
    """The session in a cookie value, or None when unsigned, tampered with or expired."""
    body_b64, _, mac_b64 = value.partition(".")
    try:
        body, mac = _unb64(body_b64), _unb64(mac_b64)
    except (ValueError, TypeError):
        return None
    if not hmac.compare_digest(mac, _mac(rt, body)):
        return None
    try:
        d = json.loads(body)
        s = WebSession(d["a"], str(d["u"]), str(d["c"]), int(d["t"]), str(d.get("k", "")))
    except (ValueError, KeyError, TypeError):
        return None
    if now.timestamp() - s.issued > SESSION_DAYS * 86400:
        return None
    return s


def new_session(rt: Runtime, account: Account | None = None) -> WebSession:
    return WebSession(
        account_id=account.id if account else None,
        username=account.username if account else "",
        csrf=secrets.token_urlsafe(24),
        issued=int(rt.now().timestamp()),
        key=password_key(rt, account) if account else "",
    )


def session_of(request: Request) -> WebSession | None:
    """The request's valid session (cached on the request), or None."""
    if "web_session" not in request.scope:
        rt: Runtime = request.app.state.runtime
        raw = request.cookies.get(COOKIE)
        request.scope["web_session"] = decode(rt, raw, rt.now()) if raw else None
    found: WebSession | None = request.scope["web_session"]
    return found


def ensure_session(request: Request) -> tuple[WebSession, bool]:
    """The request's session, or a fresh anonymous one (True: the cookie must be set)."""
    found = session_of(request)
    if found is not None:
        return found, False
    fresh = new_session(request.app.state.runtime)
    request.scope["web_session"] = fresh
    return fresh, True


def set_cookie(request: Request, response: Response, s: WebSession) -> None:
    rt: Runtime = request.app.state.runtime
    response.set_cookie(
        COOKIE,
        encode(rt, s),
        max_age=SESSION_DAYS * 86400,
        path="/",
        httponly=True,
        secure=rt.settings.instance.scheme == "https",
        samesite="lax",
    )


def clear_cookie(request: Request, response: Response) -> None:
    rt: Runtime = request.app.state.runtime
    response.delete_cookie(
        COOKIE, path="/", httponly=True, secure=rt.settings.instance.scheme == "https",
        samesite="lax",
    )  # fmt: skip


async def current_account(request: Request, session: Any) -> Account | None:
    """The logged-in local account, loaded in `session`; None when the session is not valid
    for it any more (deleted account, changed password)."""
    s = session_of(request)
    if s is None or s.account_id is None:
        return None
    account = await session.get(Account, s.account_id)
    rt: Runtime = request.app.state.runtime
    if (
        account is None
        or not account.local
        or account.deleted_at is not None
        or not hmac.compare_digest(password_key(rt, account), s.key)
    ):
        return None
    return account


def template_context(request: Request) -> dict[str, Any]:
    """What every page's template sees: the session (for the nav) and the CSRF token."""
    if not hasattr(request.app.state, "runtime"):
        return {}
    s = session_of(request)
    return {"web_session": s, "csrf": s.csrf if s else ""}


# -- CSRF: one check for every form post ----------------------------------------------------------
class Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def check_origin(request: Request, base_url: str) -> None:
    """A state-changing request must come from our own pages (SECURITY 30)."""
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
                return Response(exc.message + "\n", exc.status, media_type="text/plain")
            if login and not s.logged_in:
                return RedirectResponse("/login", status_code=303)
            return await handler(request, form)

        endpoint.__name__ = handler.__name__
        endpoint.__doc__ = handler.__doc__
        endpoint.csrf_checked = True  # type: ignore[attr-defined]
        return endpoint

    return wrap


# -- the login throttle ------------------------------------------------------------------------
@dataclass
class _Window:
    limit: int
    span: timedelta
    hits: dict[str, deque[datetime]] = field(default_factory=dict)
    max_keys: int = 50_000

    def retry_after(self, key: str, now: datetime) -> int:
        q = self.hits.get(key)
        if not q:
            return 0
        while q and now - q[0] >= self.span:
            q.popleft()
        if len(q) < self.limit:
            return 0
        return max(1, math.ceil((q[0] + self.span - now).total_seconds()))

    def add(self, key: str, now: datetime) -> None:
        if key not in self.hits and len(self.hits) >= self.max_keys:
            self.hits.pop(next(iter(self.hits)))  # oldest key out: memory stays bounded
        self.hits.setdefault(key, deque()).append(now)


@dataclass
class LoginThrottle:
    """Failed logins, counted per client IP and per account name, in this process."""

    by_ip: _Window = field(default_factory=lambda: _Window(IP_LIMIT, IP_WINDOW))
    by_account: _Window = field(default_factory=lambda: _Window(ACCOUNT_LIMIT, ACCOUNT_WINDOW))

    def retry_after(self, ip: str, username: str, now: datetime) -> int:
        """Seconds until a login may be tried again; 0 when it may be tried now."""
        return max(self.by_ip.retry_after(ip, now),
                   self.by_account.retry_after(username.casefold(), now))  # fmt: skip

    def failed(self, ip: str, username: str, now: datetime) -> None:
        self.by_ip.add(ip, now)
        self.by_account.add(username.casefold(), now)


def throttle(rt: Runtime) -> LoginThrottle:
    found = rt.extras.get("login_throttle")
    if found is None:
        found = rt.extras["login_throttle"] = LoginThrottle()
    t: LoginThrottle = found
    return t


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def safe_next(target: str | None, default: str = "/home") -> str:
    """Where to go after login: a path on this site only (no //host, no scheme)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target
