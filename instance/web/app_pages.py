"""The local users' pages: timelines, compose, a job's progress, follow, notifications.

Every form posts through `web_auth.form_post` (Origin + CSRF + login); GET never changes
anything. Refusals are shown on the page that was sent, with the status the refusal carries
(400 bad input, 503 + Retry-After full queue, ...). `routes` also carries the login and
post-action routes (instance/routes/login.py, instance/routes/post_actions.py).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from instance.content import timelines
from instance.content.actions import ActionError, follow, unfollow
from instance.content.notifications import list_for
from instance.content.posting import VISIBILITIES
from instance.generation.requests import GenerationRefused, enqueue
from instance.inbound import resolve
from instance.routes.common import runtime
from instance.storage.models import Account, Follow, GenerationJob, Post
from instance.web import auth as web_auth
from instance.web import login, post_actions
from instance.web.cards import cards
from instance.web.common import refused, to_login
from instance.web.pages import page

VISIBILITY_CHOICES = [v for v in VISIBILITIES if v != "direct"]  # direct needs a mention
TITLES = {"home": "Home", "local": "Local", "federated": "Federated"}
REFRESH_S = 2


# -- timelines ---------------------------------------------------------------------------------
def _before(request: Request) -> datetime | None:
    try:
        at = datetime.fromisoformat(request.query_params.get("before", ""))
    except ValueError:
        return None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


async def timeline(request: Request) -> Response:
    kind = request.url.path.strip("/")
    rt = runtime(request)
    async with rt.sessions() as session:
        me = await web_auth.current_account(request, session)
        if kind == "home" and me is None:
            return to_login(request)
        entries = await timelines.read(session, kind, viewer=me, before=_before(request))
        posts = await cards(session, rt, entries, me)
    older = None
    if len(entries) == timelines.PAGE:
        older = f"/{kind}?" + urlencode({"before": entries[-1].at.isoformat()})
    return page(request, "timeline.html",
                {"kind": kind, "title": TITLES[kind], "posts": posts, "older": older})  # fmt: skip


# -- compose and the job page ------------------------------------------------------------------
async def compose_form(request: Request) -> Response:
    async with runtime(request).sessions() as session:
        if await web_auth.current_account(request, session) is None:
            return to_login(request)
    return page(request, "compose.html", {"visibilities": VISIBILITY_CHOICES,
                                          "visibility": "public"})  # fmt: skip


@web_auth.form_post()
async def compose(request: Request, form: dict[str, str]) -> Response:
    """Queue a generation whose image becomes a post; then watch it on /jobs/<id>."""
    rt = runtime(request)
    prompt, negative = form.get("prompt", "").strip(), form.get("negative", "").strip()
    visibility = form.get("visibility", "public")
    context = {"visibilities": VISIBILITY_CHOICES, "prompt": prompt, "negative": negative,
               "visibility": visibility}  # fmt: skip
    if visibility not in VISIBILITY_CHOICES:
        return refused(request, "Pick a visibility.", 400, "compose.html", context)
    if not prompt:
        return refused(request, "Type a prompt.", 400, "compose.html", context)
    try:
        async with rt.session() as session:
            me = await web_auth.current_account(request, session)
            if me is None:
                return to_login(request)
            job = await enqueue(session, rt, me, prompt, negative=negative or None,
                                then={"post": {"visibility": visibility}},
                                requested_by=me.uri)  # fmt: skip
    except GenerationRefused as exc:
        return refused(request, exc, exc.http_status, "compose.html", context)
    return RedirectResponse(f"/jobs/{job.public_id}", status_code=303)


async def job_page(request: Request) -> Response:
    """A job's status; refreshes itself every few seconds until the job is final."""
    rt = runtime(request)
    async with rt.sessions() as session:
        me = await web_auth.current_account(request, session)
        if me is None:
            return to_login(request)
        job = await session.scalar(
            select(GenerationJob).where(GenerationJob.public_id == request.path_params["public_id"],
                                        GenerationJob.account_id == me.id)
        )  # fmt: skip
        if job is None:
            return refused(request, "No such job.", 404)
        post = await session.get(Post, job.post_id) if job.post_id else None
        p = None
        if post is not None and post.deleted_at is None:
            author = await session.get_one(Account, post.account_id)
            entry = timelines.Entry(post.published, post, author, None)
            p = (await cards(session, rt, [entry], me))[0]
    image = (job.result or {}).get("file_name")
    return page(request, "job.html", {
        "job": job, "p": p, "refresh": REFRESH_S if job.status in ("queued", "running") else 0,
        "image": rt.urls.media(image) if image and p is None else None,
        "prompt": (job.recipe or {}).get("prompt", ""),
    })  # fmt: skip


