"""`dreamloom backup PATH`: the whole instance as one .tar.gz.

What goes in (ARCHIVE_ROOTS names the places; restore.py accepts nothing else):

    database/dreamloom.sqlite   SQLite: a copy made by sqlite3's online backup API
    database/dreamloom.pgdump   PostgreSQL: `pg_dump --format=custom`
    media/...                   the media dir (local images, avatars, headers)
    c2pa/...                    the C2PA signing key and certificate chain
    config.toml                 the instance's configuration
    manifest.json               written last: sha256 and size of every other member, the
                                schema revision, the Dreamloom version, the database kind

The accounts' signing keys are rows in the database, so they travel with it. The remote
media cache is not backed up: it is fetched again on demand. With `[media] store = "s3"`
the images are not copied out of the bucket either: the manifest's `media` says where they
are, and the bucket is backed up with the object store's own tooling (versioning,
replication, `rclone`/`aws s3 sync`); `media_note` is the line the CLI prints about it.

The archive is written to a temporary name in the target directory and renamed only once
complete; any failure, an interrupt included, deletes the temporary file: a half-written
archive is never left behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from glob import glob
from pathlib import Path
from typing import IO, Any

from sqlalchemy.engine import make_url

from instance import __version__
from instance.errors import UserError
from instance.settings import Settings
from instance.storage.db import is_sqlite, make_engine
from instance.storage.media_store import make_media_store
from instance.storage.migrate import current_revision

FORMAT = 1
MANIFEST = "manifest.json"
CONFIG = "config.toml"
SQLITE_MEMBER = "database/dreamloom.sqlite"
PG_MEMBER = "database/dreamloom.pgdump"
ARCHIVE_ROOTS = ("database", "media", "c2pa")
CHUNK = 1024 * 1024

Progress = Callable[[str], None]  # told each member's name as it is added


def find_pg_tool(name: str) -> str:
    """`pg_dump` / `pg_restore` on PATH, else the newest under /usr/lib/postgresql/*/bin."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(
        glob(f"/usr/lib/postgresql/*/bin/{name}"),
        key=lambda p: [int(x) if x.isdigit() else 0 for x in Path(p).parts[-3].split(".")],
    )
    if candidates:
        return candidates[-1]
    raise UserError(
        f"{name} was not found (not on PATH, nor under /usr/lib/postgresql/*/bin): install "
        "the PostgreSQL client tools (e.g. the postgresql-client package)"
    )


def libpq_target(url: str) -> tuple[str, dict[str, str]]:
    """A SQLAlchemy PostgreSQL URL as a libpq connection string, and the environment that
    carries its password (never on the command line)."""
    parsed = make_url(url)
    env = dict(os.environ)
    if parsed.password:
        env["PGPASSWORD"] = str(parsed.password)
    plain = parsed.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def run_tool(args: list[str], env: dict[str, str]) -> None:
    # args[0] is pg_dump/pg_restore found by find_pg_tool; no shell
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()
        raise UserError(f"{Path(args[0]).name} failed: {tail[-1] if tail else done.returncode}")


def dump_database(settings: Settings, into: Path) -> tuple[str, Path]:
    """The database copied into directory `into`: (archive member name, file)."""
    url = settings.database_url
    if is_sqlite(url):
        source = make_url(url).database
        if not source or not Path(source).is_file():
            raise UserError(f"no SQLite database at {source}")
        target = into / "dreamloom.sqlite"
        with (
            contextlib.closing(sqlite3.connect(source)) as src,
            contextlib.closing(sqlite3.connect(target)) as dst,
        ):
            src.backup(dst)  # a consistent copy while the server keeps writing
        return SQLITE_MEMBER, target
    target = into / "dreamloom.pgdump"
    dsn, env = libpq_target(url)
    run_tool(
        [find_pg_tool("pg_dump"), "--format=custom", "--no-owner", "--no-privileges",
         f"--file={target}", f"--dbname={dsn}"],
        env,
    )  # fmt: skip
    return PG_MEMBER, target


