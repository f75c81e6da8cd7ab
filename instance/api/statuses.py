"""Statuses: create, show, edit, delete, context, favourite, reblog and who did them.

    POST   /api/v1/statuses                  post (write:statuses)
    GET    /api/v1/statuses/:id              one status (read:statuses; public ones without
                                             a token)
    PUT    /api/v1/statuses/:id              edit text, content warning, sensitive, language
    DELETE /api/v1/statuses/:id              delete; answers the status with its `text`
    GET    /api/v1/statuses/:id/source       the text as typed, for editing
    GET    /api/v1/statuses/:id/context      ancestors and descendants the caller may see
    POST   /api/v1/statuses/:id/favourite    (write:favourites) and /unfavourite
    POST   /api/v1/statuses/:id/reblog       (write:statuses) and /unreblog
    GET    /api/v1/statuses/:id/favourited_by, /reblogged_by   accounts, Link pagination

Every action is the content wing's, as the web pages do it: posting.publish / edit / delete,
quotes.publish_quote for a quote (a remix of that post), actions.like / unlike / boost /
unboost, with the same federation. Who may see a post is instance/content/visibility.py's
(`entities.readable`): a status the caller may not see answers 404, as Mastodon does, and
so do posts of suspended accounts or domains.

Parameters are read by instance/api/params.py: the query and a JSON body (masto.js) or form
data (Mastodon.py), arrays as `media_ids[]` fields or JSON lists, no files. Visibility is
Mastodon's: `private` is our followers-only.

**Creating.** `status` (the text; may be empty with media), `in_reply_to_id`,
`visibility`, `spoiler_text`, `sensitive`, `language`, `media_ids` (the caller's
attachments that no status uses yet, each with its image: instance/api/media.py
`attachable`, which answers 422 "...not finished processing..." for a generation still
running), `quoted_status_id` (a quote: 422 when that post may not be quoted).
`@user@host` mentions of accounts this instance knows are linked and notified
(posting.mentioned_accounts). A post whose attachment is a generated image carries its
recipe (so it is labelled and can be remixed as one). `Idempotency-Key`: the same key from
the same account within IDEMPOTENCY_WINDOW answers the status it made the first time
instead of posting again (the ApiIdempotency row is written with the post, in one
transaction; a request that loses the race for the key answers the winner's status).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import delete as delete_rows
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.routing import BaseRoute, Route

from activitypub.addressing import Visibility
from instance.api import entities, media
from instance.api.auth import ApiError, Caller, check_scope, endpoint, json_response
from instance.api.pagination import link_header, page_of
from instance.api.params import Limits, Params, read
from instance.content import actions, posting, quotes
from instance.content.visibility import can_quote
from instance.generation.remix import fallback_html
from instance.moderation.domains import shown_domain
from instance.moderation.suspension import shown_author
from instance.routes.common import runtime
from instance.runtime import Runtime
from instance.storage.models import Account, ApiIdempotency, Boost, Like, Post

IDEMPOTENCY_WINDOW = timedelta(hours=24)
BODY_LIMITS = Limits(max_fields=64)  # no files: those go to /api/v2/media
VISIBILITIES: dict[str, Visibility] = {
    "public": "public", "unlisted": "unlisted", "private": "followers", "direct": "direct",
}  # fmt: skip
"""Mastodon's visibilities -> ours."""
ANCESTORS_MAX = 40
DESCENDANTS_MAX, DESCENDANTS_DEPTH = 200, 20
ACCOUNTS_MAX_LIMIT = 80
NOT_FOUND = "Record not found"


# -- reading requests ----------------------------------------------------------------------
def _visibility(params: Params) -> Visibility:
    value = params.text("visibility")
    if value is None or value == "":
        return "public"
    if value not in VISIBILITIES:
        raise ApiError(422, "Validation failed: Visibility is not included in the list")
    return VISIBILITIES[value]


def _reader(caller: Caller) -> Account | None:
    """A read anyone may make; a token, when sent, needs read:statuses. The viewer."""
    if caller.token_id is not None:
        check_scope(caller, ("read:statuses",), user=False)
    return caller.account


# -- finding statuses ----------------------------------------------------------------------
async def find_readable(
    session: AsyncSession, public_id: str, viewer: Account | None
) -> tuple[Post, Boost | None]:
    """The post with this status id that `viewer` may read (a boost's id: the boosted post,
    and the boost); ApiError(404) otherwise."""
    rules = (Post.deleted_at.is_(None), entities.readable(viewer), shown_author(), shown_domain())
    post = await session.scalar(select(Post).where(Post.public_id == public_id, *rules))
    if post is not None:
        return post, None
    boost = await session.scalar(select(Boost).where(Boost.public_id == public_id))
    if boost is not None:
        booster = await session.get(Account, boost.account_id)
        post = await session.scalar(select(Post).where(Post.id == boost.post_id, *rules))
        if post is not None and booster is not None and booster.suspended_at is None:
            return post, boost
    raise ApiError(404, NOT_FOUND)


