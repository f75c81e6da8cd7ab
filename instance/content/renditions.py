"""Smaller copies of a local image for `srcset`: the rule and the one place that makes them.

A stored image `<name>.png` (a generated picture, an avatar) gets a WebP copy at each width
in WIDTHS that is *smaller* than the original, named `<name>.w<width>.webp` next to it in the
media store (instance/storage/media_store.py), its height in proportion. They are written
when the image is stored (`make_all`) and, for older images, on the first request for one
(`ensure`): the store writes atomically (a temporary name renamed, or one S3 PUT), so two
requests at once never serve a half-written file, and no lock is needed. Where pages link
the bucket directly (S3 with `public_base_url`) no request reaches us, so the older images'
renditions are made ahead by one walk of the store (instance/content/rendition_backfill.py,
`dreamloom media renditions`). A width not in WIDTHS, or not smaller than the original, is
no rendition (the media route answers 404).
"""

from __future__ import annotations

import asyncio
import io
import re

from PIL import Image

from instance.storage.media_store import MediaStore

WIDTHS = (320, 640)
MEDIA_TYPE = "image/webp"
NAME = re.compile(r"^([0-9a-z]{20,64}\.(?:png|jpg))$")
RENDITION = re.compile(r"^([0-9a-z]{20,64})\.w(\d{3,4})\.webp$")


def widths_for(width: int | None) -> list[int]:
    """The rendition widths an image `width` pixels wide has (none when unknown)."""
    return [w for w in WIDTHS if width and w < width]


def rendition_name(name: str, width: int) -> str:
    return f"{name.rsplit('.', 1)[0]}.w{width}.webp"


def parse(name: str) -> tuple[str, int] | None:
    """(stem, width) of a rendition's file name, or None when it is not one."""
    found = RENDITION.match(name)
    if found is None or int(found.group(2)) not in WIDTHS:
        return None
    return found.group(1), int(found.group(2))


async def original_of(store: MediaStore, stem: str) -> str | None:
    """The key of the stored original a rendition stem belongs to (PNG or JPEG), if any."""
    for ext in ("png", "jpg"):
        if await store.exists(f"{stem}.{ext}"):
            return f"{stem}.{ext}"
    return None


def render(data: bytes, width: int) -> bytes | None:
    """The WebP copy of the image `data` at `width`; None when the image is not wider."""
    with Image.open(io.BytesIO(data)) as image:
        if width not in WIDTHS or image.width <= width:
            return None
        height = max(1, round(image.height * width / image.width))
        small = image.convert("RGB").resize((width, height), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    small.save(out, "WEBP", quality=82, method=4)
    return out.getvalue()


async def ensure(
    store: MediaStore, original: str, width: int, data: bytes | None = None
) -> str | None:
    """The key of `original`'s rendition at `width`, made now if it is missing (from `data`
    when the caller has the original's bytes); None when the image is not wider than `width`
    or is gone. The store writes it atomically (a temporary name, then a rename, locally)."""
    target = rendition_name(original, width)
    if await store.exists(target):
        return target
    if data is None:
        data = await store.read(original)
        if data is None:
            return None
    small = await asyncio.to_thread(render, data, width)
    if small is None:
        return None
    await store.put(target, small, MEDIA_TYPE)
    return target


async def make_all(store: MediaStore, original: str, data: bytes | None = None) -> list[str]:
    """Every rendition of a just-stored image (see the module docstring)."""
    if data is None:
        data = await store.read(original)
    made = []
    for width in WIDTHS:
        key = await ensure(store, original, width, data)
        if key is not None:
            made.append(key)
    return made


def names_of(name: str) -> list[str]:
    """The file names every rendition of the stored image `name` would have."""
    return [rendition_name(name, w) for w in WIDTHS]


def is_rendition_of_one(name: str, originals: set[str]) -> bool:
    """Whether `name` is a rendition of one of the stored images named in `originals` (a
    rendition of an image no row names is an orphan, like the image)."""
    parsed = parse(name)
    return parsed is not None and any(f"{parsed[0]}.{ext}" in originals for ext in ("png", "jpg"))


async def remove_all(store: MediaStore, original: str) -> None:
    """Drop an image's renditions (with the image itself, by its caller)."""
    for name in names_of(original):
        await store.delete(name)
