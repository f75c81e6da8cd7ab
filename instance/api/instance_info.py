"""What a client learns about this server before anything else: `GET /api/v1/instance`
(Mastodon's V1 Instance), `GET /api/v2/instance` (the V2 Instance, with `api_versions`) and
`GET /api/v1/custom_emojis` (none here).

Clients decide what to offer from these answers: Mastodon.py and masto.js read `version` as
the Mastodon release whose API we speak (`MASTODON_VERSION`, with our own name and version in
parentheses, as Pleroma-likes write it: Mastodon.py keeps the part before the first space),
and `api_versions.mastodon` as its API level. Every limit comes from the code that enforces
it: statuses from instance/content/posting.py, profiles from instance/content/profiles.py,
pins from instance/content/pins.py, uploads from instance/api/media.py.
Anyone may read these, without a token (a bad token still answers 401).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.routing import BaseRoute, Route

from instance import __version__
from instance.accounts import count_local_users
from instance.api import media
from instance.api.auth import Caller, endpoint
from instance.content import pins, posting, profiles
from instance.routes.common import runtime
from instance.runtime import Runtime
from instance.storage.models import Account, Post

MASTODON_VERSION = "4.5.0"  # the Mastodon release whose client API this one follows
MASTODON_API_VERSION = 7  # `api_versions.mastodon` of that release
SOURCE_URL = "https://dreamloom.dev/source"  # as NodeInfo 2.1 names it
LANGUAGES = ["en"]  # the language of our pages and messages
ACTIVE_DAYS = 30  # "active this month": posted within this many days (as NodeInfo counts)


def version() -> str:
    """`4.5.0 (compatible; Dreamloom 0.1.0)`."""
    return f"{MASTODON_VERSION} (compatible; Dreamloom {__version__})"


def streaming_url(rt: Runtime) -> str:
    """Where Mastodon's streaming API would be: this host, over WebSocket (no streaming is
    served yet; clients that fail to connect poll, which every endpoint supports)."""
    scheme = "wss" if rt.settings.instance.scheme == "https" else "ws"
    return f"{scheme}://{rt.settings.host}"


def thumbnail_url(rt: Runtime) -> str:
    return f"{rt.settings.base_url}/static/favicon.svg"


def _statuses() -> dict[str, Any]:
    return {
        "max_characters": posting.MAX_TEXT,
        "max_media_attachments": posting.MAX_MEDIA,
        "characters_reserved_per_url": posting.URL_CHARACTERS,
    }


def _media_attachments() -> dict[str, Any]:
    """Images only (no video or audio): what instance/api/media.py accepts."""
    return {
        "supported_mime_types": sorted({f"image/{kind.lower()}" for kind in media.UPLOAD_FORMATS}),
        "image_size_limit": media.MAX_UPLOAD_BYTES,
        "image_matrix_limit": media.MAX_PIXELS,
        "description_limit": media.MAX_DESCRIPTION,
        "video_size_limit": 0,
        "video_frame_rate_limit": 0,
        "video_matrix_limit": 0,
    }


def _polls() -> dict[str, int]:
    """There are no polls here: no options may be offered."""
    return {"max_options": 0, "max_characters_per_option": 0, "min_expiration": 0,
            "max_expiration": 0}  # fmt: skip


def _accounts_v2() -> dict[str, int]:
    return {
        "max_note_length": profiles.MAX_BIO,
        "max_featured_tags": 0,  # featured hashtags are not kept
        "max_pinned_statuses": pins.MAX_PINNED,
        "max_profile_fields": profiles.MAX_FIELDS,
        "profile_field_name_limit": profiles.MAX_FIELD_CHARS,
        "profile_field_value_limit": profiles.MAX_FIELD_CHARS,
    }


async def _stats(session: AsyncSession) -> dict[str, int]:
    statuses = await session.scalar(
        select(func.count()).where(Post.local.is_(True), Post.deleted_at.is_(None))
    )
    domains = await session.scalar(
        select(func.count(func.distinct(Account.domain))).where(Account.local.is_(False))
    )
    return {"user_count": await count_local_users(session), "status_count": statuses or 0,
            "domain_count": domains or 0}  # fmt: skip


async def _active_month(rt: Runtime, session: AsyncSession) -> int:
    since = rt.now() - timedelta(days=ACTIVE_DAYS)
    found = await session.scalar(
        select(func.count(func.distinct(Post.account_id))).where(
            Post.local.is_(True), Post.published >= since
        )
    )
    return int(found or 0)


@endpoint()
async def instance_v1(request: Request, caller: Caller) -> dict[str, Any]:
    rt = runtime(request)
    settings = rt.settings.instance
    async with rt.sessions() as session:
        stats = await _stats(session)
    return {
        "uri": rt.settings.host,
        "title": settings.name,
        "short_description": settings.description,
        "description": settings.description,
        "email": "",
        "version": version(),
        "urls": {"streaming_api": streaming_url(rt)},
        "stats": stats,
        "thumbnail": thumbnail_url(rt),
        "languages": LANGUAGES,
        "registrations": settings.open_registrations,
        "approval_required": False,
        "invites_enabled": False,
        "configuration": {
            "accounts": {"max_featured_tags": 0},
            "statuses": _statuses(),
            "media_attachments": _media_attachments(),
            "polls": _polls(),
        },
        "contact_account": None,
        "rules": [],
    }


@endpoint()
async def instance_v2(request: Request, caller: Caller) -> dict[str, Any]:
    rt = runtime(request)
    settings = rt.settings.instance
    async with rt.sessions() as session:
        active = await _active_month(rt, session)
    base = rt.settings.base_url
    return {
        "domain": rt.settings.host,
        "title": settings.name,
        "version": version(),
        "source_url": SOURCE_URL,
        "description": settings.description,
        "usage": {"users": {"active_month": active}},
        "thumbnail": {"url": thumbnail_url(rt)},
        "icon": [],
        "languages": LANGUAGES,
        "configuration": {
            "urls": {
                "streaming": streaming_url(rt),
                "status": None,
                "about": f"{base}/about",
                "privacy_policy": None,
                "terms_of_service": None,
            },
            "accounts": _accounts_v2(),
            "statuses": _statuses(),
            "media_attachments": _media_attachments(),
            "polls": _polls(),
            "translation": {"enabled": False},
            "limited_federation": False,
        },
        "registrations": {
            "enabled": settings.open_registrations,
            "approval_required": False,
            "reason_required": False,
            "message": None,
            "min_age": None,
            "url": None,
        },
        "api_versions": {"mastodon": MASTODON_API_VERSION},
        "contact": {"email": "", "account": None},
        "rules": [],
    }


@endpoint()
async def custom_emojis(request: Request, caller: Caller) -> list[Any]:
    """No custom emoji are kept here."""
    return []


routes: list[BaseRoute] = [
    Route("/api/v1/instance", instance_v1, methods=["GET"]),
    Route("/api/v1/instance/", instance_v1, methods=["GET"]),  # Mastodon.py asks with a slash
    Route("/api/v2/instance", instance_v2, methods=["GET"]),
    Route("/api/v1/custom_emojis", custom_emojis, methods=["GET"]),
]
