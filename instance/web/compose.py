"""Compose a prompt whose image becomes a post, and watch its job until the post is there.

Refusals are shown on the compose page with the status the refusal carries (400 bad input,
503 + Retry-After when the generation queue is full).
"""

from __future__ import annotations

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from instance.content.timelines import Entry
from instance.content.visibility import VISIBILITIES
from instance.errors import GenerationRefused, InvalidGenerationRequest
from instance.generation.requests import enqueue
from instance.routes.common import runtime
from instance.storage.models import Account, GenerationJob, Post
from instance.web.cards import cards
from instance.web.common import refused, to_login
from instance.web.forms import form_post
from instance.web.sessions import current_account
from instance.web.templating import page

VISIBILITY_CHOICES = [v for v in VISIBILITIES if v != "direct"]  # direct needs a mention
REFRESH_S = 2


async def compose_form(request: Request) -> Response:
    async with runtime(request).sessions() as session:
        if await current_account(request, session) is None:
            return to_login(request)
    return page(request, "compose.html", {"visibilities": VISIBILITY_CHOICES,
                                          "visibility": "public", "language": "en"})  # fmt: skip


@form_post()
async def compose(request: Request, form: dict[str, str]) -> Response:
    """Queue a generation whose image becomes a post; then watch it on /jobs/<id>."""
    rt = runtime(request)
    prompt, negative = form.get("prompt", "").strip(), form.get("negative", "").strip()
    visibility = form.get("visibility", "public")
    cw, language = form.get("cw", "").strip(), form.get("language", "").strip() or "en"
    sensitive = form.get("sensitive") == "on"
    context = {"visibilities": VISIBILITY_CHOICES, "prompt": prompt, "negative": negative,
               "visibility": visibility, "cw": cw, "sensitive": sensitive,
               "language": language}  # fmt: skip
    if visibility not in VISIBILITY_CHOICES:
        return refused(request, "Pick a visibility.", 400, "compose.html", context)
    if not prompt:
        return refused(request, "Type a prompt.", 400, "compose.html", context)
    try:
        async with rt.session() as session:
            me = await current_account(request, session)
            if me is None:
                return to_login(request)
            post = {"visibility": visibility, "summary": cw or None, "sensitive": sensitive,
                    "language": language}  # fmt: skip
            job = await enqueue(session, rt, me, prompt, negative=negative or None,
                                then={"post": post}, requested_by=me.uri)  # fmt: skip
    except GenerationRefused as exc:
        return refused(request, exc, exc.http_status, "compose.html", context)
    except InvalidGenerationRequest as exc:
        return refused(request, str(exc), 400, "compose.html", context)
    return RedirectResponse(f"/jobs/{job.public_id}", status_code=303)


async def job_page(request: Request) -> Response:
    """A job's status; refreshes itself every few seconds until the job is final."""
    rt = runtime(request)
    async with rt.sessions() as session:
        me = await current_account(request, session)
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
            p = (await cards(session, rt, [Entry(post.published, post, author, None)], me))[0]
    image = (job.result or {}).get("file_name")
    return page(request, "job.html", {
        "job": job, "p": p, "refresh": REFRESH_S if job.status in ("queued", "running") else 0,
        "image": rt.urls.media(image) if image and p is None else None,
        "prompt": (job.recipe or {}).get("prompt", ""),
    })  # fmt: skip


routes = [
    Route("/compose", compose_form, methods=["GET"]),
    Route("/compose", compose, methods=["POST"]),
    Route("/jobs/{public_id}", job_page),
]
