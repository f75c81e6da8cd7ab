"""Apps and tokens: registering a client, issuing and revoking its tokens.

The secrets themselves (client secret, access and refresh tokens, authorization codes) are
shown once and kept only as digests (instance/api/auth.py `digest`). The OAuth endpoints
(instance/api/oauth.py) call these; so do tests that need a token without a browser.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncSession

from instance.api import scopes as scope_rules
from instance.api.auth import ApiError, digest
from instance.storage.models import OAuthApp, OAuthCode, OAuthToken

OOB = "urn:ietf:wg:oauth:2.0:oob"  # the out-of-band redirect: the code is shown on the page
MAX_REDIRECT_URIS = 10


def new_secret() -> str:
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class RegisteredApp:
    app: OAuthApp
    client_secret: str  # shown once


def check_redirect_uris(raw: str | list[str] | None) -> list[str]:
    uris = raw.split() if isinstance(raw, str) else list(raw or [])
    if not uris:
        raise ApiError(422, "Validation failed: Redirect URI can't be blank")
    if len(uris) > MAX_REDIRECT_URIS:
        raise ApiError(422, f"Validation failed: at most {MAX_REDIRECT_URIS} redirect URIs")
    for uri in uris:
        if uri == OOB:
            continue
        scheme, sep, rest = uri.partition(":")
        if not sep or not scheme or not rest or "#" in uri or len(uri) > 2000 or \
                any(c.isspace() or not c.isprintable() for c in uri):  # fmt: skip
            raise ApiError(422, f"Validation failed: Redirect URI must be an absolute URI: {uri!r}")
        if scheme.lower() in ("javascript", "data", "vbscript", "file"):
            raise ApiError(422, f"Validation failed: Redirect URI scheme {scheme!r} is not allowed")
    return uris


def check_scopes(raw: str | None) -> list[str]:
    found = scope_rules.parse(raw) or [scope_rules.DEFAULT]
    bad = scope_rules.unknown(found)
    if bad:
        raise ApiError(422, f"Validation failed: unknown scope {' '.join(bad)!r}")
    return found


async def register_app(
    session: AsyncSession, name: str, redirect_uris: str | list[str] | None,
    scopes: str | None, website: str | None,
) -> RegisteredApp:  # fmt: skip
    name = (name or "").strip()
    if not name or len(name) > 255:
        raise ApiError(422, "Validation failed: Application name must be 1 to 255 characters")
    if website and (len(website) > 2000 or not website.startswith(("http://", "https://"))):
        raise ApiError(422, "Validation failed: Website must be an http(s) URL")
    secret = new_secret()
    app = OAuthApp(
        client_id=secrets.token_urlsafe(32),
        secret_digest=digest(secret),
        name=name,
        website=website or None,
        redirect_uris=check_redirect_uris(redirect_uris),
        scopes=scope_rules.text(check_scopes(scopes)),
    )
    session.add(app)
    await session.flush()
    return RegisteredApp(app, secret)


@dataclass(frozen=True)
class IssuedToken:
    row: OAuthToken
    access_token: str
    refresh_token: str | None


async def issue_token(
    session: AsyncSession, app_id: int, account_id: int | None, scope: str,
    *, refresh: bool = True, expires_at: datetime | None = None,
) -> IssuedToken:  # fmt: skip
    access = new_secret()
    refresh_token = new_secret() if refresh else None
    row = OAuthToken(
        access_digest=digest(access),
        refresh_digest=digest(refresh_token) if refresh_token else None,
        app_id=app_id,
        account_id=account_id,
        scope=scope,
        expires_at=expires_at,
    )
    session.add(row)
    await session.flush()
    return IssuedToken(row, access, refresh_token)


async def revoke_account_tokens(session: AsyncSession, account_id: int, now: datetime) -> None:
    """Every token of an account stops working (a new password, a suspension), and so do
    the codes not yet exchanged for one."""
    await session.execute(
        update(OAuthToken)
        .where(OAuthToken.account_id == account_id, OAuthToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    await session.execute(delete(OAuthCode).where(OAuthCode.account_id == account_id))
