"""Who is logged in to the web pages: sessions in a signed cookie, nothing stored on the server.

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
- Anonymous visitors get a session too (account null) so the login form has a CSRF token
  (instance/web/forms.py checks it).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from instance.moderation import suspension
from instance.runtime import Runtime
from instance.storage.models import Account

COOKIE = "dreamloom_session"
SESSION_DAYS = 30
KEY_FILE = "web-session.key"


# -- the secret --------------------------------------------------------------------------------
class SessionSecret:
    """The runtime's session secret (`rt.service(SessionSecret)`), read or made on first use."""

    def __init__(self, rt: Runtime) -> None:
        self.key = load_or_create_secret(rt.settings.data_path)


def _secret(rt: Runtime) -> bytes:
    return rt.service(SessionSecret).key


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
    account: Account | None = await session.get(Account, s.account_id)
    rt: Runtime = request.app.state.runtime
    if (
        account is None
        or not account.local
        or not suspension.may_log_in(account)  # suspended or deleted
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
