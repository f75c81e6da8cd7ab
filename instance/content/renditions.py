"""Smaller copies of a local image for `srcset`: the rule and the one place that makes them.

A stored image `<name>.png` (a generated picture, an avatar) gets a WebP copy at each width
in WIDTHS that is *smaller* than the original, named `<name>.w<width>.webp` next to it, its
height in proportion. They are written when the image is stored (`make_all`) and, for older
images, on the first request for one (`ensure`): written to a temporary name and renamed, so
two requests at once never serve a half-written file, and no lock is needed. A width not in
WIDTHS, or not smaller than the original, is no rendition (the media route answers 404).
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from PIL import Image

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


def original_of(media_path: Path, stem: str) -> Path | None:
    """The stored original a rendition stem belongs to (PNG or JPEG), if it exists."""
    for ext in ("png", "jpg"):
        path = media_path / f"{stem}.{ext}"
        if path.is_file():
            return path
    return None


def ensure(original: Path, width: int) -> Path | None:
    """The rendition of `original` at `width`, made now if it is missing; None when the
    image is not wider than `width` (no rendition of that width exists)."""
    target = original.with_name(rendition_name(original.name, width))
    if target.is_file():
        return target
    with Image.open(original) as image:
        if width not in WIDTHS or image.width <= width:
            return None
        height = max(1, round(image.height * width / image.width))
        small = image.convert("RGB").resize((width, height), Image.Resampling.LANCZOS)
    fd, tmp = tempfile.mkstemp(dir=original.parent, prefix=".tmp-", suffix=".webp")
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "wb") as f:
            small.save(f, "WEBP", quality=82, method=4)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def make_all(original: Path) -> list[Path]:
    """Every rendition of a just-stored image (see the module docstring)."""
    made = []
    for width in WIDTHS:
        path = ensure(original, width)
        if path is not None:
            made.append(path)
    return made


def names_of(name: str) -> list[str]:
    """The file names every rendition of the stored image `name` would have."""
    return [rendition_name(name, w) for w in WIDTHS]


def is_rendition_of_one(name: str, originals: set[str]) -> bool:
    """Whether `name` is a rendition of one of the stored images named in `originals` (a
    rendition of an image no row names is an orphan, like the image)."""
    parsed = parse(name)
    return parsed is not None and any(f"{parsed[0]}.{ext}" in originals for ext in ("png", "jpg"))


def remove_all(original: Path) -> None:
    """Drop an image's renditions (with the image itself, by its caller)."""
    for width in WIDTHS:
        original.with_name(rendition_name(original.name, width)).unlink(missing_ok=True)
