"""Posting signed activities to our inbox, and reading back what the inbox stored."""

from __future__ import annotations

import json
from typing import Any

import httpx
from sqlalchemy import func, select

from instance.runtime import Runtime
from instance.storage.models import InboxItem
from tests.instance.fediverse import RemoteActor


async def post(
    client: httpx.AsyncClient,
    rt: Runtime,
    actor: RemoteActor,
    activity: Any,
    path: str = "/inbox",
    *,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    **sign: Any,
) -> httpx.Response:
    """Sign `activity` as `actor` (Mastodon's way) and POST it to our inbox at `path`."""
    raw = body if body is not None else json.dumps(activity).encode()
    sign.setdefault("now", rt.now())
    signed = actor.signed_headers(rt.settings.base_url + path, raw, **sign)
    signed.update(headers or {})
    return await client.post(path, content=raw, headers=signed)


async def inbox_rows(rt: Runtime) -> list[InboxItem]:
    async with rt.sessions() as session:
        return list(await session.scalars(select(InboxItem).order_by(InboxItem.id)))


async def count(rt: Runtime, model: Any, *where: Any) -> int:
    async with rt.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)))
