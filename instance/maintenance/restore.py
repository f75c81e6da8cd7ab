"""`dreamloom restore PATH`: an archive from backup.py back onto an instance.

The rules, in the order they are applied:

1. every member is checked before anything changes: only regular files and directories,
   with relative names inside ARCHIVE_ROOTS (or config.toml / manifest.json): no absolute
   path, no `..`, no link, no device; every file's sha256 and size must match the manifest
   and the manifest must name nothing that is missing;
2. only an empty instance is restored onto (no local account besides the instance actor,
   no post at all), unless `force`;
3. the target keeps its own database URL, data dir and media store: config.toml comes back
   from the archive with this instance's `[database] url`, `[instance] data_dir` and
   `[media]` section;
4. a SQLite backup goes to a SQLite instance, a PostgreSQL one to PostgreSQL; the other way
   round is refused (convert by hand: the dump formats differ);
5. the C2PA key and the database file are written 0600 (the c2pa dir 0700), media 0644;
6. the schema is migrated to head afterwards (a backup from an older version comes up);
7. the archive's media go into this instance's media store (instance/storage/media_store.py):
   the local media dir is emptied first and refilled; with `[media] store = "s3"` each file
   is uploaded to the bucket under its name (nothing else in the bucket is deleted), so a
   local backup moves its images into a bucket. An archive made on an S3 instance has no
   media: they stayed in that bucket.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tarfile
import tempfile
import tomllib
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

import tomli_w
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from instance.errors import UserError
from instance.maintenance.backup import (
    ARCHIVE_ROOTS,
    CHUNK,
    CONFIG,
    MANIFEST,
    PG_MEMBER,
    SQLITE_MEMBER,
    find_pg_tool,
    libpq_target,
    run_tool,
)
from instance.settings import Settings
from instance.storage.db import is_sqlite, make_engine, make_sessionmaker
from instance.storage.media_store import MediaStore, check_key, make_media_store
from instance.storage.migrate import current_revision, upgrade
from instance.storage.models import Account, Post
from instance.urls import INSTANCE_ACTOR_USERNAME

Progress = Callable[[str], None]


def _member_problem(member: tarfile.TarInfo) -> str | None:
    name = member.name
    parts = PurePosixPath(name).parts
    if name.startswith("/") or PurePosixPath(name).is_absolute():
        return "an absolute path"
    if ".." in parts or not parts:
        return "a '..' path"
    if "/".join(parts) != name.rstrip("/") or "\\" in name:
        return "a non-canonical path (empty or '.' parts)"
    if member.issym() or member.islnk():
        return "a link"
    if not (member.isfile() or member.isdir()):
        return "a device or other special file"
    if member.isfile() and name not in (MANIFEST, CONFIG) and parts[0] not in ARCHIVE_ROOTS:
        return "a file outside database/, media/, c2pa/"
    return None


def verify(path: Path, progress: Progress) -> dict[str, Any]:
    """Check every member and checksum (rule 1); the manifest. Changes nothing."""
    if not path.is_file():
        raise UserError(f"no backup file at {path}")
    seen: dict[str, tuple[str, int]] = {}
    manifest: dict[str, Any] | None = None
    try:
        with tarfile.open(path, "r:gz") as tar:
            for member in tar:
                problem = _member_problem(member)
                if problem:
                    raise UserError(f"refused: {path} holds {problem} ({member.name!r})")
                if not member.isfile():
                    continue
                if member.name in seen or (member.name == MANIFEST and manifest is not None):
                    raise UserError(f"refused: {path} holds {member.name!r} twice")
                f = tar.extractfile(member)
                assert f is not None
                if member.name == MANIFEST:
                    manifest = json.loads(f.read(4 * 1024 * 1024))
                    continue
                digest = hashlib.sha256()
                while chunk := f.read(CHUNK):
                    digest.update(chunk)
                seen[member.name] = (digest.hexdigest(), member.size)
                progress(member.name)
    except (tarfile.TarError, OSError, EOFError, json.JSONDecodeError) as exc:
        raise UserError(f"{path} is not a readable Dreamloom backup ({exc})") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise UserError(f"{path} has no manifest.json: not a Dreamloom backup")
    listed: dict[str, Any] = manifest["files"]
    for name, entry in listed.items():
        if name not in seen:
            raise UserError(f"{path} is incomplete: {name!r} is in the manifest but missing")
        if seen[name] != (entry.get("sha256"), entry.get("size")):
            raise UserError(f"checksum mismatch for {name!r} in {path}: the archive is damaged")
    extra = sorted(set(seen) - set(listed))
    if extra:
        raise UserError(f"refused: {path} holds {extra[0]!r}, which its manifest does not list")
    if manifest.get("database") not in ("sqlite", "postgresql"):
        raise UserError(f"{path}: the manifest names no database kind")
    return manifest


async def instance_contents(settings: Settings) -> tuple[int, int]:
    """(local accounts besides the instance actor, posts) in the target's database."""
    engine = make_engine(settings.database_url)
    try:
        await upgrade(engine)
        async with make_sessionmaker(engine)() as s:
            accounts = await s.scalar(
                select(func.count())
                .select_from(Account)
                .where(Account.local, Account.username != INSTANCE_ACTOR_USERNAME)
            )
            posts = await s.scalar(select(func.count()).select_from(Post))
        return int(accounts or 0), int(posts or 0)
    finally:
        await engine.dispose()


