"""`dreamloom backup` / `restore` through the CLI entry point, on SQLite and PostgreSQL. The
round trip is checked against a second Dreamloom on loopback HTTP that followed before the
backup and must verify what the restored instance signs afterwards."""

from __future__ import annotations

import asyncio
import io
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select, text
from typer.testing import CliRunner

from instance.accounts import get_local
from instance.cli import app
from instance.content.posting import Draft, publish
from instance.maintenance import backup as backup_mod
from instance.runtime import open_runtime
from instance.storage.db import make_engine
from instance.storage.models import Follow, MediaAttachment, Post, RemoteKey
from tests.instance.cli.conftest import CliInstance
from tests.instance.cli.helpers import (
    follow_ours,
    in_thread,
    one_error,
    other_server,
    settle,
)
from tests.instance_fixtures import serve_live

runner = CliRunner()


def png_bytes() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(buf, "PNG")
    return buf.getvalue()


async def _drop_pg_tables(url: str) -> None:
    engine = make_engine(url)
    async with engine.begin() as conn:
        await conn.execute(text("DROP SCHEMA public CASCADE"))
        await conn.execute(text("CREATE SCHEMA public"))
    await engine.dispose()


def wipe_and_init(inst: CliInstance) -> None:
    """Lose the instance (its directory; on PostgreSQL every table too), then make a new,
    empty one at the same domain and database URL, as an admin would before a restore."""
    db_url = inst.settings().database.url
    if db_url:
        asyncio.run(_drop_pg_tables(db_url))
    shutil.rmtree(inst.directory)
    r = runner.invoke(app, ["init", "--domain", inst.domain, "--scheme", "http",
                            "--allow-private-addresses", "--dir", str(inst.directory)])  # fmt: skip
    assert r.exit_code == 0, r.output
    if db_url:
        config = inst.directory / "config.toml"
        config.write_text(f'{config.read_text()}\n[database]\nurl = "{db_url}"\n')
        r = runner.invoke(app, ["init", "--domain", inst.domain, "--dir", str(inst.directory)])
        assert r.exit_code == 0, r.output


def test_backup_wipe_restore_round_trip_and_a_follower_still_verifies(
    cli_instance: CliInstance, tmp_path: Path
) -> None:
    """backup -> wipe -> restore brings back posts, media files, follows and keys; the
    restored key is the one a follower instance cached before the backup, and a post the
    restored instance signs afterwards is verified and stored by that follower."""
    inst = cli_instance
    inst.ok("account", "create", "painter", "--no-pictures")
    archive = tmp_path / "backups" / "b.tar.gz"
    archive.parent.mkdir()
    image = png_bytes()

    async def scenario() -> None:
        async with other_server(tmp_path / "far") as far:  # alive across backup and restore
            rt = await open_runtime(inst.settings())
            try:
                async with serve_live(rt):
                    theirs = await follow_ours(far, rt, "fan", "painter")
                    (rt.settings.media_path / "picture1.png").write_bytes(image)
                    async with rt.session() as s:
                        painter = await get_local(s, "painter")
                        media = MediaAttachment(account_id=painter.id, file_name="picture1.png")
                        s.add(media)
                        await s.flush()
                        await publish(s, rt, painter, Draft("kept by the backup", media=[media]))
                    await settle(rt, far)
            finally:
                await rt.aclose()
            async with far.sessions() as s:
                cached_key = (await s.get_one(RemoteKey, theirs.key_id)).public_key_pem

            r = await in_thread(inst, "backup", str(archive), "--json")
            assert r.exit_code == 0, r.output
            made = json.loads(r.stdout)
            assert made["path"] == str(archive) and made["files"] >= 3
            assert stat.S_IMODE(archive.stat().st_mode) == 0o600  # it holds every private key
            assert [p.name for p in archive.parent.iterdir()] == ["b.tar.gz"]  # no temporary

            await asyncio.to_thread(wipe_and_init, inst)
            assert not (inst.settings().media_path / "picture1.png").exists()
            assert "aborted" in one_error(await in_thread(inst, "restore", str(archive), input=""))
            r = await in_thread(inst, "restore", str(archive), "--yes")
            assert r.exit_code == 0, r.output
            assert "restored" in r.stdout and "schema at" in r.stdout
            assert (inst.settings().media_path / "picture1.png").read_bytes() == image
            if inst.database == "sqlite":  # the database holds every private key
                db_file = inst.settings().data_path / "dreamloom.db"
                assert stat.S_IMODE(db_file.stat().st_mode) == 0o600
            c2pa = inst.settings().data_path / "c2pa"
            if c2pa.is_dir():
                assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in c2pa.iterdir())

            rt = await open_runtime(inst.settings())
            try:
                async with rt.sessions() as s:
                    painter = await get_local(s, "painter")
                    assert painter.public_key_pem == cached_key  # the key the follower cached
                    assert await s.scalar(select(func.count()).select_from(Follow)) == 1
                    assert await s.scalar(select(Post.id).where(Post.content.contains("kept by")))
                async with serve_live(rt):
                    async with rt.session() as s:
                        painter = await get_local(s, "painter")
                        post = await publish(s, rt, painter, Draft("after the restore"))
                    await settle(rt, far)
                async with far.sessions() as s:  # its inbox verified our signature
                    assert await s.scalar(select(Post.id).where(Post.uri == post.uri))
            finally:
                await rt.aclose()

    asyncio.run(scenario())


