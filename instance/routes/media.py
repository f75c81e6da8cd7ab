"""Media files: public and unsigned (Mastodon fetches attachments without signing), served
only under the names we generate, with their real type, nosniff and a sandboxing CSP, so a
file can never be run as a page."""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from instance.routes.common import error_json, runtime

SAFE_NAME = re.compile(r"^[0-9a-z]{20,64}\.(png|jpg)$")  # our generated names only
TYPES = {"png": "image/png", "jpg": "image/jpeg"}


async def media(request: Request) -> Response:
    name = request.path_params["name"]
    if not SAFE_NAME.match(name):
        return error_json("no such file", 404)
    path = runtime(request).settings.media_path / name
    if not path.is_file():
        return error_json("no such file", 404)
    return FileResponse(
        path,
        media_type=TYPES[name.rsplit(".", 1)[1]],
        headers={
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "public, max-age=31536000, immutable",
            "Content-Security-Policy": "default-src 'none'; sandbox",
        },
    )


routes = [Route("/media/{name}", media)]
