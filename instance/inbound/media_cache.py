"""Remote images, fetched by us and served from here: our pages never hotlink another server.

A visitor's browser asking another server for an image would tell that server who reads our
pages (their address, and when). So the pages show `/media/remote/<id>` for the attachment
of a remote post, and `RemoteMedia.get` fetches that attachment's own stored URL (never a
URL from the request: this is no open proxy) through the safe fetcher, once:

- only an attachment of a post that still exists is served or fetched: its author's Delete
  removes the attachment rows and the cached files (handlers/notes.py, handlers/actors.py);
- only images we can read are kept (PNG, JPEG, GIF, WebP by their bytes, within
  MAX_PIXELS and MAX_BYTES), served with the type their bytes say, never the type the
  remote claimed;
- the file goes to `<data dir>/cache/remote-media/`, named after the attachment's id;
- the fetches have their own small HTTP pool and short deadline (`rt.media_fetcher`), at
  most PER_HOST at once to one host, and a host whose fetches failed HOST_FAILURES times is
  left alone for FAILED_QUIET_S: a slow or hostile image host cannot hold every fetch;
- media whose author's domain rejects media is neither fetched nor served, and neither is
  media whose own URL is on such a domain (a post from an allowed server can carry an image
  hosted on a blocked one);
- one fetch at a time per attachment, however many visitors ask;
- a fetch that fails is not tried again for FAILED_QUIET_S;
- the disk: nothing is fetched below the inbox's free-space watermark; past
  `[federation] remote_media_cache_mb` in all, the least recently used files are deleted;
  files unused for CACHE_DAYS are deleted too (the retention worker calls `prune`).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

from cachetools import TTLCache
from PIL import Image
from sqlalchemy import ColumnElement, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from activitypub.errors import FetchError, InvalidURLError
from activitypub.urls import host_of
from instance.inbound.limits import InboxLimits
from instance.moderation import domains, suspension
from instance.runtime import Runtime
from instance.storage.models import MediaAttachment, Post

FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "GIF": "image/gif", "WEBP": "image/webp"}
MAX_PIXELS = 40_000_000
MAX_BYTES = 16 * 1024 * 1024  # Mastodon's own limit for an image
FAILED_QUIET_S = 300.0
PER_HOST = 4
HOST_FAILURES = 3
CACHE_DAYS = 7
EVICT_TO = 0.9  # past the cap, the least used files go until this share of it is left


@dataclass(frozen=True)
class Cached:
    path: Path
    media_type: str


@dataclass
class _HostGate:
    slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(PER_HOST))
    users: int = 0


class RemoteMedia:
    """The runtime's cache of remote images: `rt.service(RemoteMedia)`."""

    def __init__(self, rt: Runtime, clock: Callable[[], float] = time.monotonic) -> None:
        self.rt = rt
        self.directory = rt.settings.cache_path / "remote-media"
        self.max_bytes = rt.settings.federation.remote_media_cache_mb * 1024 * 1024
        self._failed: TTLCache[str, bool] = TTLCache(10_000, FAILED_QUIET_S, timer=clock)
        self._host_failures: TTLCache[str, int] = TTLCache(10_000, FAILED_QUIET_S, timer=clock)
        self._hosts: dict[str, _HostGate] = {}
        self._inflight: dict[str, asyncio.Future[Cached | None]] = {}
        self._stored: int | None = None  # bytes in the directory, counted on first write

    async def get(self, public_id: str) -> Cached | None:
        """The cached file of a remote attachment, fetched now if need be; None when there is
        no such attachment (or its post is gone) or its image cannot be had."""
        url = await self._url_of(public_id)
        if url is None or await self._host_rejected(url):
            return None
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
            cached = await self._fetch(public_id, url)
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

    async def _url_of(self, public_id: str) -> str | None:
        """The stored URL of a remote attachment whose post is not deleted."""
        async with self.rt.sessions() as session:
            return await session.scalar(
                select(MediaAttachment.remote_url)
                .join(Post, Post.id == MediaAttachment.post_id)
                .where(
                    MediaAttachment.public_id == public_id,
                    MediaAttachment.file_name.is_(None),
                    Post.deleted_at.is_(None),
                    ~domains.author_media_rejected(Post.account_id),  # neither fetched nor served
                    suspension.shown_author(),  # nor a suspended account's
                )
            )

    async def _host_rejected(self, url: str) -> bool:
        """The URL's own host is under a block that rejects media (or is unusable)."""
        try:
            host = host_of(url)
        except InvalidURLError:
            return True
        async with self.rt.sessions() as session:
            return domains.rejects_media(await domains.policy_for_host(session, host))

    async def _fetch(self, public_id: str, url: str) -> Cached | None:
        try:
            host = host_of(url)
        except InvalidURLError:
            return None
        if self._host_failures.get(host, 0) >= HOST_FAILURES:
            return None
        if not self.rt.service(InboxLimits).disk.ok():
            return None  # not failed: tried again once there is room
        async with self._slot(host):
            try:
                data, _claimed = await self.rt.media_fetcher.fetch_media(url, MAX_BYTES)
            except FetchError:
                self._host_failures[host] = self._host_failures.get(host, 0) + 1
                self._failed[public_id] = True
                return None
        media_type = await asyncio.to_thread(image_type, data)
        if media_type is None:
            self._failed[public_id] = True
            return None
        path = self.directory / f"{public_id}{SUFFIXES[media_type]}"
        await asyncio.to_thread(_write, path, data)
        await self._account(len(data))
        return Cached(path, media_type)

    @contextlib.asynccontextmanager
    async def _slot(self, host: str) -> AsyncIterator[None]:
        """One of PER_HOST fetches from `host`; the gate is dropped when nobody uses it."""
        gate = self._hosts.setdefault(host, _HostGate())
        gate.users += 1
        try:
            async with gate.slots:
                yield
        finally:
            gate.users -= 1
            if gate.users == 0:
                del self._hosts[host]

    async def _account(self, written: int) -> None:
        """Count what the directory holds; past the cap, delete the least recently used."""
        if self._stored is None:
            self._stored = await asyncio.to_thread(_size, self.directory)
        else:
            self._stored += written
        if self._stored > self.max_bytes:
            self._stored = await asyncio.to_thread(
                _evict, self.directory, int(self.max_bytes * EVICT_TO)
            )

    async def forget(self, public_ids: list[str]) -> None:
        """Delete the cached files of these attachments (their post was deleted)."""
        if public_ids:
            await asyncio.to_thread(_unlink_all, self.directory, public_ids)
            self._stored = None  # counted again on the next write

    async def prune(self, max_age_s: float = CACHE_DAYS * 86400) -> int:
        """Delete files unused for `max_age_s` (CACHE_DAYS by default); how many went."""
        gone = await asyncio.to_thread(_prune, self.directory, max_age_s)
        self._stored = None  # counted again on the next write
        return gone

    def stale(self, max_age_s: float) -> list[tuple[Path, int]]:
        """(path, size) of the files `prune(max_age_s)` would delete now."""
        cutoff = time.time() - max_age_s
        return sorted((path, size) for used, size, path in _files(self.directory) if used < cutoff)