def test_restore_refuses_a_non_empty_instance_unless_forced(
    cli_instance: CliInstance, tmp_path: Path
) -> None:
    """An instance with a local account is not restored onto without --force; with --force
    it is, and the accounts are then the backup's."""
    inst = cli_instance
    inst.ok("account", "create", "kept", "--no-pictures")
    archive = tmp_path / "b.tar.gz"
    inst.ok("backup", str(archive))
    inst.ok("account", "create", "later", "--no-pictures")
    assert "not empty" in one_error(inst.dl("restore", str(archive), "--yes"))
    inst.ok("restore", str(archive), "--force", "--yes")
    names = {a["username"] for a in inst.json("account", "list")}
    assert "kept" in names and "later" not in names


def _rewrite(archive: Path, out: Path, extra: tarfile.TarInfo, data: bytes = b"") -> None:
    with tarfile.open(archive, "r:gz") as src, tarfile.open(out, "w:gz") as dst:
        for m in src.getmembers():
            dst.addfile(m, src.extractfile(m) if m.isfile() else None)
        dst.addfile(extra, io.BytesIO(data) if data else None)


def test_hostile_or_damaged_archives_are_refused_before_anything_changes(
    sqlite_instance: CliInstance, tmp_path: Path
) -> None:
    """Absolute paths, '..', links, devices, files the manifest does not list and a changed
    checksum are each one error line, and the instance is left as it was."""
    inst = sqlite_instance
    archive = tmp_path / "good.tar.gz"
    inst.ok("backup", str(archive))
    inst.ok("account", "create", "still_here", "--no-pictures")
    cases: list[tuple[str, tarfile.TarInfo, bytes, str]] = []
    for name, data in (("/etc/evil", b"x"), ("media/../../evil", b"x")):
        info = tarfile.TarInfo(name)
        info.size = len(data)
        cases.append((name, info, data, "absolute" if name.startswith("/") else ".."))
    link = tarfile.TarInfo("media/link.png")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    cases.append(("link", link, b"", "a link"))
    hard = tarfile.TarInfo("media/hard.png")
    hard.type, hard.linkname = tarfile.LNKTYPE, "config.toml"
    cases.append(("hardlink", hard, b"", "a link"))
    dev = tarfile.TarInfo("media/dev")
    dev.type = tarfile.CHRTYPE
    cases.append(("device", dev, b"", "device"))
    second = tarfile.TarInfo("manifest.json")
    second.size = 2
    cases.append(("second manifest", second, b"{}", "twice"))
    unlisted = tarfile.TarInfo("media/unlisted.png")
    unlisted.size = 3
    cases.append(("unlisted", unlisted, b"abc", "does not list"))
    for i, (_label, info, data, expected) in enumerate(cases):
        bad = tmp_path / f"bad{i}.tar.gz"
        _rewrite(archive, bad, info, data)
        assert expected in one_error(inst.dl("restore", str(bad), "--force", "--yes"))

    # a member whose bytes changed: the checksum names it
    damaged = tmp_path / "damaged.tar.gz"
    with tarfile.open(archive, "r:gz") as src, tarfile.open(damaged, "w:gz") as dst:
        for m in src.getmembers():
            f = src.extractfile(m)
            data = f.read() if f else b""
            if m.name == "config.toml":
                data = data + b"\n# changed\n"
                m.size = len(data)
            dst.addfile(m, io.BytesIO(data))
    assert "checksum mismatch for 'config.toml'" in one_error(
        inst.dl("restore", str(damaged), "--force", "--yes")
    )
    assert "no backup file" in one_error(inst.dl("restore", str(tmp_path / "none.tar.gz")))
    assert any(a["username"] == "still_here" for a in inst.json("account", "list"))
    assert not Path("/etc/evil").exists()


