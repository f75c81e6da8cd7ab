"""The buttons on a post card: like, unlike, boost, unboost, remix (instance/content/actions.py,
instance/generation/remix.py), and on one's own post's page, revoking the approval of a
remote remix (instance/content/quotes.py). Each is a form post through `forms.form_post`;
the post must be one the viewer may see (instance/content/visibility.py). Like and boost go
back to the page the button was on; a remix goes to its job's page."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from instance.content import actions, posting, quotes
from instance.content.visibility import visible_to
from instance.errors import ActionError, GenerationRefused, PostingError, RemixError
from instance.generation.remix import remix
from instance.routes.common import runtime
from instance.storage.models import Account, Post, QuoteAuthorization
from instance.web.common import refused, to_login
from instance.web.forms import form_post, safe_next
from instance.web.sessions import current_account

ACTIONS = {
    "like": actions.like,
    "unlike": actions.unlike,
    "boost": actions.boost,
    "unboost": actions.unboost,
}


async def _visible_post(session: AsyncSession, public_id: str, viewer: Account) -> Post | None:
    return await session.scalar(
        select(Post).where(
            Post.public_id == public_id,
            Post.deleted_at.is_(None),
            visible_to(viewer),
        )
    )


async def _own_post(session: AsyncSession, public_id: str, viewer: Account) -> Post | None:
    return await session.scalar(
        select(Post).where(Post.public_id == public_id, Post.account_id == viewer.id)
    )


@form_post()
async def act(request: Request, form: dict[str, str]) -> Response:
    action = ACTIONS.get(request.path_params["action"])
    if action is None:
        return refused(request, "No such action.", 404)
    rt = runtime(request)
    try:
        async with rt.session() as session:
            me = await current_account(request, session)
            if me is None:
                return to_login(request)
            post = await _visible_post(session, request.path_params["public_id"], me)
            if post is None:
                return refused(request, "No such post.", 404)
            await action(session, rt, me, post)
    except ActionError as exc:
        return refused(request, str(exc), 400)
    back = safe_next(form.get("back"), default=post.url or "/home")
    return RedirectResponse(back, status_code=303)


@form_post()
async def remix_post(request: Request, form: dict[str, str]) -> Response:
    """Remix: kind `seed` (same prompt, new seed), `prompt` (edited), `image` (from its image)."""
    kind, prompt = form.get("kind", "seed"), form.get("prompt", "").strip()
    if kind not in ("seed", "prompt", "image"):
        return refused(request, "Pick a kind of remix: new seed, edited prompt or from image.", 400)
    if kind == "prompt" and not prompt:
        return refused(request, "Type the edited prompt for the remix.", 400)
    rt = runtime(request)
    try:
        async with rt.session() as session:
            me = await current_account(request, session)
            if me is None:
                return to_login(request)
            parent = await _visible_post(session, request.path_params["public_id"], me)
            if parent is None:
                return refused(request, "No such post.", 404)
            job = await remix(session, rt, me, parent, prompt=prompt if kind != "seed" else None,
                              from_image=kind == "image")  # fmt: skip
    except RemixError as exc:
        return refused(request, f"Cannot remix that post: {exc}", 400)
    except GenerationRefused as exc:
        return refused(request, exc, exc.http_status)
    return RedirectResponse(f"/jobs/{job.public_id}", status_code=303)


@form_post()
async def edit_post(request: Request, form: dict[str, str]) -> Response:
    """The author changes a post's text, content warning and sensitivity (an Update)."""
    rt = runtime(request)
    try:
        async with rt.session() as session:
            me = await current_account(request, session)
            if me is None:
                return to_login(request)
            post = await _own_post(session, request.path_params["public_id"], me)
            if post is None:
                return refused(request, "No such post of yours.", 404)
            text = form.get("text", "").strip()
            if not text:
                return refused(request, "Type the post's text.", 400)
            await posting.edit(session, rt, me, post, text=text, summary=form.get("cw", ""),
                               sensitive=form.get("sensitive") == "on")  # fmt: skip
    except PostingError as exc:
        return refused(request, str(exc), 400)
    return RedirectResponse(post.url or "/home", status_code=303)


@form_post()
async def revoke_remix(request: Request, form: dict[str, str]) -> Response:
    """Take back the approval (the stamp) of a remote remix of one of the viewer's posts."""
    rt = runtime(request)
    async with rt.session() as session:
        me = await current_account(request, session)
        if me is None:
            return to_login(request)
        post = await _own_post(session, request.path_params["public_id"], me)
        if post is None:
            return refused(request, "No such post of yours.", 404)
        stamp = await session.scalar(select(QuoteAuthorization).where(
            QuoteAuthorization.post_id == post.id,
            QuoteAuthorization.quoting_uri == form.get("remix", "")))  # fmt: skip
        if stamp is None:
            return refused(request, "You have not approved that remix.", 404)
        await quotes.revoke(session, rt, stamp)
    return RedirectResponse(post.url or "/home", status_code=303)


routes = [
    Route("/posts/{public_id}/remix", remix_post, methods=["POST"]),
    Route("/posts/{public_id}/revoke-remix", revoke_remix, methods=["POST"]),
    Route("/posts/{public_id}/edit", edit_post, methods=["POST"]),
    Route("/posts/{public_id}/{action}", act, methods=["POST"]),
]
