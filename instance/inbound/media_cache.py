"""Remote images, fetched by us and served from here: our pages never hotlink another server.

A visitor's browser asking another server for an image would tell that server who reads our
pages (their address, and when). So the pages show `/media/remote/<id>` for the attachment
of a remote post, and `RemoteMedia.get` fetches that attachment's own stored URL (never a
URL from the request: this is no open proxy) through the safe fetcher, once:

- only images we can read are kept (PNG, JPEG, GIF, WebP by their bytes, within
  MAX_PIXELS), served with the type their bytes say, never the type the remote claimed;
- the file goes to `<data dir>/cache/remote-media/`, named after the attachment's id;
- one fetch at a time per attachment, however many visitors ask;
- a fetch that fails is not tried again for FAILED_QUIET_S;
- files unused for CACHE_DAYS are deleted (the retention worker calls `prune`).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cachetools import TTLCache
from PIL import Image
from sqlalchemy import select

from activitypub.errors import FetchError
from instance.runtime import Runtime
from instance.storage.models import MediaAttachment

FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "GIF": "image/gif", "WEBP": "image/webp"}
MAX_PIXELS = 40_000_000
FAILED_QUIET_S = 300.0
CACHE_DAYS = 7


@dataclass(frozen=True)
class Cached:
    path: Path
    media_type: str


class RemoteMedia:
    """The runtime's cache of remote images: `rt.service(RemoteMedia)`."""

    def __init__(self, rt: Runtime, clock: Callable[[], float] = time.monotonic) -> None:
        self.rt = rt
        self.directory = rt.settings.cache_path / "remote-media"
        self._failed: TTLCache[str, bool] = TTLCache(10_000, FAILED_QUIET_S, timer=clock)
        self._inflight: dict[str, asyncio.Future[Cached | None]] = {}

    async def get(self, public_id: str) -> Cached | None:
        """The cached file of a remote attachment, fetched now if need be; None when there is
        no such attachment or its image cannot be had."""
        found = self._on_disk(public_id)
        if found is not None:
            return found
        if public_id in self._failed:
            return None
        pending = self._inflight.get(public_id)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Cached | None] = asyncio.get_running_loop().create_future()
        self._inflight[public_id] = future
        try:
            cached = await self._fetch(public_id)
            if cached is None:
                self._failed[public_id] = True
            future.set_result(cached)
            return cached
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()
            raise
        finally:
            del self._inflight[public_id]

    def _on_disk(self, public_id: str) -> Cached | None:
        for media_type, suffix in SUFFIXES.items():
            path = self.directory / f"{public_id}{suffix}"
            if path.is_file():
                with contextlib.suppress(OSError):
                    os.utime(path)  # used now: kept CACHE_DAYS more
                return Cached(path, media_type)
        return None

    async def _fetch(self, public_id: str) -> Cached | None:
        async with self.rt.sessions() as session:
            url = await session.scalar(
                select(MediaAttachment.remote_url).where(
                    MediaAttachment.public_id == public_id, MediaAttachment.file_name.is_(None)
                )
            )
        if not url:
            return None
        try:
            data, _claimed = await self.rt.fetcher.fetch_media(url)
        except FetchError:
            return None
        media_type = await asyncio.to_thread(image_type, data)
        if media_type is None:
            return None
        path = self.directory / f"{public_id}{SUFFIXES[media_type]}"
        await asyncio.to_thread(_write, path, data)
        return Cached(path, media_type)

    async def prune(self) -> int:
        """Delete files unused for CACHE_DAYS; how many went."""
        return await asyncio.to_thread(_prune, self.directory, CACHE_DAYS * 86400)


SUFFIXES = {"image/png": ".png", "image/jpeg": ".jpg", "image/gif": ".gif", "image/webp": ".webp"}


def image_type(data: bytes) -> str | None:
    """What the bytes are, if an image we show: by its own header, within MAX_PIXELS."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format not in FORMATS or image.width * image.height > MAX_PIXELS:
                return None
            image.verify()
            return FORMATS[image.format]
    except Exception:  # Pillow raises many kinds for bad or hostile files
        return None


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _prune(directory: Path, max_age_s: float) -> int:
    if not directory.is_dir():
        return 0
    cutoff, gone = time.time() - max_age_s, 0
    for path in directory.iterdir():
        with contextlib.suppress(OSError):
            if path.stat().st_mtime < cutoff:
                path.unlink()
                gone += 1
    return gone