def check_target(settings: Settings, manifest: dict[str, Any], contents: tuple[int, int],
                 force: bool) -> None:  # fmt: skip
    """Rules 2 and 4."""
    ours = "sqlite" if is_sqlite(settings.database_url) else "postgresql"
    if manifest["database"] != ours:
        raise UserError(
            f"the backup holds a {manifest['database']} database and this instance uses "
            f"{ours}: restore it onto a {manifest['database']} instance (no conversion)"
        )
    accounts, posts = contents
    if (accounts or posts) and not force:
        raise UserError(
            f"this instance is not empty ({accounts} local accounts, {posts} posts): restore "
            "onto a new instance, or pass --force to replace everything here"
        )


def _inside(root: Path, name: str) -> Path:
    """`root` joined with the member's name below its top folder, never a path outside
    `root` (an absolute remainder such as `media//etc/x` would otherwise replace it)."""
    target = root.joinpath(*PurePosixPath(name).parts[1:])
    if not target.resolve().is_relative_to(root.resolve()):
        raise UserError(f"refused: {name!r} points outside {root}")
    return target


MEDIA_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".webp": "image/webp"}


async def _upload(store: MediaStore, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
    """One archived media file into the store, under its file name."""
    parts = PurePosixPath(member.name).parts
    if len(parts) != 2:
        raise UserError(f"refused: {member.name!r} is not a media file name")
    source = tar.extractfile(member)
    assert source is not None
    media_type = MEDIA_TYPES.get(PurePosixPath(parts[1]).suffix, "application/octet-stream")
    await store.put(check_key(parts[1]), source.read(), media_type)


def _extract_to(tar: tarfile.TarFile, member: tarfile.TarInfo, target: Path, mode: int) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    source = tar.extractfile(member)
    assert source is not None
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            shutil.copyfileobj(source, f, CHUNK)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _restore_sqlite(settings: Settings, dumped: Path) -> None:
    database = make_url(settings.database_url).database
    assert database
    target = Path(database)
    for suffix in ("-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            Path(f"{target}{suffix}").unlink()
    os.chmod(dumped, 0o600)
    os.replace(dumped, target)


async def _restore_postgres(settings: Settings, dumped: Path) -> None:
    engine = make_engine(settings.database_url)
    try:
        async with engine.begin() as conn:
            tables = await conn.scalars(
                text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
            )
            for table in list(tables):
                await conn.execute(text(f'DROP TABLE IF EXISTS "{table}" CASCADE'))
    finally:
        await engine.dispose()
    dsn, env = libpq_target(settings.database_url)
    run_tool(
        [find_pg_tool("pg_restore"), "--no-owner", "--no-privileges", "--single-transaction",
         "--exit-on-error", f"--dbname={dsn}", str(dumped)],
        env,
    )  # fmt: skip


def restored_config(settings: Settings, archived: bytes) -> bytes:
    """The archive's config.toml with this instance's database URL, data dir and [media]
    (rule 3)."""
    data = tomllib.loads(archived.decode())
    assert settings.config_path is not None
    ours = tomllib.loads(settings.config_path.read_text(encoding="utf-8"))
    for section, key in (("database", "url"), ("instance", "data_dir")):
        data.get(section, {}).pop(key, None)
        if key in ours.get(section, {}):
            data.setdefault(section, {})[key] = ours[section][key]
    data.pop("media", None)  # where this instance keeps its images (rule 7) stays as it is
    if "media" in ours:
        data["media"] = ours["media"]
    data = {k: v for k, v in data.items() if v != {}}
    return tomli_w.dumps(data).encode()


async def restore(
    settings: Settings, path: Path, manifest: dict[str, Any], progress: Progress
) -> str | None:
    """Put the verified archive in place (rules 3, 5, 6); the schema revision after."""
    media, c2pa = settings.media_path, settings.data_path / "c2pa"
    bucket = make_media_store(settings) if settings.media.store != "local" else None
    with tempfile.TemporaryDirectory(prefix="dreamloom-restore-", dir=settings.data_path) as tmp:
        staging = Path(tmp)
        dumped: Path | None = None
        config: bytes | None = None
        with tarfile.open(path, "r:gz") as tar:
            members = [m for m in tar.getmembers() if m.isfile() and m.name != MANIFEST]
            has_media = any(m.name.startswith("media/") for m in members)
            if bucket is None and has_media and media.is_dir():
                for old in media.iterdir():
                    if old.is_file():
                        old.unlink()
            for member in members:
                name = member.name
                if name in (SQLITE_MEMBER, PG_MEMBER):
                    dumped = staging / PurePosixPath(name).name
                    _extract_to(tar, member, dumped, 0o600)
                elif name == CONFIG:
                    f = tar.extractfile(member)
                    assert f is not None
                    config = f.read()
                elif name.startswith("media/") and bucket is not None:
                    await _upload(bucket, tar, member)
                elif name.startswith("media/"):
                    _extract_to(tar, member, _inside(media, name), 0o644)
                elif name.startswith("c2pa/"):
                    c2pa.mkdir(parents=True, exist_ok=True)
                    os.chmod(c2pa, 0o700)
                    _extract_to(tar, member, _inside(c2pa, name), 0o600)
                progress(name)
        if dumped is None:
            raise UserError(f"{path} holds no database")
        if manifest["database"] == "sqlite":
            _restore_sqlite(settings, dumped)
        else:
            await _restore_postgres(settings, dumped)
    if config is not None and settings.config_path is not None:
        new = restored_config(settings, config)
        fd, tmp_name = tempfile.mkstemp(dir=settings.config_path.parent, prefix=".tmp-")
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(new)
        os.replace(tmp_name, settings.config_path)
    engine = make_engine(settings.database_url)
    try:
        await upgrade(engine)
        return await current_revision(engine)
    finally:
        await engine.dispose()
