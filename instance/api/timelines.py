"""Timelines as Mastodon serves them: lists of Status entities, newest first, paged by id.

    GET /api/v1/timelines/home           read:statuses; the posts of the accounts the caller
                                         follows, its own, those that mention it, and the
                                         boosts of the accounts it follows
    GET /api/v1/timelines/public         anyone; `local=true` (ours), `remote=true` (others'),
                                         `only_media=true`
    GET /api/v1/timelines/tag/:hashtag   anyone; public posts with the hashtag, the same
                                         `local`, `remote` and `only_media`

Which posts and boosts each timeline holds, and who may see them, is
instance/content/timelines.py's (`shown_posts`, `shown_boosts`, over
instance/content/visibility.py and the moderation rules); this module only pages them the
client API's way: by status id (`max_id`, `since_id`, `min_id`, `limit`, and the Link
header, instance/api/pagination.py). A post's status id is its `public_id`, a boost's its
`Boost.public_id`; both are time-sortable (the time the row was written), so a home
timeline's posts and boosts page together in one order. A token is never needed for the
public and tag timelines (a token that is sent must still work: 401 otherwise); with one,
the statuses say what the caller did with them (favourited, reblogged).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import exists, literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.routing import BaseRoute, Route

from instance.api import entities
from instance.api.auth import Caller, endpoint, json_response
from instance.api.pagination import Page, link_header, page_of
from instance.api.params import query_flag
from instance.content import timelines
from instance.routes.common import runtime
from instance.runtime import Runtime
from instance.storage.models import Account, Boost, MediaAttachment, Post, PostTag


def public_where(request: Request) -> list[Any]:
    """The public timeline's posts, narrowed by `local`, `remote` and `only_media` (both
    `local` and `remote`: every public post, as Mastodon reads them)."""
    local, remote = query_flag(request, "local"), query_flag(request, "remote")
    where = timelines.shown_posts("local" if local and not remote else "federated")
    if remote and not local:
        where.append(Post.local.is_(False))
    if query_flag(request, "only_media"):
        where.append(exists().where(MediaAttachment.post_id == Post.id))
    return where


def tag_name(raw: str) -> str:
    """A hashtag as posts list it (instance/content/text.py: lower case, no '#')."""
    return raw.strip().lstrip("#").lower()


async def post_page(
    rt: Runtime, session: AsyncSession, request: Request, where: list[Any], viewer: Account | None
) -> Any:
    """One page of the posts `where` selects, as statuses with the Link header."""
    page = page_of(request)
    query = page.apply(select(Post).where(*where), Post.public_id.expression)
    posts = page.ordered(list(await session.scalars(query)))
    body = await entities.statuses(rt, session, posts, viewer)
    return json_response(body, headers=link_header(request, [p.public_id for p in posts]))


async def home_rows(session: AsyncSession, me: Account, page: Page) -> list[Any]:
    """(id, post_id, boost_id) of one page of `me`'s home timeline, newest first."""
    posts_q = select(
        Post.public_id.label("id"), Post.id.label("post_id"), literal(None).label("boost_id")
    ).where(*timelines.shown_posts("home", viewer=me))
    boosts_q = (
        select(Boost.public_id, Boost.post_id, Boost.id)
        .join(Post, Post.id == Boost.post_id)
        .where(*timelines.shown_boosts(me))
    )
    merged = union_all(posts_q, boosts_q).subquery()
    query = select(merged.c.id, merged.c.post_id, merged.c.boost_id)
    return page.ordered(list(await session.execute(page.apply(query, merged.c.id))))


async def home_items(session: AsyncSession, rows: list[Any]) -> list[Post | Boost]:
    """The posts and boosts of home timeline rows, in their order."""
    post_ids = [r.post_id for r in rows if r.boost_id is None]
    boost_ids = [r.boost_id for r in rows if r.boost_id is not None]
    posts = {p.id: p for p in await session.scalars(select(Post).where(Post.id.in_(post_ids)))}
    boosts = {b.id: b for b in await session.scalars(select(Boost).where(Boost.id.in_(boost_ids)))}
    items: list[Post | Boost] = []
    for r in rows:
        item = boosts.get(r.boost_id) if r.boost_id is not None else posts.get(r.post_id)
        if item is not None:
            items.append(item)
    return items


@endpoint("read:statuses")
async def home(request: Request, caller: Caller) -> Any:
    rt = runtime(request)
    me = caller.user()
    async with rt.sessions() as session:
        rows = await home_rows(session, me, page_of(request))
        body = await entities.timeline(rt, session, await home_items(session, rows), me)
    return json_response(body, headers=link_header(request, [r.id for r in rows]))


@endpoint()
async def public(request: Request, caller: Caller) -> Any:
    rt = runtime(request)
    async with rt.sessions() as session:
        return await post_page(rt, session, request, public_where(request), caller.account)


@endpoint()
async def tag(request: Request, caller: Caller) -> Any:
    rt = runtime(request)
    name = tag_name(request.path_params["hashtag"])
    where = [*public_where(request),
             Post.id.in_(select(PostTag.post_id).where(PostTag.name == name))]  # fmt: skip
    async with rt.sessions() as session:
        return await post_page(rt, session, request, where, caller.account)


routes: list[BaseRoute] = [
    Route("/api/v1/timelines/home", home, methods=["GET"]),
    Route("/api/v1/timelines/public", public, methods=["GET"]),
    Route("/api/v1/timelines/tag/{hashtag}", tag, methods=["GET"]),
]
