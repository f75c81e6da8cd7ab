"""Renditions for the images stored before renditions existed: one walk of the media store.

Every image stored today gets its renditions when it is stored (instance/content/renditions.py
`make_all`), and our `/media` route makes a missing one on its first request. With `[media]
store = "s3"` and `public_base_url` set, though, pages and the API link the renditions at the
bucket (or its CDN) directly (`srcset` in instance/web/cards.py, `preview_url` in
instance/api/entities.py): for an older image that has none, the browser gets the bucket's
404 and the lazy path never runs. So the renditions are made ahead, here:

- `backfill` lists the store's keys once, and for each stored original (`<id>.png`, `.jpg`)
  whose rendition names are not all in the listing reads it and makes each missing one that
  is due (a width smaller than the image's) with `renditions.ensure`, at most CONCURRENCY
  images at once. A width the image's attachment row already says it is too narrow for is
  skipped without a read. Running it again makes nothing (idempotent); an image that cannot
  be read or decoded is reported with the reason and skipped, never ending the run.
- `dreamloom media renditions [--dry-run] [--json]` runs it (instance/cli/maintenance.py).
- `at_start` runs it once in the background when the retention worker (the inbox role, which
  already clears the remote media cache) starts on an S3 store with `public_base_url`. A
  finished walk writes the InstanceFlag MARKER (the store and WIDTHS), so later starts cost
  one row read and no request to the bucket; a walk the store failed (unreachable, refusing)
  leaves no marker and is tried again at the next start, whereas an image that cannot be
  decoded does not hold the marker back (it would fail the same way each time; the warning
  names it, and the command reports it). Several inbox processes starting at
  once may walk together: the same renditions are written twice, harmlessly (one PUT each).

`srcset` and `preview_url` still name every rendition a width calls for, not only the ones
known to exist: new images have theirs from the start and the backfill makes the old ones at
the first start, whereas knowing which exist would cost a look-up per image per page. Between
an upgrade and the end of that first walk an old image's rendition can still be a 404 at the
bucket; running `dreamloom media renditions` once the new version is installed, before
restarting `serve`, closes it.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from PIL import Image
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from instance.content import renditions
from instance.content.pictures import unreadable
from instance.runtime import Runtime
from instance.settings import Settings
from instance.storage.media_store import MediaStore, MediaStoreError
from instance.storage.models import InstanceFlag, MediaAttachment

log = logging.getLogger("dreamloom.media")
CONCURRENCY = 4  # images read and rendered at once (each is held in memory while it is)
MARKER = "media.renditions_backfilled"


@dataclass
class Backfill:
    """What one walk found and did."""

    store: str
    dry_run: bool = False
    originals: int = 0  # stored originals looked at
    present: int = 0  # their renditions already in the store
    made: list[str] = field(default_factory=list)  # renditions made (dry run: that would be)
    not_due: int = 0  # widths an image is not wider than: no rendition is due
    gone: int = 0  # originals deleted between the listing and their read
    failed: list[tuple[str, str]] = field(default_factory=list)  # (original, why)
    store_failures: int = 0  # of the failures, the store refusing or unreachable

    def as_json(self) -> dict[str, Any]:
        return {
            "store": self.store,
            "dry_run": self.dry_run,
            "originals": self.originals,
            "present": self.present,
            "made": len(self.made),
            "made_keys": self.made,
            "not_due": self.not_due,
            "gone": self.gone,
            "failed": [{"original": o, "error": why} for o, why in self.failed],
        }


def image_width(data: bytes) -> int:
    """The width of the image `data` (its header only; decoding is render's)."""
    with Image.open(io.BytesIO(data)) as image:
        return int(image.width)


async def backfill(
    store: MediaStore,
    *,
    known_widths: Mapping[str, int] | None = None,
    dry_run: bool = False,
    concurrency: int = CONCURRENCY,
) -> Backfill:
    """Make every missing rendition of every stored original (see the module docstring);
    MediaStoreError only when the store cannot be listed at all."""
    known = known_widths or {}
    report = Backfill(store.describe(), dry_run=dry_run)
    keys = await store.keys()
    present = set(keys)
    due: list[tuple[str, list[int]]] = []
    for key in keys:
        if not renditions.NAME.match(key):
            continue
        report.originals += 1
        missing: list[int] = []
        for width in renditions.WIDTHS:
            if renditions.rendition_name(key, width) in present:
                report.present += 1
            elif key in known and width >= known[key]:
                report.not_due += 1
            else:
                missing.append(width)
        if missing:
            due.append((key, missing))
    queue = iter(due)  # shared by the drainers: at most `concurrency` images in flight

    async def drain() -> None:
        for original, widths in queue:
            await _one(store, original, widths, report)

    await asyncio.gather(*(drain() for _ in range(max(1, min(concurrency, len(due))))))
    report.made.sort()
    return report


async def _one(store: MediaStore, original: str, widths: list[int], report: Backfill) -> None:
    """The missing renditions of one image; a failure is recorded, never raised."""
    try:
        data = await store.read(original)
        if data is None:
            report.gone += 1
            return
        width = await asyncio.to_thread(image_width, data)
        for w in widths:
            if w >= width:
                report.not_due += 1
            elif report.dry_run:
                report.made.append(renditions.rendition_name(original, w))
            elif (key := await renditions.ensure(store, original, w, data)) is None:
                report.not_due += 1
            else:
                report.made.append(key)
    except MediaStoreError as exc:
        report.failed.append((original, str(exc)))
        report.store_failures += 1
    except Exception as exc:  # Pillow raises many kinds for a broken file
        report.failed.append((original, f"not an image we can read ({unreadable(exc)})"))


async def known_widths(rt: Runtime) -> dict[str, int]:
    """The width of each local image an attachment row records (no read needed for them)."""
    async with rt.sessions() as s:
        rows = await s.execute(
            select(MediaAttachment.file_name, MediaAttachment.width).where(
                MediaAttachment.file_name.is_not(None), MediaAttachment.width.is_not(None)
            )
        )
        return {name: int(width) for name, width in rows if name and width}


async def run(rt: Runtime, *, dry_run: bool = False, concurrency: int = CONCURRENCY) -> Backfill:
    """Backfill `rt.media` (the caller reports the failures); a walk the store did not fail
    writes the marker."""
    report = await backfill(
        rt.media, known_widths=await known_widths(rt), dry_run=dry_run, concurrency=concurrency
    )
    if not dry_run and not report.store_failures:
        await _mark(rt, report)
    return report


def wanted(settings: Settings) -> bool:
    """Whether pages link the renditions outside our /media route (S3 + public_base_url)."""
    return settings.media.store == "s3" and bool(settings.media.public_base_url)


def _marker_value(rt: Runtime) -> dict[str, Any]:
    return {"store": rt.media.describe(), "widths": list(renditions.WIDTHS)}


async def _marked(rt: Runtime) -> bool:
    async with rt.sessions() as s:
        flag = await s.get(InstanceFlag, MARKER)
        value = flag.value if flag is not None else None
    return isinstance(value, dict) and all(value.get(k) == v for k, v in _marker_value(rt).items())


async def _mark(rt: Runtime, report: Backfill) -> None:
    value = {**_marker_value(rt), "made": len(report.made), "failed": len(report.failed),
             "at": rt.now().isoformat()}  # fmt: skip
    try:
        async with rt.session() as s:
            flag = await s.get(InstanceFlag, MARKER)
            if flag is None:
                s.add(InstanceFlag(key=MARKER, value=value, updated_at=rt.now()))
            else:
                flag.value = value
                flag.updated_at = rt.now()
    except SQLAlchemyError as exc:  # another process marked it at the same moment
        log.info("the renditions backfill marker was not written: %s", exc)


async def at_start(rt: Runtime) -> Backfill | None:
    """The start-up run (see the module docstring): None when it is not wanted, already done
    for this store, or the store could not be listed (logged; tried at the next start)."""
    if not wanted(rt.settings) or await _marked(rt):
        return None
    try:
        report = await run(rt)
    except MediaStoreError as exc:
        log.warning("the renditions backfill could not list the media store: %s", exc)
        return None
    for original, why in report.failed:
        log.warning("the renditions of %s could not be made: %s", original, why)
    log.info("renditions backfill of %s: %d made, %d already there, %d failed",
             report.store, len(report.made), report.present, len(report.failed),
             extra={"made": len(report.made), "failed": len(report.failed)})  # fmt: skip
    return report