async def _own(session: AsyncSession, public_id: str, me: Account) -> Post:
    post = await session.scalar(
        select(Post).where(
            Post.public_id == public_id, Post.account_id == me.id, Post.local.is_(True),
            Post.deleted_at.is_(None),
        )
    )  # fmt: skip
    if post is None:
        raise ApiError(404, NOT_FOUND)
    return post


# -- create --------------------------------------------------------------------------------
async def _remembered(
    session: AsyncSession, rt: Runtime, me: Account, key: str
) -> tuple[ApiIdempotency | None, Post | None]:
    """The key's row within the window and the post it made (an older row is forgotten)."""
    row = await session.scalar(
        select(ApiIdempotency).where(ApiIdempotency.account_id == me.id,
                                     ApiIdempotency.key == key)
    )  # fmt: skip
    if row is None:
        return None, None
    if row.created_at < rt.now() - IDEMPOTENCY_WINDOW or row.post_id is None:
        await session.execute(delete_rows(ApiIdempotency).where(ApiIdempotency.id == row.id))
        return None, None
    return row, await session.get(Post, row.post_id)


async def _recipe(session: AsyncSession, attached: Sequence[Any]) -> dict[str, Any] | None:
    """The recipe of the first generated image among the attachments (None: uploads)."""
    for m in attached:
        recipe = await media.recipe_of(session, m)
        if recipe is not None:
            return recipe
    return None


@endpoint("write:statuses")
async def create(request: Request, caller: Caller) -> Any:
    """POST /api/v1/statuses."""
    rt = runtime(request)
    params = await read(request, BODY_LIMITS)
    key = (request.headers.get("idempotency-key") or "").strip()[:255] or None
    text = params.text("status") or ""
    media_ids = params.ids("media_ids")
    visibility = _visibility(params)
    try:
        async with rt.session() as session:
            me = await session.get_one(Account, caller.user().id)
            claim = None
            if key is not None:
                row, earlier = await _remembered(session, rt, me, key)
                if row is not None and earlier is not None:
                    return await entities.status(rt, session, earlier, me)
                claim = ApiIdempotency(account_id=me.id, key=key, created_at=rt.now())
                session.add(claim)
                await session.flush()  # a concurrent request with the key waits or fails here
            post = await _publish(session, rt, me, params, text, media_ids, visibility)
            if claim is not None:
                claim.post_id = post.id
            data = await entities.status(rt, session, post, me)
    except IntegrityError:  # another request with this key won: answer its status
        if key is None:
            raise
        async with rt.sessions() as session:
            me = await session.get_one(Account, caller.user().id)
            row, earlier = await _remembered(session, rt, me, key)
            if earlier is None:
                raise ApiError(422, "a status with this Idempotency-Key is being made") from None
            return await entities.status(rt, session, earlier, me)
    return data


async def _publish(
    session: AsyncSession,
    rt: Runtime,
    me: Account,
    params: Params,
    text: str,
    media_ids: list[str],
    visibility: Visibility,
) -> Post:
    if not text.strip() and not media_ids:
        raise ApiError(422, "Validation failed: Text can't be blank")
    language = params.text("language")
    draft = posting.Draft(
        text=text,
        visibility=visibility,
        summary=posting.content_warning(params.text("spoiler_text")),
        sensitive=bool(params.flag("sensitive")),
        language=posting.language_code(language) if language else "en",
        mentions=await posting.mentioned_accounts(session, rt.urls, text),
    )
    reply_to = params.text("in_reply_to_id")
    if reply_to:
        draft.in_reply_to, _ = await find_readable(session, reply_to, me)
    draft.media = await media.attachable(session, me, media_ids)
    draft.recipe = await _recipe(session, draft.media)
    quoted_id = params.text("quoted_status_id")
    if not quoted_id:
        return await posting.publish(session, rt, me, draft)
    quoted, _ = await find_readable(session, quoted_id, me)
    if not can_quote(quoted):
        raise ApiError(422, "Validation failed: this status cannot be quoted")
    quoted_author = await session.get_one(Account, quoted.account_id)
    prefix, suffix = fallback_html(quoted, rt.urls.handle(quoted_author))
    draft.quote = quoted
    draft.prefix_html = prefix if draft.media else ""  # a remix: an image made after it
    draft.suffix_html = suffix  # the "RE:" line clients that show the quote hide
    return await quotes.publish_quote(session, rt, me, draft)