async def drop_remote_media(
    session: AsyncSession, rt: Runtime, which: ColumnElement[bool]
) -> None:
    """Delete the attachment rows of deleted remote posts (`which` picks them) and their
    cached files: a deleted post's image is neither served nor fetched again."""
    gone = await session.scalars(
        delete(MediaAttachment)
        .where(which, MediaAttachment.file_name.is_(None))
        .returning(MediaAttachment.public_id)
    )
    await rt.service(RemoteMedia).forget(list(gone))


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


def _unlink_all(directory: Path, public_ids: list[str]) -> None:
    for public_id in public_ids:
        for suffix in SUFFIXES.values():
            with contextlib.suppress(OSError):
                (directory / f"{public_id}{suffix}").unlink()


def _files(directory: Path) -> list[tuple[float, int, Path]]:
    """(last used, size, path) of each cached file."""
    found = []
    if directory.is_dir():
        for path in directory.iterdir():
            with contextlib.suppress(OSError):
                stat = path.stat()
                found.append((stat.st_mtime, stat.st_size, path))
    return found


def _size(directory: Path) -> int:
    return sum(size for _, size, _ in _files(directory))


def _evict(directory: Path, keep_bytes: int) -> int:
    """Delete the least recently used files until at most `keep_bytes` remain; what remains."""
    files = sorted(_files(directory))
    total = sum(size for _, size, _ in files)
    for _, size, path in files:
        if total <= keep_bytes:
            break
        with contextlib.suppress(OSError):
            path.unlink()
            total -= size
    return total


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
