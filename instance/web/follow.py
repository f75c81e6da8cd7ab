"""Follow and unfollow from the web pages: by handle (`@user@host`, found through
WebFinger), local name or actor URL; the page lists whom the account follows."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from instance.content.actions import follow, unfollow
from instance.errors import ActionError, NotFound
from instance.inbound import resolve
from instance.routes.common import runtime
from instance.runtime import Runtime
from instance.storage.models import Account, Follow
from instance.web.common import to_login
from instance.web.forms import form_post
from instance.web.sessions import current_account
from instance.web.templating import page


async def _following(session: AsyncSession, rt: Runtime, me: Account) -> list[dict[str, Any]]:
    rows = await session.execute(
        select(Account, Follow.accepted).join(Follow, Follow.followee_id == Account.id)
        .where(Follow.follower_id == me.id).order_by(Follow.id.desc()).limit(200)
    )  # fmt: skip
    return [{"handle": rt.urls.handle(a), "url": a.url or a.uri, "id": a.id, "accepted": ok}
            for a, ok in rows]  # fmt: skip


async def follow_page(
    request: Request, error: str = "", status: int = 200, handle: str = ""
) -> Response:
    rt = runtime(request)
    async with rt.sessions() as session:
        me = await current_account(request, session)
        if me is None:
            return to_login(request)
        following = await _following(session, rt, me)
    context = {"following": following, "error": error, "ok": request.query_params.get("ok", ""),
               "handle": handle}  # fmt: skip
    return page(request, "follow.html", context, status=status)


@form_post()
async def follow_post(request: Request, form: dict[str, str]) -> Response:
    """Follow `@user@host` (found through WebFinger), a local name, or an actor URL."""
    rt = runtime(request)
    who = form.get("handle", "").strip()
    if not who:
        return await follow_page(request, "Type a handle like @someone@example.social.", 400)
    try:
        target = await resolve.account(rt, who)
    except (NotFound, ValueError) as exc:
        return await follow_page(request, f"Cannot follow {who}: {exc}", 400, who)
    try:
        async with rt.session() as session:
            me = await current_account(request, session)
            if me is None:
                return to_login(request)
            target = await session.get_one(Account, target.id)
            row = await follow(session, rt, me, target)
            done = "Following" if row.accepted else "Follow request sent to"
    except ActionError as exc:
        return await follow_page(request, str(exc), 400, who)
    ok = f"{done} {rt.urls.handle(target)}"
    return RedirectResponse("/follow?" + urlencode({"ok": ok}), status_code=303)


@form_post()
async def unfollow_post(request: Request, form: dict[str, str]) -> Response:
    rt = runtime(request)
    async with rt.session() as session:
        me = await current_account(request, session)
        if me is None:
            return to_login(request)
        raw = form.get("account_id", "")
        target = await session.get(Account, int(raw)) if raw.isdigit() else None
        if target is None:
            return await follow_page(request, "No such account.", 400)
        await unfollow(session, rt, me, target)
    return RedirectResponse("/follow", status_code=303)


routes = [
    Route("/follow", follow_page, methods=["GET"]),
    Route("/follow", follow_post, methods=["POST"]),
    Route("/unfollow", unfollow_post, methods=["POST"]),
]
