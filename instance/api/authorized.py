"""The apps a local user has authorised, and taking that back, on a web page:

    GET  /oauth/authorized_applications              each app with live tokens: its scopes,
                                                     when it was authorised and last used
    POST /oauth/authorized_applications/{id}/revoke  every token of that app for this user
                                                     stops working (and its unused codes go)

As Mastodon's page of the same path: an app that was lost, or a phone that was, is cut off
here without the app's cooperation. The page is the logged-in user's (cookie session);
revoking is a form with the CSRF check every form passes (instance/web/forms.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from instance.api import scopes as scope_rules
from instance.routes.common import runtime
from instance.storage.models import Account, OAuthApp, OAuthCode, OAuthToken
from instance.web.common import to_login
from instance.web.forms import form_post
from instance.web.sessions import current_account
from instance.web.templating import page


@dataclass(frozen=True)
class Authorised:
    app_id: int
    name: str
    website: str | None
    scopes: list[str]
    since: datetime
    last_used: datetime | None


async def authorised_apps(
    session: AsyncSession, account: Account, now: datetime
) -> list[Authorised]:
    """The apps holding live tokens of `account`, most recently authorised first (a user
    holds a handful of tokens: they are gathered here, not in SQL)."""
    rows = await session.execute(
        select(OAuthApp, OAuthToken)
        .join(OAuthToken, OAuthToken.app_id == OAuthApp.id)
        .where(
            OAuthToken.account_id == account.id,
            OAuthToken.revoked_at.is_(None),
            OAuthToken.expires_at.is_(None) | (OAuthToken.expires_at > now),
        )
        .order_by(OAuthToken.created_at)
    )
    found: dict[int, Authorised] = {}
    for app, token in rows:
        seen = found.get(app.id)
        scopes = scope_rules.parse(" ".join([*(seen.scopes if seen else []), token.scope]))
        used = max((t for t in (seen.last_used if seen else None, token.last_used_at) if t),
                   default=None)  # fmt: skip
        since = seen.since if seen else token.created_at
        found[app.id] = Authorised(app.id, app.name, app.website, scopes, since, used)
    return sorted(found.values(), key=lambda a: a.since, reverse=True)


async def revoke_app(session: AsyncSession, account: Account, app_id: int, now: datetime) -> int:
    """Every token `app_id` holds for `account` revoked, its unused codes deleted; how many
    tokens were live."""
    done = await session.execute(
        update(OAuthToken)
        .where(
            OAuthToken.account_id == account.id,
            OAuthToken.app_id == app_id,
            OAuthToken.revoked_at.is_(None),
        )
        .values(revoked_at=now)
    )
    await session.execute(
        delete(OAuthCode).where(OAuthCode.account_id == account.id, OAuthCode.app_id == app_id)
    )
    return int(done.rowcount)  # type: ignore[attr-defined]


async def authorized_page(request: Request) -> Response:
    rt = runtime(request)
    async with rt.session() as session:
        me = await current_account(request, session)
        if me is None:
            return to_login(request)
        apps = await authorised_apps(session, me, rt.now())
    return page(request, "authorized_apps.html", {"apps": apps})


@form_post()
async def revoke(request: Request, form: dict[str, str]) -> Response:
    rt = runtime(request)
    raw = request.path_params["id"]
    async with rt.session() as session:
        me = await current_account(request, session)
        if me is None:
            return RedirectResponse("/login", status_code=303)
        if raw.isascii() and raw.isdigit() and len(raw) < 19:
            await revoke_app(session, me, int(raw), rt.now())
    return RedirectResponse("/oauth/authorized_applications", status_code=303)


routes: list[BaseRoute] = [
    Route("/oauth/authorized_applications", authorized_page, methods=["GET"]),
    Route("/oauth/authorized_applications/{id}/revoke", revoke, methods=["POST"]),
]