def test_a_member_with_an_empty_path_part_cannot_write_outside_the_media_dir(
    sqlite_instance: CliInstance, tmp_path: Path
) -> None:
    """A member named `media//ABSOLUTE/PATH` (its parts look relative, but what follows
    `media/` is absolute), listed in a forged manifest with its right checksum, is refused
    before anything changes, and nothing is written at the absolute path."""
    import hashlib

    inst = sqlite_instance
    archive = tmp_path / "good.tar.gz"
    inst.ok("backup", str(archive))
    escaped = tmp_path / "outside" / "escaped.png"
    escaped.parent.mkdir()
    name = f"media/{escaped}"  # "media//tmp/.../escaped.png"
    data = b"not yours"
    hostile = tmp_path / "hostile.tar.gz"
    with tarfile.open(archive, "r:gz") as src, tarfile.open(hostile, "w:gz") as dst:
        for m in src.getmembers():
            f = src.extractfile(m)
            body = f.read() if f else b""
            if m.name == "manifest.json":
                manifest = json.loads(body)
                digest = hashlib.sha256(data).hexdigest()
                manifest["files"][name] = {"sha256": digest, "size": len(data)}
                body = json.dumps(manifest).encode()
                m.size = len(body)
            dst.addfile(m, io.BytesIO(body))
        info = tarfile.TarInfo(name)
        info.size = len(data)
        dst.addfile(info, io.BytesIO(data))
    assert "non-canonical" in one_error(inst.dl("restore", str(hostile), "--force", "--yes"))
    assert not escaped.exists()


def test_a_failure_mid_write_leaves_no_archive(
    sqlite_instance: CliInstance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A backup that fails after it began writing (here: the disk fails on a media file)
    is one error line and leaves nothing in the target directory, neither the archive
    nor its temporary file."""
    inst = sqlite_instance
    (inst.settings().media_path / "a.png").write_bytes(png_bytes())
    real = backup_mod.Archive.add_file

    def failing(self: backup_mod.Archive, name: str, path: Path) -> None:
        if name.startswith("media/"):
            raise OSError(28, "No space left on device")
        real(self, name, path)

    monkeypatch.setattr(backup_mod.Archive, "add_file", failing)
    target = tmp_path / "out"
    target.mkdir()
    assert "No space left" in one_error(inst.dl("backup", str(target / "b.tar.gz")))
    assert list(target.iterdir()) == []
    monkeypatch.setattr(backup_mod.Archive, "add_file", real)
    made = inst.json("backup", str(target))  # a directory: a dated name inside it
    assert Path(made["path"]).parent == target and Path(made["path"]).is_file()
    with tarfile.open(made["path"], "r:gz") as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
    assert "media/a.png" in manifest["files"] and manifest["schema_revision"]
    assert "exists" in one_error(inst.dl("backup", made["path"]))


def test_sqlite_backup_onto_postgres_is_refused(
    sqlite_instance: CliInstance, tmp_path: Path, pg_database: str
) -> None:
    """A SQLite backup is not restored onto a PostgreSQL instance: one clear line."""
    archive = tmp_path / "b.tar.gz"
    sqlite_instance.ok("backup", str(archive))
    from tests.instance.cli.conftest import make_cli_instance

    pg = make_cli_instance(tmp_path / "pg", pg_database)
    assert "holds a sqlite database and this instance uses postgresql" in one_error(
        pg.dl("restore", str(archive), "--yes")
    )


def test_backup_without_pg_dump_is_one_clear_line(
    cli_instance: CliInstance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL, no pg_dump on PATH nor under /usr/lib/postgresql/*/bin is one error
    line naming it, and nothing is left in the target directory. SQLite needs no tool."""
    monkeypatch.setattr(backup_mod.shutil, "which", lambda name: None)
    monkeypatch.setattr(backup_mod, "glob", lambda pattern: [])
    target = tmp_path / "out"
    target.mkdir()
    r = cli_instance.dl("backup", str(target / "b.tar.gz"))
    if cli_instance.database == "postgres":
        assert "pg_dump was not found" in one_error(r)
        assert list(target.iterdir()) == []
    else:
        assert r.exit_code == 0, r.output
        assert [p.name for p in target.iterdir()] == ["b.tar.gz"]


def test_restore_is_refused_while_serve_runs(sqlite_instance: CliInstance, tmp_path: Path) -> None:
    """A restore swaps the database and media under a running server's feet: while a real
    `dreamloom serve` runs on the instance's data directory, restore is one error line and
    changes nothing; once serve has stopped, the same restore goes through."""
    inst = sqlite_instance
    inst.ok("account", "create", "kept", "--no-pictures")
    archive = tmp_path / "b.tar.gz"
    inst.ok("backup", str(archive))
    port = int(inst.domain.rsplit(":", 1)[1])
    env = {k: v for k, v in os.environ.items() if not k.startswith("DREAMLOOM_")}
    dreamloom = Path(sys.executable).with_name("dreamloom")
    proc = subprocess.Popen(
        [str(dreamloom), "serve", "--dir", str(inst.directory), "--port", str(port),
         "--no-workers"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, "serve exited"
            try:
                httpx.get(f"{inst.base_url}/.well-known/nodeinfo", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline
                time.sleep(0.2)
        refused = one_error(inst.dl("restore", str(archive), "--force", "--yes"))
        assert "serve is running" in refused and "stop it" in refused
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    inst.ok("restore", str(archive), "--force", "--yes")
    assert {a["username"] for a in inst.json("account", "list")} == {"kept"}