# -- show, edit, delete, source ------------------------------------------------------------
@endpoint()
async def show(request: Request, caller: Caller) -> Any:
    """GET /api/v1/statuses/:id (a boost's id: its reblog Status)."""
    viewer = _reader(caller)
    rt = runtime(request)
    async with rt.sessions() as session:
        post, boost = await find_readable(session, request.path_params["id"], viewer)
        if boost is not None:
            return await entities.reblog_status(rt, session, boost, viewer)
        return await entities.status(rt, session, post, viewer)


@endpoint("write:statuses")
async def edit(request: Request, caller: Caller) -> Any:
    """PUT /api/v1/statuses/:id: text, spoiler_text, sensitive, language (posting.edit sends
    the Update). Attachments cannot change: `media_ids` naming other ones answers 422."""
    rt = runtime(request)
    params = await read(request, BODY_LIMITS)
    async with rt.session() as session:
        me = await session.get_one(Account, caller.user().id)
        post = await _own(session, request.path_params["id"], me)
        if "media_ids" in params:
            current = [m.public_id for m in await posting.load_media(session, post)]
            if params.ids("media_ids") != current:
                raise ApiError(422, "Validation failed: attachments cannot be changed by an edit")
        text = params.text("status")
        if text is None:
            text = post.source or ""
        if not text.strip() and not post.recipe:
            raise ApiError(422, "Validation failed: Text can't be blank")
        language = params.text("language")
        await posting.edit(
            session, rt, me, post, text=text, summary=params.text("spoiler_text"),
            sensitive=params.flag("sensitive"), language=language or None,
        )  # fmt: skip
        await session.flush()
        data = await entities.status(rt, session, post, me)
    return data


@endpoint("write:statuses")
async def remove(request: Request, caller: Caller) -> Any:
    """DELETE /api/v1/statuses/:id: the status as it was, with its `text`, to redraft."""
    rt = runtime(request)
    async with rt.session() as session:
        me = await session.get_one(Account, caller.user().id)
        post = await _own(session, request.path_params["id"], me)
        data = await entities.status(rt, session, post, me)
        await posting.delete(session, rt, me, post)
    data["text"] = post.source or ""
    return data


@endpoint("read:statuses")
async def source(request: Request, caller: Caller) -> Any:
    """GET /api/v1/statuses/:id/source: Mastodon's StatusSource, for the caller's own post."""
    rt = runtime(request)
    async with rt.sessions() as session:
        post = await _own(session, request.path_params["id"], caller.user())
        return {"id": post.public_id, "text": post.source or "",
                "spoiler_text": post.summary or ""}  # fmt: skip


# -- context -------------------------------------------------------------------------------
@endpoint()
async def context(request: Request, caller: Caller) -> Any:
    """GET /api/v1/statuses/:id/context: the posts it replies to (oldest first) and the
    replies below it (depth first, each level oldest first), those the caller may see."""
    viewer = _reader(caller)
    rt = runtime(request)
    async with rt.sessions() as session:
        post, _ = await find_readable(session, request.path_params["id"], viewer)
        up = await _ancestors(session, post, viewer)
        down = await _descendants(session, post, viewer)
        return {
            "ancestors": await entities.statuses(rt, session, up, viewer),
            "descendants": await entities.statuses(rt, session, down, viewer),
        }


def _shown(viewer: Account | None) -> tuple[Any, ...]:
    return (Post.deleted_at.is_(None), entities.readable(viewer), shown_author(), shown_domain())


async def _ancestors(session: AsyncSession, post: Post, viewer: Account | None) -> list[Post]:
    """The chain of parents the viewer may see, oldest first; it stops at one it may not."""
    chain: list[Post] = []
    seen = {post.id}
    current = post
    while current.in_reply_to_id is not None and len(chain) < ANCESTORS_MAX:
        parent = await session.scalar(
            select(Post).where(Post.id == current.in_reply_to_id, *_shown(viewer))
        )
        if parent is None or parent.id in seen:
            break
        seen.add(parent.id)
        chain.append(parent)
        current = parent
    return list(reversed(chain))