async def schema_revision(settings: Settings) -> str | None:
    engine = make_engine(settings.database_url)
    try:
        return await current_revision(engine)
    finally:
        await engine.dispose()


class _Hashing(io.RawIOBase):
    """Reads through to `inner`, hashing what passes."""

    def __init__(self, inner: IO[bytes]) -> None:
        self.inner = inner
        self.digest = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self.inner.read(size)
        self.digest.update(data)
        return data


@dataclass
class Archive:
    tar: tarfile.TarFile
    files: dict[str, dict[str, Any]]
    progress: Progress

    def add_file(self, name: str, path: Path) -> None:
        """One regular file, hashed as it is written."""
        with path.open("rb") as f:
            info = self.tar.gettarinfo(fileobj=f, arcname=name)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            hashing = _Hashing(f)
            self.tar.addfile(info, hashing)
        self.files[name] = {"sha256": hashing.digest.hexdigest(), "size": info.size}
        self.progress(name)

    def add_tree(self, root: str, directory: Path) -> None:
        if not directory.is_dir():
            return
        for path in sorted(directory.rglob("*")):
            if path.is_file() and not path.is_symlink() and not path.name.startswith(".tmp-"):
                self.add_file(f"{root}/{path.relative_to(directory).as_posix()}", path)

    def add_bytes(self, name: str, data: bytes) -> None:
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.mtime = len(data), 0o600, int(time.time())
        self.tar.addfile(info, io.BytesIO(data))


def target_path(path: Path, settings: Settings) -> Path:
    """PATH itself, or a dated name inside PATH when it is a directory."""
    if path.is_dir():
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        host = settings.host.replace(":", "_")
        return path / f"dreamloom-backup-{host}-{stamp}.tar.gz"
    if path.exists():
        raise UserError(f"{path} exists: choose a new file name (or a directory)")
    if not path.parent.is_dir():
        raise UserError(f"no directory {path.parent} to write the backup into")
    return path


def _media_location(settings: Settings) -> str:
    if settings.media.store == "local":
        return "archive"
    return make_media_store(settings).describe()


def media_note(manifest: dict[str, Any]) -> str | None:
    """What a backup says about media it did not copy (a bucket), or None."""
    where = manifest.get("media", "archive")
    if where == "archive":
        return None
    return (
        f"media not in this archive: they are in {where}; back the bucket up with the object "
        "store's own tooling (versioning, replication or a sync to another bucket)"
    )


def write_backup(
    settings: Settings, target: Path, revision: str | None, progress: Progress
) -> dict[str, Any]:
    """Write the archive to `target` (see the module docstring); its manifest."""
    fd, partial_name = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.name}.", suffix=".partial"
    )
    partial = Path(partial_name)
    try:
        os.fchmod(fd, 0o600)  # it holds every private key
        with (
            tempfile.TemporaryDirectory(prefix="dreamloom-backup-") as staging,
            os.fdopen(fd, "wb") as raw,
            tarfile.open(fileobj=raw, mode="w:gz") as tar,
        ):
            archive = Archive(tar, {}, progress)
            member, dumped = dump_database(settings, Path(staging))
            archive.add_file(member, dumped)
            if settings.config_path and settings.config_path.is_file():
                archive.add_file(CONFIG, settings.config_path)
            if settings.media.store == "local":
                archive.add_tree("media", settings.media_path)
            archive.add_tree("c2pa", settings.data_path / "c2pa")
            manifest = {
                "format": FORMAT,
                "dreamloom_version": __version__,
                "schema_revision": revision,
                "database": "sqlite" if member == SQLITE_MEMBER else "postgresql",
                "domain": settings.host,
                "created_at": datetime.now(UTC).isoformat(),
                "files": archive.files,
                "media": _media_location(settings),
            }
            archive.add_bytes(MANIFEST, json.dumps(manifest, indent=2).encode())
        with partial.open("rb") as done:
            os.fsync(done.fileno())
        os.replace(partial, target)
    except BaseException:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise
    return manifest
