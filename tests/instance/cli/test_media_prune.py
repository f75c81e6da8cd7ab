"""`dreamloom media prune` through the CLI entry point, on SQLite and PostgreSQL: cached
remote images by age (the media cache's own pruning), and orphans in the media dir."""

from __future__ import annotations

import os
import time

from sqlalchemy import select

from instance.accounts import get_local
from instance.runtime import Runtime
from instance.storage.models import Account, MediaAttachment
from tests.instance.cli.conftest import CliInstance
from tests.instance.cli.helpers import one_error

DAY = 86400


def test_prune_deletes_only_cached_remote_files_past_the_age(cli_instance: CliInstance) -> None:
    """--remote-older-than 30d deletes the cached remote images unused for over 30 days and
    keeps newer ones; --dry-run only lists them; a duration we cannot read is one error."""
    inst = cli_instance
    cache = inst.settings().cache_path / "remote-media"
    cache.mkdir(parents=True, exist_ok=True)
    old, new = cache / "old.png", cache / "new.png"
    old.write_bytes(b"o" * 10)
    new.write_bytes(b"n" * 10)
    long_ago = time.time() - 40 * DAY
    os.utime(old, (long_ago, long_ago))

    dry = inst.json("media", "prune", "--remote-older-than", "30d", "--dry-run")
    assert dry["remote"]["files"] == [str(old)] and dry["remote"]["bytes"] == 10
    assert old.exists() and new.exists()
    done = inst.json("media", "prune", "--remote-older-than", "30d")
    assert done["remote"]["removed"] == 1
    assert not old.exists() and new.exists()
    assert inst.json("media", "prune", "--remote-older-than", "90m")["remote"]["removed"] == 0

    for garbage in ("soon", "30x", "-3d", ""):
        line = one_error(inst.dl("media", "prune", "--remote-older-than", garbage))
        assert "cannot read the duration" in line
    assert "say what to prune" in one_error(inst.dl("media", "prune"))


def test_orphans_are_reported_and_fixed(cli_instance: CliInstance) -> None:
    """--orphans lists media files no row names and rows (attachments, avatars) whose file
    is gone; files that rows name are not orphans; --fix deletes the orphan files and the
    attachment rows, and clears the avatar URL; a second run finds nothing."""
    inst = cli_instance
    inst.ok("account", "create", "painter", "--no-pictures")
    media = inst.settings().media_path
    (media / "stray.png").write_bytes(b"x")
    (media / "used.png").write_bytes(b"y")

    async def arrange(rt: Runtime) -> int:
        async with rt.session() as s:
            painter = await get_local(s, "painter")
            painter.avatar_url = rt.urls.media("lost-avatar.png")
            s.add(MediaAttachment(account_id=painter.id, file_name="used.png"))
            gone = MediaAttachment(account_id=painter.id, file_name="gone.png")
            s.add(gone)
            await s.flush()
            return gone.id

    gone_id = inst.db(arrange)
    found = inst.json("media", "prune", "--orphans")["orphans"]
    assert found["files"] == [str(media / "stray.png")]
    assert found["media_rows"] == [{"id": gone_id, "file_name": "gone.png"}]
    assert [p["file_name"] for p in found["pictures"]] == ["lost-avatar.png"]
    assert found["fixed"] is False and (media / "stray.png").exists()

    r = inst.ok("media", "prune", "--orphans", "--fix")
    assert "3 orphans: fixed" in r.stdout
    assert not (media / "stray.png").exists() and (media / "used.png").exists()

    async def check(rt: Runtime) -> None:
        async with rt.sessions() as s:
            assert await s.get(MediaAttachment, gone_id) is None
            painter = await s.scalar(select(Account).where(Account.username == "painter"))
            assert painter is not None and painter.avatar_url is None

    inst.db(check)
    again = inst.json("media", "prune", "--orphans")["orphans"]
    assert again["files"] == [] and again["media_rows"] == [] and again["pictures"] == []
