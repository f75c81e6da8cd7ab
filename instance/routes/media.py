"""Media files: public and unsigned (Mastodon fetches attachments without signing), served
only under the names we generate, with their real type, nosniff and a sandboxing CSP, so a
file can never be run as a page. `/media/remote/<id>` serves a remote post's image from
our cache (instance/inbound/media_cache.py), so our pages never send visitors elsewhere."""

from __future__ import annotations

import asyncio
import re

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from instance.content import renditions
from instance.inbound.media_cache import RemoteMedia
from instance.moderation import suspension
from instance.routes.common import error_json, runtime

SAFE_NAME = re.compile(r"^[0-9a-z]{20,64}\.(png|jpg)$")  # our generated names only
TYPES = {"png": "image/png", "jpg": "image/jpeg"}
PUBLIC_ID = re.compile(r"^[0-9a-z]{26}$")
HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
}


async def remote_media(request: Request) -> Response:
    public_id = request.path_params["public_id"]
    if not PUBLIC_ID.match(public_id):
        return error_json("no such file", 404)
    cached = await runtime(request).service(RemoteMedia).get(public_id)
    if cached is None:
        return error_json("no such file, or it could not be fetched", 404)
    return FileResponse(cached.path, media_type=cached.media_type,
                        headers={**HEADERS, "Cache-Control": "public, max-age=86400"})  # fmt: skip


async def media(request: Request) -> Response:
    name = request.path_params["name"]
    if renditions.parse(name) is not None:
        return await rendition(request, name)
    if not SAFE_NAME.match(name):
        return error_json("no such file", 404)
    rt = runtime(request)
    path = rt.settings.media_path / name
    if not path.is_file():
        return error_json("no such file", 404)
    if await rt.service(suspension.HiddenMedia).hidden(name):
        return error_json("this account is suspended", suspension.SUSPENDED_STATUS)
    return FileResponse(
        path,
        media_type=TYPES[name.rsplit(".", 1)[1]],
        headers={**HEADERS, "Cache-Control": "public, max-age=31536000, immutable"},
    )


async def rendition(request: Request, name: str) -> Response:
    """A smaller copy of a stored image (instance/content/renditions.py), made on its first
    request; hidden exactly when its original is."""
    stem, width = renditions.parse(name) or ("", 0)
    rt = runtime(request)
    original = renditions.original_of(rt.settings.media_path, stem)
    if original is None:
        return error_json("no such file", 404)
    if await rt.service(suspension.HiddenMedia).hidden(original.name):
        return error_json("this account is suspended", suspension.SUSPENDED_STATUS)
    path = await asyncio.to_thread(renditions.ensure, original, width)
    if path is None:
        return error_json("no such file", 404)
    return FileResponse(
        path,
        media_type=renditions.MEDIA_TYPE,
        headers={**HEADERS, "Cache-Control": "public, max-age=31536000, immutable"},
    )


routes = [Route("/media/remote/{public_id}", remote_media), Route("/media/{name}", media)]
