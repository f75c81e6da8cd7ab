"""Where our own images live: the one policy for storing, reading, listing and addressing them.

Our own media are the generated images, their renditions (instance/content/renditions.py)
and the avatars and headers (instance/content/pictures.py). Each is an object named by a
flat key, the file name we generated (`<id>.png`, `<id>.w320.webp`); `[media] store` says
where the objects are:

- `local` (the default): files in `<data_dir>/media`, written to a temporary name and
  renamed, mode 0644, exactly as before this module existed; `/media/<key>` serves them.
- `s3`: objects in an S3-compatible bucket (AWS, MinIO, Garage, ...) under `s3_prefix`,
  through boto3. Every SDK call runs in a worker thread (`asyncio.to_thread`), never on the
  event loop, with short connect/read timeouts and few retries, so an unreachable endpoint
  is a clear `MediaStoreError` within seconds, never a hang.

`public_base(settings)` is the one rule for our images' public URLs (federated attachments,
avatars, pages): `public_base_url` plus the prefix when set (a CDN, the bucket's own public
URL); otherwise our `/media/` route, which for `s3` streams the object from the bucket.

The generation worker (generator/worker.py, which knows nothing of this) writes each PNG into
`staging_dir`; `adopt` then makes it the object of that name. For `local` the staging dir *is*
the media dir, so adopting is a no-op; for `s3` it is `<data_dir>/media-staging`, and the
file is uploaded, then removed. A crash between the write and the upload leaves the file
behind; `prune_staging` removes staged files older than STAGING_MAX_AGE_S (an upload never
takes an hour: such a job is dead, and the queue runs it again, generating a new file). It
runs when a generation worker starts (instance/generation/worker.py) and with `dreamloom
media prune --staging`, and only for a store whose staging dir is its own (`s3`): for
`local` the staging dir is the media dir, where every old file is an image, so it never
touches anything there.

The remote media cache (instance/inbound/media_cache.py) is not here: it is a local cache of
other servers' images, refetched on demand, and stays on the local disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from instance.settings import Settings

CHUNK = 256 * 1024
S3_CONNECT_TIMEOUT_S = 3.0
S3_READ_TIMEOUT_S = 15.0
S3_ATTEMPTS = 2
STAGING_MAX_AGE_S = 3600.0  # a staged file older than this belongs to a dead job


class MediaStoreError(Exception):
    """The store cannot do what was asked (an unreachable endpoint, a refused request)."""


@dataclass(frozen=True)
class Health:
    ok: bool
    detail: str


@dataclass(frozen=True)
class Stored:
    """An object being read: its size and its bytes, a chunk at a time."""

    size: int | None
    chunks: AsyncIterator[bytes]


def public_base(settings: Settings) -> str:
    """Where our images are public: `<public_base>/<key>` (see the module docstring)."""
    media = settings.media
    if media.store == "s3" and media.public_base_url:
        return f"{media.public_base_url.rstrip('/')}/{normalized_prefix(media.s3_prefix)}"
    return f"{settings.base_url}/media/"


def normalized_prefix(prefix: str) -> str:
    """'' or 'a/b/' (the keys' prefix inside the bucket)."""
    prefix = prefix.strip("/")
    return f"{prefix}/" if prefix else ""


def check_key(key: str) -> str:
    """A key is one file name, never a path (no way out of the directory or the prefix)."""
    if not key or key in {".", ".."} or "/" in key or "\\" in key or "\0" in key:
        raise ValueError(f"{key!r} is not a media key")
    return key


class MediaStore(Protocol):
    """What every store does; keys are flat file names we generated."""

    kind: str
    staging_dir: Path

    def describe(self) -> str:
        """Where the objects are, for people (no secret in it)."""
        ...

    def public_url(self, key: str) -> str: ...

    def location(self, key: str) -> str:
        """Where the object is, for people: a file path or an s3:// address."""
        ...

    def local_path(self, key: str) -> Path | None:
        """The object's file when the store is a directory and it exists (served directly)."""
        ...

    async def put(self, key: str, data: bytes, content_type: str) -> None: ...

    async def read(self, key: str) -> bytes | None:
        """The object's bytes, or None when there is none."""
        ...

    async def open(self, key: str) -> Stored | None:
        """The object as chunks (a response streams it), or None when there is none."""
        ...

    async def exists(self, key: str) -> bool: ...

    async def delete(self, key: str) -> None:
        """Remove the object; a missing one is not an error."""
        ...

    async def keys(self) -> list[str]:
        """Every object's key, sorted (media prune)."""
        ...

    async def adopt(self, path: Path, content_type: str) -> None:
        """Make the file at `path` (in staging_dir) the object `path.name`."""
        ...

    async def check(self) -> Health:
        """Whether the store answers and takes writes (health, doctor); never raises."""
        ...


class LocalMediaStore:
    """Files in the media directory (the default; see the module docstring)."""

    kind = "local"

    def __init__(self, settings: Settings) -> None:
        self.directory = settings.media_path
        self.staging_dir = self.directory
        self._base = public_base(settings)

    def describe(self) -> str:
        return str(self.directory)

    def public_url(self, key: str) -> str:
        return f"{self._base}{key}"

    def location(self, key: str) -> str:
        return str(self._path(key))

    def _path(self, key: str) -> Path:
        return self.directory / check_key(key)

    def local_path(self, key: str) -> Path | None:
        path = self._path(key)
        return path if path.is_file() else None

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        await asyncio.to_thread(write_atomically, self._path(key), data)

    async def read(self, key: str) -> bytes | None:
        path = self._path(key)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except (FileNotFoundError, IsADirectoryError):
            return None

    async def open(self, key: str) -> Stored | None:
        data = await self.read(key)
        if data is None:
            return None

        async def chunks() -> AsyncIterator[bytes]:
            yield data

        return Stored(len(data), chunks())

    async def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._path(key).unlink, missing_ok=True)

    async def keys(self) -> list[str]:
        def names() -> list[str]:
            if not self.directory.is_dir():
                return []
            return sorted(p.name for p in self.directory.iterdir() if p.is_file())

        return await asyncio.to_thread(names)

    async def adopt(self, path: Path, content_type: str) -> None:
        if path.parent.resolve() != self.directory.resolve():  # staged elsewhere: move it in
            await self.put(path.name, await asyncio.to_thread(path.read_bytes), content_type)
            await asyncio.to_thread(path.unlink, missing_ok=True)

    async def check(self) -> Health:
        def probe() -> Health:
            try:
                self.directory.mkdir(parents=True, exist_ok=True)
                fd, name = tempfile.mkstemp(dir=self.directory, prefix=".tmp-check-")
                os.close(fd)
                os.unlink(name)
            except OSError as exc:
                return Health(False, f"{self.directory} is not writable ({exc.strerror})")
            return Health(True, f"{self.directory} writable")

        return await asyncio.to_thread(probe)


