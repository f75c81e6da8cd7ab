"""WebFinger, host-meta and NodeInfo: how other servers find our accounts and learn what we
are (Mastodon resolves `@user@host` through WebFinger before anything else)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from activitypub.notes import DREAMLOOM_TERMS
from instance import __version__
from instance.moderation import suspension
from instance.routes.common import JRDResponse, error_json, runtime
from instance.storage.models import Account, Post
from instance.urls import INSTANCE_ACTOR_USERNAME
from webfinger.server import (
    XRD_CONTENT_TYPE,
    FingerTarget,
    WebFingerError,
    host_meta_xrd,
    jrd_for,
)

NODEINFO_SCHEMA = "http://nodeinfo.diaspora.software/ns/schema/{version}"


async def webfinger(request: Request) -> Response:
    rt = runtime(request)
    urls = rt.urls

    async def lookup(key: str) -> FingerTarget | None:
        async with rt.sessions() as session:
            if key.startswith(("http://", "https://")):
                account = await session.scalar(
                    select(Account).where(
                        Account.local.is_(True),
                        (Account.uri == key) | (Account.url == key),
                    )
                )
            else:
                account = await suspension.local_owner(session, key)
        if account is None:
            return None
        if suspension.is_gone(account):  # a suspended account is still found
            raise WebFingerError(f"{account.username} was deleted", suspension.GONE_STATUS)
        profile = None if account.username == INSTANCE_ACTOR_USERNAME else account.url
        return FingerTarget(account.username, account.uri, profile, account.avatar_url)

    resource = request.query_params.get("resource", "")
    try:
        jrd = await jrd_for(resource, lookup, host=rt.settings.host, base_url=urls.base)
    except WebFingerError as exc:
        return error_json(str(exc), exc.status)
    return JRDResponse(jrd, headers={"Access-Control-Allow-Origin": "*"})


async def host_meta(request: Request) -> Response:
    return Response(host_meta_xrd(runtime(request).urls.base), media_type=XRD_CONTENT_TYPE)


async def nodeinfo_links(request: Request) -> Response:
    base = runtime(request).urls.base
    return JSONResponse(
        {
            "links": [
                {"rel": NODEINFO_SCHEMA.format(version=v), "href": f"{base}/nodeinfo/{v}"}
                for v in ("2.0", "2.1")
            ]
        }
    )


async def nodeinfo(request: Request) -> Response:
    version = request.path_params["version"]
    if version not in {"2.0", "2.1"}:
        return error_json("unknown NodeInfo version", 404)
    rt = runtime(request)
    now = rt.now()
    local_users = (
        Account.local.is_(True),
        Account.deleted_at.is_(None),
        Account.username != INSTANCE_ACTOR_USERNAME,
    )
    async with rt.sessions() as session:
        total = await session.scalar(select(func.count()).where(*local_users))
        active = {}
        for label, days in (("activeMonth", 30), ("activeHalfyear", 180)):
            active[label] = await session.scalar(
                select(func.count(func.distinct(Post.account_id))).where(
                    Post.local.is_(True), Post.published >= now - timedelta(days=days)
                )
            )
        posts = await session.scalar(
            select(func.count()).where(Post.local.is_(True), Post.deleted_at.is_(None))
        )
    software: dict[str, str] = {"name": "dreamloom", "version": __version__}
    if version == "2.1":
        software["repository"] = "https://dreamloom.dev/source"
        software["homepage"] = "https://dreamloom.dev/"
    settings = rt.settings
    doc = {
        "version": version,
        "software": software,
        "protocols": ["activitypub"],
        "services": {"inbound": [], "outbound": []},
        "openRegistrations": settings.instance.open_registrations,
        "usage": {
            "users": {"total": total or 0, **{k: v or 0 for k, v in active.items()}},
            "localPosts": posts or 0,
        },
        "metadata": {
            "nodeName": settings.instance.name,
            "nodeDescription": settings.instance.description,
            "generator": {"model": settings.generator.model},
        },
    }
    media_type = f'application/json; profile="{NODEINFO_SCHEMA.format(version=version)}#"'
    return JSONResponse(doc, media_type=media_type, headers={"Access-Control-Allow-Origin": "*"})


async def namespace(request: Request) -> Response:
    """Dreamloom's JSON-LD terms as a context document (JSON-LD 1.0); what they mean is in
    docs/federation.md."""
    return JSONResponse(
        {"@context": DREAMLOOM_TERMS},
        media_type="application/ld+json",
        headers={"Access-Control-Allow-Origin": "*", "Cache-Control": "public, max-age=86400"},
    )


routes = [
    Route("/ns", namespace),
    Route("/.well-known/webfinger", webfinger),
    Route("/.well-known/host-meta", host_meta),
    Route("/.well-known/nodeinfo", nodeinfo_links),
    Route("/nodeinfo/{version}", nodeinfo),
]
