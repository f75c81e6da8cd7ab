"""Tokens for API tests that are not about OAuth itself: an app and a token written
straight into the database, as the token endpoint would write them."""

from __future__ import annotations

from typing import Any

from instance.api.tokens import issue_token, register_app
from instance.runtime import Runtime

ALL = "read write follow push"


async def api_token(rt: Runtime, account: Any | None, scope: str = ALL) -> str:
    """A working access token of a fresh app for `account` (None: an app-only token)."""
    async with rt.session() as session:
        registered = await register_app(session, "tests", "urn:ietf:wg:oauth:2.0:oob", ALL, None)
        issued = await issue_token(
            session, registered.app.id, account.id if account is not None else None, scope
        )
        return issued.access_token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