def write_atomically(path: Path, data: bytes) -> None:
    """Write to a temporary name beside `path`, then rename: no reader sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        os.fchmod(fd, 0o644)  # served to anyone, like every image in the media directory
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class S3MediaStore:
    """Objects in an S3-compatible bucket (see the module docstring)."""

    kind = "s3"

    def __init__(self, settings: Settings) -> None:
        media = settings.media
        self.bucket = media.s3_bucket
        self.endpoint = media.s3_endpoint_url
        self.prefix = normalized_prefix(media.s3_prefix)
        self.staging_dir = settings.data_path / "media-staging"
        self._base = public_base(settings)
        self._client: Any = None
        self._settings = media

    def describe(self) -> str:
        where = f" at {self.endpoint}" if self.endpoint else ""
        return f"s3://{self.bucket}/{self.prefix}{where}"

    def public_url(self, key: str) -> str:
        return f"{self._base}{key}"

    def location(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._name(key)}"

    def local_path(self, key: str) -> Path | None:
        return None

    def client(self) -> Any:
        """The boto3 client, made on first use (boto3 is the optional `s3` extra)."""
        if self._client is None:
            try:
                import boto3
                from botocore.config import Config
            except ImportError:
                raise MediaStoreError(
                    '[media] store = "s3" needs boto3: install Dreamloom with the s3 extra '
                    '(bash scripts/install.sh "s3")'
                ) from None
            m = self._settings
            config = Config(
                connect_timeout=S3_CONNECT_TIMEOUT_S,
                read_timeout=S3_READ_TIMEOUT_S,
                retries={"max_attempts": S3_ATTEMPTS, "mode": "standard"},
                s3={"addressing_style": "path" if m.s3_endpoint_url else "auto"},
            )
            self._client = boto3.session.Session().client(
                "s3",
                endpoint_url=m.s3_endpoint_url or None,
                region_name=m.s3_region or None,
                aws_access_key_id=m.s3_access_key_id or None,
                aws_secret_access_key=m.s3_secret_access_key or None,
                config=config,
            )
        return self._client

    def _name(self, key: str) -> str:
        return f"{self.prefix}{check_key(key)}"

    async def _call(self, what: str, method: str, **kwargs: Any) -> Any:
        """One SDK call in a worker thread; its failure as a MediaStoreError saying what."""
        from botocore.exceptions import BotoCoreError, ClientError

        client = self.client()
        try:
            return await asyncio.to_thread(getattr(client, method), **kwargs)
        except ClientError as exc:
            if _missing(exc):
                raise _Missing from None
            raise MediaStoreError(f"{what} on {self.describe()} was refused: {exc}") from None
        except BotoCoreError as exc:
            raise MediaStoreError(f"{what} on {self.describe()} failed: {exc}") from None

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        await self._call(
            f"storing {key}", "put_object", Bucket=self.bucket, Key=self._name(key), Body=data,
            ContentType=content_type, CacheControl="public, max-age=31536000, immutable",
        )  # fmt: skip

    async def read(self, key: str) -> bytes | None:
        stored = await self.open(key)
        if stored is None:
            return None
        return b"".join([chunk async for chunk in stored.chunks])

    async def open(self, key: str) -> Stored | None:
        try:
            answer = await self._call(
                f"reading {key}", "get_object", Bucket=self.bucket, Key=self._name(key)
            )
        except _Missing:
            return None
        body = answer["Body"]

        async def chunks() -> AsyncIterator[bytes]:
            try:
                while chunk := await asyncio.to_thread(body.read, CHUNK):
                    yield chunk
            finally:
                await asyncio.to_thread(body.close)

        size = answer.get("ContentLength")
        return Stored(int(size) if size is not None else None, chunks())

    async def exists(self, key: str) -> bool:
        try:
            await self._call(f"looking up {key}", "head_object", Bucket=self.bucket,
                             Key=self._name(key))  # fmt: skip
        except _Missing:
            return False
        return True

    async def delete(self, key: str) -> None:
        with contextlib.suppress(_Missing):  # S3 answers 204 anyway; some servers 404
            await self._call(f"deleting {key}", "delete_object", Bucket=self.bucket,
                             Key=self._name(key))  # fmt: skip

    async def keys(self) -> list[str]:
        found: list[str] = []
        token: str | None = None
        while True:
            args: dict[str, Any] = {"Bucket": self.bucket, "Prefix": self.prefix}
            if token:
                args["ContinuationToken"] = token
            try:
                page = await self._call("listing the objects", "list_objects_v2", **args)
            except _Missing:
                raise MediaStoreError(f"no bucket {self.bucket!r} at {self.describe()}") from None
            for item in page.get("Contents", []):
                name = str(item["Key"])[len(self.prefix) :]
                if name and "/" not in name:  # deeper keys are not ours
                    found.append(name)
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return sorted(found)

    async def adopt(self, path: Path, content_type: str) -> None:
        data = await asyncio.to_thread(path.read_bytes)
        await self.put(path.name, data, content_type)
        await asyncio.to_thread(path.unlink, missing_ok=True)

    async def check(self) -> Health:
        try:
            await self._call("checking the bucket", "head_bucket", Bucket=self.bucket)
        except _Missing:
            return Health(False, f"no bucket {self.bucket!r} at {self.describe()}")
        except MediaStoreError as exc:
            return Health(False, str(exc))
        return Health(True, f"{self.describe()} reachable")


class _Missing(Exception):
    """The object (or bucket) is not there: a normal answer, not a failure."""


def _missing(exc: Any) -> bool:
    code = str(exc.response.get("Error", {}).get("Code", ""))
    return code in {"404", "NoSuchKey", "NoSuchBucket", "NotFound"}


@dataclass(frozen=True)
class StagingPrune:
    """Staged files left by dead jobs: which, how many bytes, how many were removed."""

    directory: Path | None  # None: the store has no staging dir of its own (nothing looked at)
    files: list[str]
    bytes: int
    removed: int
    dry_run: bool

    def as_json(self) -> dict[str, Any]:
        return {
            "directory": str(self.directory) if self.directory else None,
            "files": self.files,
            "bytes": self.bytes,
            "removed": self.removed,
            "dry_run": self.dry_run,
        }


def own_staging_dir(store: MediaStore) -> Path | None:
    """The store's staging dir when it holds nothing but staged uploads (`s3`); None for
    `local`, whose staging dir is the media dir itself (see the module docstring)."""
    return store.staging_dir if isinstance(store, S3MediaStore) else None


def prune_staging(
    store: MediaStore,
    max_age_s: float = STAGING_MAX_AGE_S,
    *,
    dry_run: bool = False,
    now: float | None = None,
) -> StagingPrune:
    """Remove (with dry_run only list) the staged files not modified for max_age_s, in the
    store's own staging dir only; blocking file work (call it in a thread from async code)."""
    directory = own_staging_dir(store)
    if directory is None or not directory.is_dir():
        return StagingPrune(directory, [], 0, 0, dry_run)
    cutoff = (time.time() if now is None else now) - max_age_s
    files: list[str] = []
    size = removed = 0
    for entry in sorted(directory.iterdir()):
        try:
            info = entry.lstat()
        except FileNotFoundError:  # uploaded and removed meanwhile
            continue
        if not stat.S_ISREG(info.st_mode) or info.st_mtime >= cutoff:
            continue
        files.append(str(entry))
        size += info.st_size
        if not dry_run:
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()
                removed += 1
    return StagingPrune(directory, files, size, removed, dry_run)


def make_media_store(settings: Settings) -> MediaStore:
    """The store `[media] store` names."""
    if settings.media.store == "s3":
        return S3MediaStore(settings)
    return LocalMediaStore(settings)
