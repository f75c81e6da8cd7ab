"""`dreamloom media prune`: cached remote images past an age, and orphans in the media store.

The rules:

- a cached remote image is deleted by the media cache's own code (`RemoteMedia.prune`,
  the same path the retention worker takes), only when unused for longer than the age;
- an object in the media store (instance/storage/media_store.py: the media dir, or the S3
  bucket under its prefix, listed and deleted through the store) is an orphan when nothing
  names it: no attachment row, no local account's avatar or header, no generation job's
  result, and it is no rendition of a named image;
- a row is an orphan when it names a local file that is not there: an attachment row, or a
  local account's avatar/header URL;
- `--fix` deletes orphan files, deletes orphan attachment rows (the post stays, without the
  image) and clears an avatar/header URL whose file is gone; nothing else is touched;
- `--staging` deletes what a crash left in an S3 store's upload staging dir, files older than
  an hour (`prune_staging`, instance/storage/media_store.py; a local store's staging dir is
  its media dir, never touched).
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, select

from instance.content import renditions
from instance.errors import UserError
from instance.inbound.media_cache import RemoteMedia
from instance.runtime import Runtime
from instance.storage.media_store import STAGING_MAX_AGE_S, prune_staging
from instance.storage.models import Account, GenerationJob, MediaAttachment

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)


def parse_duration(text: str) -> float:
    """'30d', '12h', '90m', '45s', '2w' -> seconds; anything else is a UserError."""
    found = _DURATION.match(text)
    if not found:
        raise UserError(
            f"cannot read the duration {text!r}: write a number and a unit, e.g. 30d, 12h, 90m"
        )
    return float(found.group(1)) * UNITS[found.group(2).lower()]


@dataclass
class Orphans:
    files: list[str] = field(default_factory=list)  # keys in the media store, named by nothing
    locations: list[str] = field(default_factory=list)  # the same, as paths or s3:// addresses
    media_rows: list[tuple[int, str]] = field(default_factory=list)  # (row id, missing file)
    pictures: list[tuple[int, str, str]] = field(default_factory=list)  # (account, which, file)

    def as_json(self) -> dict[str, Any]:
        return {
            "files": self.locations,
            "media_rows": [{"id": i, "file_name": n} for i, n in self.media_rows],
            "pictures": [
                {"account_id": a, "which": w, "file_name": n} for a, w, n in self.pictures
            ],
        }


async def prune_remote(rt: Runtime, max_age_s: float, *, dry_run: bool) -> dict[str, Any]:
    """Delete (or with dry_run only list) the cached remote images unused for max_age_s."""
    cache = rt.service(RemoteMedia)
    stale = cache.stale(max_age_s)
    removed = len(stale) if dry_run else await cache.prune(max_age_s)
    return {
        "directory": str(cache.directory),
        "files": [str(p) for p, _ in stale],
        "bytes": sum(size for _, size in stale),
        "removed": 0 if dry_run else removed,
        "dry_run": dry_run,
    }


async def prune_staged(
    rt: Runtime, *, dry_run: bool, max_age_s: float = STAGING_MAX_AGE_S
) -> dict[str, Any]:
    """Delete (or with dry_run only list) the staged uploads of dead jobs (S3 stores only)."""
    pruned = await asyncio.to_thread(prune_staging, rt.media, max_age_s, dry_run=dry_run)
    return pruned.as_json()


async def find_orphans(rt: Runtime) -> Orphans:
    store = rt.media
    prefix = rt.urls.media("")
    rows: list[tuple[int, str]] = []
    pictures: list[tuple[int, str, str]] = []
    found = Orphans()
    named: set[str] = set()
    async with rt.sessions() as s:
        for row_id, name in await s.execute(
            select(MediaAttachment.id, MediaAttachment.file_name).where(
                MediaAttachment.file_name.is_not(None)
            )
        ):
            if name is None:
                continue
            named.add(name)
            rows.append((row_id, name))
        for account_id, avatar, header in await s.execute(
            select(Account.id, Account.avatar_url, Account.header_url).where(Account.local)
        ):
            for which, url in (("avatar", avatar), ("header", header)):
                if url and url.startswith(prefix):
                    name = url[len(prefix) :]
                    named.add(name)
                    pictures.append((account_id, which, name))
        for result in await s.scalars(
            select(GenerationJob.result).where(GenerationJob.result.is_not(None))
        ):
            if isinstance(result, dict) and isinstance(result.get("file_name"), str):
                named.add(result["file_name"])
    # listed after the rows were read: a row's file is stored before the row commits, so a
    # new image is never taken for a row without its file (one listing, not a look-up a row)
    stored = await store.keys()
    present = set(stored)
    found.media_rows = [(i, n) for i, n in rows if n not in present]
    found.pictures = [(a, w, n) for a, w, n in pictures if n not in present]
    for key in stored:
        kept = key in named or renditions.is_rendition_of_one(key, named)
        if not key.startswith(".tmp-") and not kept:
            found.files.append(key)
            found.locations.append(store.location(key))
    return found


async def fix_orphans(rt: Runtime, orphans: Orphans) -> None:
    for key in orphans.files:
        await rt.media.delete(key)
    async with rt.session() as s:
        if orphans.media_rows:
            await s.execute(
                delete(MediaAttachment).where(
                    MediaAttachment.id.in_([i for i, _ in orphans.media_rows])
                )
            )
        for account_id, which, _name in orphans.pictures:
            account = await s.get_one(Account, account_id)
            if which == "avatar":
                account.avatar_url = None
            else:
                account.header_url = None
