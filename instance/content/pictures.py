"""A local account's avatar and header: from an image file, or from one of its generated
images; the actor serves them as `icon` and `image` (instance/content/render.py).

Whatever comes in is decoded by Pillow (PNG, JPEG, GIF, WebP, at most MAX_INPUT_BYTES and
MAX_PIXELS), cropped to the shape Mastodon shows (a square avatar, a 3:1 header) around the
centre, scaled to AVATAR / HEADER, and written again as a PNG: no metadata of the original
(a phone's location, say) survives, and the stored file is always an image we made.
"""

from __future__ import annotations

import asyncio
import io
import re
from typing import Literal

from PIL import Image, ImageOps, UnidentifiedImageError

from instance.content import renditions
from instance.errors import ProfileError
from instance.runtime import Runtime
from instance.storage.ids import new_public_id
from instance.storage.models import Account

Picture = Literal["avatar", "header"]
PICTURES: tuple[Picture, ...] = ("avatar", "header")
AVATAR = (400, 400)
HEADER = (1500, 500)
MAX_INPUT_BYTES = 16 * 1024 * 1024
MAX_PIXELS = 40_000_000
FORMATS = frozenset({"PNG", "JPEG", "GIF", "WEBP"})


def unreadable(exc: Exception) -> str:
    """Why Pillow could not read a file, for the person who sent it (without the repr of
    our in-memory buffer that its messages carry)."""
    if isinstance(exc, UnidentifiedImageError):
        return "not an image file"
    return re.sub(r"\s*<[^>]* at 0x[0-9a-f]+>", "", str(exc)) or type(exc).__name__


def reshape(data: bytes, which: Picture) -> bytes:
    """The picture as we store it: cropped, scaled, PNG; ProfileError saying what is wrong."""
    if len(data) > MAX_INPUT_BYTES:
        raise ProfileError(f"the {which} image is too large (at most {MAX_INPUT_BYTES >> 20} MB)")
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format not in FORMATS:
                raise ProfileError(f"the {which} must be a PNG, JPEG, GIF or WebP image")
            if image.width * image.height > MAX_PIXELS:
                raise ProfileError(f"the {which} image has too many pixels")
            image.load()
            size = AVATAR if which == "avatar" else HEADER
            fitted = ImageOps.fit(ImageOps.exif_transpose(image).convert("RGB"), size)
    except ProfileError:
        raise
    except Exception as exc:  # Pillow raises many kinds for a broken or hostile file
        raise ProfileError(f"the {which} is not an image we can read ({unreadable(exc)})") from None
    out = io.BytesIO()
    fitted.save(out, "PNG", optimize=True)
    return out.getvalue()


async def set_picture(rt: Runtime, account: Account, which: Picture, data: bytes) -> str:
    """Store `data` as the account's avatar or header; its URL (the caller federates the
    actor Update)."""
    if account.kind == "Application":
        raise ProfileError("the instance actor has no pictures")
    png = await asyncio.to_thread(reshape, data, which)
    name = f"{new_public_id()}.png"  # the media route serves our generated names only
    await rt.media.put(name, png, "image/png")
    await renditions.make_all(rt.media, name, png)
    url = rt.urls.media(name)
    if which == "avatar":
        account.avatar_url = url
    else:
        account.header_url = url
    return url


def prompt_for(account: Account, which: Picture) -> str:
    """What to draw for a generated avatar or header: a few words, so that an AI account's
    recipe can add its persona's style (as to every prompt) within the text encoder's 77
    tokens."""
    return "a portrait avatar" if which == "avatar" else "a wide landscape banner"
