"""Log in and out of the web pages (sessions: sessions.py; the throttle: throttle.py).

POST /login, in order: a password over MAX_PASSWORD_BYTES -> 400 before anything else (no
hashing, no database); throttled (the attempt is counted here, before hashing) -> 429 +
Retry-After; wrong name or password -> 401 (the same words and the same argon2 work whether
or not the account exists); right -> rehash when the hash's parameters are old, a fresh
session (new CSRF token) and 303 to `next`.
"""

from __future__ import annotations

import asyncio
from functools import cache

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from instance.accounts import MAX_PASSWORD_BYTES, find_local, hash_password, needs_rehash
from instance.accounts import verify_password as check_password
from instance.moderation import suspension
from instance.routes.common import client_ip, runtime
from instance.storage.models import Account
from instance.urls import INSTANCE_ACTOR_USERNAME
from instance.web.forms import form_post, safe_next
from instance.web.sessions import clear_cookie, ensure_session, new_session, session_of, set_cookie
from instance.web.templating import page
from instance.web.throttle import LoginThrottle


@cache
def _decoy() -> Account:
    """An account-shaped decoy so unknown names cost one argon2 verify, like known ones."""
    return Account(password_hash=hash_password("decoy-password-never-matches"))


def _form(request: Request, error: str = "", status: int = 200, **values: str) -> Response:
    s, fresh = ensure_session(request)
    response = page(request, "login.html", {"error": error, **values}, status=status)
    if fresh:
        set_cookie(request, response, s)
    return response


async def login_form(request: Request) -> Response:
    s = session_of(request)
    if s is not None and s.logged_in:
        return RedirectResponse(safe_next(request.query_params.get("next")), 303)
    return _form(request, next=request.query_params.get("next", ""))


@form_post(login=False)
async def login(request: Request, form: dict[str, str]) -> Response:
    rt = runtime(request)
    username, password = form.get("username", "").strip().lstrip("@"), form.get("password", "")
    again = {"username": username, "next": form.get("next", "")}
    if len(password.encode()) > MAX_PASSWORD_BYTES:
        return _form(request, f"Passwords are at most {MAX_PASSWORD_BYTES} bytes.", 400, **again)
    limiter, ip, now = rt.service(LoginThrottle), client_ip(request), rt.now()
    wait = limiter.begin(ip, username, now)  # counted now, before any hashing
    if wait:
        response = _form(request, f"Too many login attempts: try again in {wait} seconds.",
                         429, **again)  # fmt: skip
        response.headers["Retry-After"] = str(wait)
        return response
    async with rt.session() as session:
        account = await find_local(session, username) if username else None
        if account is not None and account.username == INSTANCE_ACTOR_USERNAME:
            account = None
        if account is not None and not suspension.may_log_in(account):
            account = None  # suspended: refused like a wrong password, after the same work
        ok = await asyncio.to_thread(check_password, account or _decoy(), password)
        ok = ok and account is not None
        if ok and account is not None and needs_rehash(account):
            account.password_hash = await asyncio.to_thread(hash_password, password)
    if not ok or account is None:
        return _form(request, "Wrong account name or password.", 401, **again)
    limiter.succeeded(ip, username)
    response = RedirectResponse(safe_next(form.get("next")), status_code=303)
    set_cookie(request, response, new_session(rt, account))
    return response


@form_post(login=False)
async def logout(request: Request, form: dict[str, str]) -> Response:
    response = RedirectResponse("/", status_code=303)
    clear_cookie(request, response)
    return response


routes = [
    Route("/login", login_form, methods=["GET"]),
    Route("/login", login, methods=["POST"]),
    Route("/logout", logout, methods=["POST"]),
]