async def _descendants(session: AsyncSession, post: Post, viewer: Account | None) -> list[Post]:
    """Replies, replies to them and so on (one query a level), in thread order."""
    children: dict[int, list[Post]] = {}
    level, seen, total = [post.id], {post.id}, 0
    for _ in range(DESCENDANTS_DEPTH):
        rows = await session.scalars(
            select(Post).where(Post.in_reply_to_id.in_(level), *_shown(viewer))
            .order_by(Post.published, Post.id).limit(DESCENDANTS_MAX - total)
        )  # fmt: skip
        level = []
        for reply in rows:
            if reply.id in seen or reply.in_reply_to_id is None:
                continue
            seen.add(reply.id)
            children.setdefault(reply.in_reply_to_id, []).append(reply)
            level.append(reply.id)
        total += len(level)
        if not level or total >= DESCENDANTS_MAX:
            break
    ordered: list[Post] = []

    def walk(parent_id: int) -> None:
        for child in children.get(parent_id, []):
            ordered.append(child)
            walk(child.id)

    walk(post.id)
    return ordered


# -- favourite, reblog ---------------------------------------------------------------------
async def _act(request: Request, caller: Caller, action: Any) -> dict[str, Any]:
    """Run a content-wing action on the status the caller may see; its Status after."""
    rt = runtime(request)
    async with rt.session() as session:
        me = await session.get_one(Account, caller.user().id)
        post, _ = await find_readable(session, request.path_params["id"], me)
        result = await action(session, rt, me, post)
        await session.flush()
        await session.refresh(post)  # the counters were recounted in SQL
        data = await entities.status(rt, session, post, me)
        if isinstance(result, Boost):
            data = await entities.reblog_status(rt, session, result, me)
    return data


@endpoint("write:favourites")
async def favourite(request: Request, caller: Caller) -> Any:
    """POST /api/v1/statuses/:id/favourite: the status, favourited."""
    return await _act(request, caller, actions.like)


@endpoint("write:favourites")
async def unfavourite(request: Request, caller: Caller) -> Any:
    return await _act(request, caller, actions.unlike)


@endpoint("write:statuses")
async def reblog(request: Request, caller: Caller) -> Any:
    """POST /api/v1/statuses/:id/reblog: the reblog Status, wrapping the boosted one."""
    return await _act(request, caller, actions.boost)


@endpoint("write:statuses")
async def unreblog(request: Request, caller: Caller) -> Any:
    """POST /api/v1/statuses/:id/unreblog: the boosted status, no longer reblogged."""
    return await _act(request, caller, actions.unboost)


# -- who favourited, who reblogged -----------------------------------------------------------
async def _who(request: Request, caller: Caller, model: type[Like] | type[Boost]) -> Any:
    viewer = _reader(caller)
    rt = runtime(request)
    page = page_of(request, ACCOUNTS_MAX_LIMIT)
    async with rt.sessions() as session:
        post, _ = await find_readable(session, request.path_params["id"], viewer)
        query = (
            select(model.id, Account)
            .join(Account, Account.id == model.account_id)
            .where(model.post_id == post.id, Account.suspended_at.is_(None),
                   Account.deleted_at.is_(None))
        )  # fmt: skip
        paged = page.apply(cast(Any, query), cast(Any, model.id), numeric=True)
        rows = page.ordered(list(await session.execute(paged)))
        found = await entities.accounts(rt, session, [a for _, a in rows])
    headers = link_header(request, [str(row_id) for row_id, _ in rows])
    return json_response(found, headers=headers)


@endpoint()
async def favourited_by(request: Request, caller: Caller) -> Any:
    """GET /api/v1/statuses/:id/favourited_by: who liked it, the latest first."""
    return await _who(request, caller, Like)


@endpoint()
async def reblogged_by(request: Request, caller: Caller) -> Any:
    """GET /api/v1/statuses/:id/reblogged_by: who boosted it, the latest first."""
    return await _who(request, caller, Boost)


routes: list[BaseRoute] = [
    Route("/api/v1/statuses", create, methods=["POST"]),
    Route("/api/v1/statuses/{id}", show, methods=["GET"]),
    Route("/api/v1/statuses/{id}", edit, methods=["PUT"]),
    Route("/api/v1/statuses/{id}", remove, methods=["DELETE"]),
    Route("/api/v1/statuses/{id}/source", source, methods=["GET"]),
    Route("/api/v1/statuses/{id}/context", context, methods=["GET"]),
    Route("/api/v1/statuses/{id}/favourite", favourite, methods=["POST"]),
    Route("/api/v1/statuses/{id}/unfavourite", unfavourite, methods=["POST"]),
    Route("/api/v1/statuses/{id}/reblog", reblog, methods=["POST"]),
    Route("/api/v1/statuses/{id}/unreblog", unreblog, methods=["POST"]),
    Route("/api/v1/statuses/{id}/favourited_by", favourited_by, methods=["GET"]),
    Route("/api/v1/statuses/{id}/reblogged_by", reblogged_by, methods=["GET"]),
]
