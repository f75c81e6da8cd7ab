"""Review finding 17 (docs/security.md): files get the modes their contents call for.

The database, which holds every account's private key, was created readable by everyone
(0644), and the public images readable by their owner only (0600): backwards. Now the
database and its WAL files are 0600, the session secret 0600, and images 0644.
"""

from __future__ import annotations

import stat

import pytest

from instance.accounts import NewAccount, create_account
from instance.generation.requests import enqueue
from instance.runtime import open_runtime
from instance.setup import ensure_instance
from tests.instance.generation_fixtures import gen_settings, run_generation, tiny_cache  # noqa: F401


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.sqlite_only("the database file's and its WAL files' modes")
async def test_the_database_is_private_and_images_are_public(gen_settings) -> None:  # noqa: F811
    settings = gen_settings()
    rt = await open_runtime(settings)
    try:
        await ensure_instance(rt)
        db = settings.data_path / "dreamloom.db"
        assert mode(db) == 0o600
        async with rt.session() as s:
            painter = await create_account(s, rt.urls, NewAccount("painter", ai=True))
            await enqueue(s, rt, painter, "a heron", size=(32, 32), then={"post": {}})
        await run_generation(rt)
        (image,) = settings.media_path.glob("*.png")
        assert mode(image) == 0o644
        for wal in (db.with_name("dreamloom.db-wal"), db.with_name("dreamloom.db-shm")):
            if wal.exists():
                assert mode(wal) & 0o077 == 0, wal
    finally:
        await rt.aclose()
