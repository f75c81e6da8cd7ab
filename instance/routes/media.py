"""Media files: public and unsigned (Mastodon fetches attachments without signing), served
only under the names we generate, with their real type, nosniff and a sandboxing CSP, so a
file can never be run as a page. `/media/remote/<id>` serves a remote post's image from
our cache (instance/inbound/media_cache.py), so our pages never send visitors elsewhere.
Our own images come from the media store (instance/storage/media_store.py): a local file is
sent as a file; an object in an S3 bucket is streamed from it (for when `[media]
public_base_url` is empty, or for URLs minted before it was set)."""

from __future__ import annotations

import logging
import re

from starlette.requests import Request
from starlette.responses import FileResponse, Response, StreamingResponse
from starlette.routing import Route

from instance.content import renditions
from instance.inbound.media_cache import RemoteMedia
from instance.moderation import suspension
from instance.routes.common import error_json, runtime
from instance.runtime import Runtime
from instance.storage.media_store import MediaStoreError

SAFE_NAME = re.compile(r"^[0-9a-z]{20,64}\.(png|jpg)$")  # our generated names only
TYPES = {"png": "image/png", "jpg": "image/jpeg"}
log = logging.getLogger("dreamloom.media")
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
    try:
        if renditions.parse(name) is not None:
            return await rendition(request, name)
        return await stored_image(request, name)
    except MediaStoreError as exc:  # an S3 endpoint down or refusing: say so, quickly
        log.warning("media %s could not be read: %s", name, exc)
        return error_json("the media store is not answering; try again later", 503)


async def stored_image(request: Request, name: str) -> Response:
    if not SAFE_NAME.match(name):
        return error_json("no such file", 404)
    rt = runtime(request)
    if not await rt.media.exists(name):
        return error_json("no such file", 404)
    if await rt.service(suspension.HiddenMedia).hidden(name):
        return error_json("this account is suspended", suspension.SUSPENDED_STATUS)
    return await _serve(rt, name, TYPES[name.rsplit(".", 1)[1]])


async def rendition(request: Request, name: str) -> Response:
    """A smaller copy of a stored image (instance/content/renditions.py), made on its first
    request; hidden exactly when its original is."""
    stem, width = renditions.parse(name) or ("", 0)
    rt = runtime(request)
    original = await renditions.original_of(rt.media, stem)
    if original is None:
        return error_json("no such file", 404)
    if await rt.service(suspension.HiddenMedia).hidden(original):
        return error_json("this account is suspended", suspension.SUSPENDED_STATUS)
    key = await renditions.ensure(rt.media, original, width)
    if key is None:
        return error_json("no such file", 404)
    return await _serve(rt, key, renditions.MEDIA_TYPE)


async def _serve(rt: Runtime, key: str, media_type: str) -> Response:
    """A local file as a file; an object in a bucket streamed from it, a chunk at a time."""
    headers = {**HEADERS, "Cache-Control": "public, max-age=31536000, immutable"}
    path = rt.media.local_path(key)
    if path is not None:
        return FileResponse(path, media_type=media_type, headers=headers)
    stored = await rt.media.open(key)
    if stored is None:
        return error_json("no such file", 404)
    if stored.size is not None:
        headers["Content-Length"] = str(stored.size)
    return StreamingResponse(stored.chunks, media_type=media_type, headers=headers)


routes = [Route("/media/remote/{public_id}", remote_media), Route("/media/{name}", media)]
