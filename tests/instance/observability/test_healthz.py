"""GET /healthz: database, media store and role heartbeats, 200 or 503."""

from __future__ import annotations

import os
import shutil
import socket
from datetime import timedelta

import pytest

from instance import heartbeats


async def test_healthy_instance_without_worker_roles(client, runtime) -> None:
    """An instance running no worker roles (no heartbeats) with a working database and media
    directory is healthy, and says how long the database took."""
    r = await client.get("/healthz")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert body["database"]["ok"] is True and body["database"]["ms"] >= 0
    assert body["media"] == {"ok": True}
    assert body["roles"] == [] and body["stale_roles"] == []
    assert r.headers["cache-control"] == "no-store"


async def test_stale_role_heartbeat_is_503(client, runtime) -> None:
    """A role whose only process last beat longer ago than STALE_AFTER_S makes the instance
    unhealthy; a fresh beat of that role makes it healthy again."""
    now = runtime.now()
    started = now - timedelta(minutes=5)
    runtime.clock = lambda: now - timedelta(seconds=heartbeats.STALE_AFTER_S + 30)
    await heartbeats.beat(runtime, "delivery", started_at=started, detail={"concurrency": 16})
    runtime.clock = lambda: now
    r = await client.get("/healthz")
    assert r.status_code == 503
    body = r.json()
    assert body["status"] == "unhealthy" and body["stale_roles"] == ["delivery"]
    [role] = body["roles"]
    assert (role["role"], role["host"], role["pid"]) == ("delivery", socket.gethostname(),
                                                         os.getpid())  # fmt: skip
    assert role["seconds_since_beat"] == heartbeats.STALE_AFTER_S + 30
    assert role["detail"] == {"concurrency": 16}
    await heartbeats.beat(runtime, "delivery", started_at=started)
    r = await client.get("/healthz")
    assert r.status_code == 200 and r.json()["roles"][0]["seconds_since_beat"] == 0


async def test_a_cleanly_stopped_role_is_not_stale(client, runtime) -> None:
    """A process that left (a clean stop) is no longer a role /healthz waits for."""
    now = runtime.now()
    runtime.clock = lambda: now - timedelta(minutes=10)
    await heartbeats.beat(runtime, "inbox", started_at=now - timedelta(hours=1))
    runtime.clock = lambda: now
    assert (await client.get("/healthz")).status_code == 503
    await heartbeats.leave(runtime, "inbox")
    r = await client.get("/healthz")
    assert r.status_code == 200 and r.json()["roles"] == []


def make_unwritable(directory) -> None:
    """Replace `directory` by one nobody may create files in: mode 0500, or for root (whom
    modes do not stop) a link to a sysfs directory."""
    if os.geteuid() != 0:
        directory.chmod(0o500)
        return
    if not os.path.isdir("/sys/fs"):
        pytest.skip("running as root without /sys/fs: no directory root cannot write")
    shutil.rmtree(directory)
    directory.symlink_to("/sys/fs")


async def test_unwritable_media_directory_is_503(client, runtime) -> None:
    """A media directory that does not take a new file makes the instance unhealthy, and
    the answer says it without naming the path."""
    media = runtime.settings.media_path
    make_unwritable(media)
    try:
        r = await client.get("/healthz")
    finally:
        if media.is_symlink():
            media.unlink()
            media.mkdir()
        media.chmod(0o755)
    assert r.status_code == 503
    body = r.json()
    assert body["media"]["ok"] is False
    assert body["media"]["detail"] == "the local media store does not take files (see the log)"
    assert str(media) not in r.text
    assert body["database"]["ok"] is True


async def test_database_down_is_503(client, runtime) -> None:
    """A database that cannot be reached makes the instance unhealthy; the answer names the
    error's kind only (a driver's message may carry connection details)."""
    if runtime.engine.dialect.name != "sqlite":
        pytest.skip("one database suffices: the check is the same code on both")
    await runtime.engine.dispose()
    db = runtime.engine.url.database
    os.rename(db, db + ".moved")
    os.mkdir(db)  # a directory where the file was: SQLite cannot open it
    try:
        r = await client.get("/healthz")
    finally:
        os.rmdir(db)
        os.rename(db + ".moved", db)
    assert r.status_code == 503
    body = r.json()
    assert body["database"] == {"ok": False, "detail": "OperationalError"}