# -- follow ------------------------------------------------------------------------------------
async def _following(session: Any, me: Account) -> list[dict[str, Any]]:
    rows = await session.execute(
        select(Account, Follow.accepted).join(Follow, Follow.followee_id == Account.id)
        .where(Follow.follower_id == me.id).order_by(Follow.id.desc()).limit(200)
    )  # fmt: skip
    return [{"handle": timelines.handle(a) if a.domain else f"@{a.username}",
             "url": a.url or a.uri, "id": a.id, "accepted": ok} for a, ok in rows]  # fmt: skip


async def follow_page(
    request: Request, error: str = "", status: int = 200, handle: str = ""
) -> Response:
    async with runtime(request).sessions() as session:
        me = await web_auth.current_account(request, session)
        if me is None:
            return to_login(request)
        following = await _following(session, me)
    context = {"following": following, "error": error, "ok": request.query_params.get("ok", ""),
               "handle": handle}  # fmt: skip
    return page(request, "follow.html", context, status=status)


@web_auth.form_post()
async def follow_post(request: Request, form: dict[str, str]) -> Response:
    """Follow `@user@host` (found through WebFinger), a local name, or an actor URL."""
    rt = runtime(request)
    who = form.get("handle", "").strip()
    if not who:
        return await follow_page(request, "Type a handle like @someone@example.social.", 400)
    try:
        target = await resolve.account(rt, who)
    except (resolve.NotFound, ValueError) as exc:
        return await follow_page(request, f"Cannot follow {who}: {exc}", 400, who)
    try:
        async with rt.session() as session:
            me = await web_auth.current_account(request, session)
            if me is None:
                return to_login(request)
            target = await session.get_one(Account, target.id)
            row = await follow(session, rt.urls, me, target)
            done = "Following" if row.accepted else "Follow request sent to"
    except ActionError as exc:
        return await follow_page(request, str(exc), 400, who)
    name = timelines.handle(target) if target.domain else f"@{target.username}"
    return RedirectResponse("/follow?" + urlencode({"ok": f"{done} {name}"}), status_code=303)


@web_auth.form_post()
async def unfollow_post(request: Request, form: dict[str, str]) -> Response:
    rt = runtime(request)
    async with rt.session() as session:
        me = await web_auth.current_account(request, session)
        if me is None:
            return to_login(request)
        raw = form.get("account_id", "")
        target = await session.get(Account, int(raw)) if raw.isdigit() else None
        if target is None:
            return await follow_page(request, "No such account.", 400)
        await unfollow(session, rt.urls, me, target)
    return RedirectResponse("/follow", status_code=303)


# -- notifications -----------------------------------------------------------------------------
async def notifications(request: Request) -> Response:
    async with runtime(request).sessions() as session:
        me = await web_auth.current_account(request, session)
        if me is None:
            return to_login(request)
        items = await list_for(session, me)
    return page(request, "notifications.html", {"items": items})


routes = [
    *login.routes,
    Route("/home", timeline),
    Route("/local", timeline),
    Route("/federated", timeline),
    Route("/compose", compose_form, methods=["GET"]),
    Route("/compose", compose, methods=["POST"]),
    Route("/jobs/{public_id}", job_page),
    Route("/follow", follow_page, methods=["GET"]),
    Route("/follow", follow_post, methods=["POST"]),
    Route("/unfollow", unfollow_post, methods=["POST"]),
    Route("/notifications", notifications),
    *post_actions.routes,
]
