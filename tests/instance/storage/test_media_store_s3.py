"""`[media] store = "s3"`: our images in an S3-compatible bucket, against a real S3 server.

The server is moto's (`moto[server]`, the test extra), started once per session on
127.0.0.1 in this process; each test gets a bucket of its own. The instance talks to it
over HTTP through boto3, exactly as it would to MinIO or AWS.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import socket
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
import tomli_w
from PIL import Image
from sqlalchemy import select
from typer.testing import CliRunner

from instance.accounts import NewAccount, create_account
from instance.cli import app as cli_app
from instance.content import rendition_backfill
from instance.content.account_delete import delete_account
from instance.content.pictures import set_picture
from instance.errors import ConfigError
from instance.generation.personas import queue_picture
from instance.generation.requests import enqueue
from instance.inbound.retention import RetentionWorker
from instance.maintenance import backup as backup_mod
from instance.maintenance import restore as restore_mod
from instance.maintenance.prune import find_orphans, fix_orphans, prune_staged
from instance.runtime import open_runtime
from instance.settings import settings_from_dict
from instance.setup import ensure_instance
from instance.storage import media_store
from instance.storage.ids import new_public_id
from instance.storage.media_store import (
    LocalMediaStore,
    MediaStoreError,
    make_media_store,
    prune_staging,
)
from instance.storage.models import Account, GenerationJob, MediaAttachment, Post
from tests.instance.generation_fixtures import (  # noqa: F401
    GEN,
    run_generation,
    share_cache,
    tiny_cache,
)
from tests.instance_fixtures import AP_ACCEPT, asgi_client, free_port, make_settings

KEYS = {"s3_access_key_id": "testing", "s3_secret_access_key": "testing-secret"}


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A real S3 API (moto's server) on a free loopback port for the whole session."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def s3_client(endpoint: str) -> Any:
    return boto3.session.Session().client(
        "s3", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id=KEYS["s3_access_key_id"],
        aws_secret_access_key=KEYS["s3_secret_access_key"],
    )  # fmt: skip


@pytest.fixture
def bucket(s3_endpoint: str, request: pytest.FixtureRequest) -> str:
    name = f"dl-{abs(hash(request.node.nodeid)) % 10**12}"
    s3_client(s3_endpoint).create_bucket(Bucket=name)
    return name


def keys_in(endpoint: str, bucket: str) -> list[str]:
    listed = s3_client(endpoint).list_objects_v2(Bucket=bucket)
    return sorted(o["Key"] for o in listed.get("Contents", []))


def object_bytes(endpoint: str, bucket: str, key: str) -> bytes:
    return bytes(s3_client(endpoint).get_object(Bucket=bucket, Key=key)["Body"].read())


@pytest.fixture
def media(s3_endpoint: str, bucket: str) -> dict[str, Any]:
    """The [media] section of an instance on this test's bucket (tests add to it)."""
    return {"store": "s3", "s3_endpoint_url": s3_endpoint, "s3_bucket": bucket, **KEYS}


@pytest.fixture
def settings(tmp_path: Path, tiny_cache: Path, media: dict[str, Any]):  # noqa: F811
    made = make_settings(tmp_path / "instance", generator=GEN, media=media)
    share_cache(made, tiny_cache)
    return made


@pytest.fixture
async def painter(new_account):
    return await new_account("painter", ai=True, persona={"style": "ink wash"})


async def generate_post(rt, account, prompt: str = "a heron") -> GenerationJob:
    """Queue an image with a post step and run the real generation worker (builtin:tiny)."""
    async with rt.session() as s:
        job = await enqueue(s, rt, account, prompt, size=(32, 32), steps=1, then={"post": {}})
    await run_generation(rt)
    async with rt.sessions() as s:
        return await s.get_one(GenerationJob, job.id)


def png(size: tuple[int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, "teal").save(out, "PNG")
    return out.getvalue()


# -- generated images ----------------------------------------------------------------------
async def test_a_generated_image_is_posted_from_the_bucket(
    runtime, painter, s3_endpoint, bucket
) -> None:
    """A generated PNG is uploaded to the bucket before its post is published, its staging
    copy is removed, the Note's attachment names our /media URL (no public_base_url), and
    that URL streams the bucket's bytes."""
    job = await generate_post(runtime, painter)
    assert job.status == "done" and job.post_id, job.last_error
    name = job.result["file_name"]
    assert name in keys_in(s3_endpoint, bucket)
    assert not list((runtime.settings.data_path / "media-staging").iterdir())
    assert not (runtime.settings.media_path / name).exists()  # nothing kept on local disk
    async with asgi_client(runtime) as client:
        async with runtime.sessions() as s:
            post = await s.get_one(Post, job.post_id)
        note = (await client.get(post.uri, headers=AP_ACCEPT)).json()
        (attachment,) = note["attachment"]
        assert attachment["url"] == f"{runtime.settings.base_url}/media/{name}"
        served = await client.get(f"/media/{name}")
        health = (await client.get("/healthz")).json()
    assert health["media"] == {"ok": True}  # the bucket answers
    assert served.status_code == 200 and served.headers["content-type"] == "image/png"
    assert served.content == object_bytes(s3_endpoint, bucket, name)
    assert served.headers["x-content-type-options"] == "nosniff"


@pytest.fixture
def public_media(media: dict[str, Any]) -> dict[str, Any]:
    media.update(public_base_url="https://cdn.example/dreamloom/", s3_prefix="inst-a")
    return media


async def test_federated_attachments_and_pictures_carry_the_public_url(
    tmp_path, tiny_cache, public_media, s3_endpoint, bucket  # noqa: F811
) -> None:
    """With public_base_url set, the federated Note's attachment and the actor's avatar are
    the public URL (base + prefix + key), and the objects sit under the prefix."""
    settings = make_settings(tmp_path / "cdn", generator=GEN, media=public_media)
    share_cache(settings, tiny_cache)
    rt = await open_runtime(settings)
    try:
        await ensure_instance(rt)
        async with rt.session() as s:
            painter = await create_account(s, rt.urls, NewAccount("painter", ai=True))
        job = await generate_post(rt, painter)
        name = job.result["file_name"]
        assert f"inst-a/{name}" in keys_in(s3_endpoint, bucket)
        async with rt.session() as s:
            me = await s.get_one(Account, painter.id)
            avatar = await set_picture(rt, me, "avatar", png((500, 500)))
        async with asgi_client(rt) as client:
            async with rt.sessions() as s:
                post = await s.get_one(Post, job.post_id)
            note = (await client.get(post.uri, headers=AP_ACCEPT)).json()
            actor = (await client.get(painter.uri, headers=AP_ACCEPT)).json()
            streamed = await client.get(f"/media/{name}")  # old-style URLs keep working
        assert note["attachment"][0]["url"] == f"https://cdn.example/dreamloom/inst-a/{name}"
        assert actor["icon"]["url"] == avatar and avatar.startswith("https://cdn.example/")
        assert streamed.status_code == 200
    finally:
        await rt.aclose()


# -- pictures, renditions, deletion ----------------------------------------------------------
async def test_a_generated_avatar_and_its_renditions_live_in_the_bucket(
    runtime, client, painter, s3_endpoint, bucket
) -> None:
    """The profile step reads the generated image back from the bucket, the avatar and its
    320 px rendition are objects, and a rendition missing from the bucket is made again
    from the original on its first request."""
    async with runtime.session() as s:
        me = await s.get_one(Account, painter.id)
        await queue_picture(s, runtime, me, "avatar")
    await run_generation(runtime)
    async with runtime.sessions() as s:
        me = await s.get_one(Account, painter.id)
    avatar = me.avatar_url.rsplit("/", 1)[1]
    stem = avatar.removesuffix(".png")
    assert {avatar, f"{stem}.w320.webp"} <= set(keys_in(s3_endpoint, bucket))
    s3_client(s3_endpoint).delete_object(Bucket=bucket, Key=f"{stem}.w320.webp")
    served = await client.get(f"/media/{stem}.w320.webp")
    assert served.status_code == 200 and served.headers["content-type"] == "image/webp"
    with Image.open(io.BytesIO(served.content)) as image:
        assert image.size == (320, 320)
    assert f"{stem}.w320.webp" in keys_in(s3_endpoint, bucket)  # stored, for the next one
    assert (await client.get(f"/media/{stem}.w640.webp")).status_code == 404  # not wider


async def test_deleting_an_account_removes_its_objects(
    runtime, painter, s3_endpoint, bucket
) -> None:
    """Deleting a local account deletes its images and renditions from the bucket, as it
    deletes their files from a local media dir."""
    job = await generate_post(runtime, painter)
    async with runtime.session() as s:
        me = await s.get_one(Account, painter.id)
        await set_picture(runtime, me, "header", png((1600, 600)))
    assert len(keys_in(s3_endpoint, bucket)) == 4  # image, header, header's two renditions
    async with runtime.sessions() as s:
        me = await s.get_one(Account, painter.id)
    deleted = await delete_account(runtime, me)
    assert keys_in(s3_endpoint, bucket) == [] and job.result["file_name"]
    assert deleted.media_files >= 4


# -- prune, backup, restore ---------------------------------------------------------------------
async def test_prune_lists_and_deletes_orphans_through_the_store(
    runtime, painter, s3_endpoint, bucket
) -> None:
    """`media prune --orphans` lists the bucket: an object no row names is an orphan (shown
    as its s3:// address) and --fix deletes it; a named image stays; a row whose object is
    gone is reported."""
    job = await generate_post(runtime, painter)
    name = job.result["file_name"]
    stray = f"{'q' * 26}.png"
    s3_client(s3_endpoint).put_object(Bucket=bucket, Key=stray, Body=b"x")
    found = await find_orphans(runtime)
    assert found.files == [stray] and found.media_rows == []
    assert found.as_json()["files"] == [f"s3://{bucket}/{stray}"]
    await fix_orphans(runtime, found)
    assert keys_in(s3_endpoint, bucket) == [name]
    s3_client(s3_endpoint).delete_object(Bucket=bucket, Key=name)
    async with runtime.sessions() as s:
        row = await s.scalar(select(MediaAttachment.id).where(MediaAttachment.file_name == name))
    assert (await find_orphans(runtime)).media_rows == [(row, name)]


def sqlite_settings(directory: Path, **sections: Any):
    """An instance with its config.toml written. Backups here are about media, so both
    instances are on SQLite whatever the suite's database (a PostgreSQL dump is covered by
    tests/instance/cli/test_maintenance.py)."""
    db = {"url": f"sqlite+aiosqlite:///{directory / 'data' / 'dreamloom.db'}"}
    made = make_settings(directory, database=db, **sections)
    config = {"instance": {"domain": made.instance.domain, "scheme": "http"}, "database": db}
    made.config_path.write_text(tomli_w.dumps({**config, **sections}))
    return made


async def test_backup_leaves_the_bucket_to_its_own_tooling_and_restore_fills_it(
    tmp_path, media, s3_endpoint, bucket
) -> None:
    """A backup of an S3 instance copies no media and says where they are and how to back
    them up; restoring a local instance's archive onto an S3 instance uploads its images
    to the bucket and keeps this instance's [media] section."""
    s3_side = sqlite_settings(tmp_path / "s3", media=media)
    rt = await open_runtime(s3_side)
    try:
        await ensure_instance(rt)
    finally:
        await rt.aclose()
    target = tmp_path / "s3.tar.gz"
    manifest = backup_mod.write_backup(s3_side, target, None, lambda _: None)
    with tarfile.open(target) as tar:
        assert not [m for m in tar.getnames() if m.startswith("media/")]
    assert manifest["media"] == f"s3://{bucket}/ at {s3_endpoint}"
    note = backup_mod.media_note(manifest)
    assert note and f"s3://{bucket}/" in note and "back the bucket up" in note

    local = sqlite_settings(tmp_path / "local")
    rt = await open_runtime(local)
    try:
        await ensure_instance(rt)
        name = f"{'k' * 26}.png"
        await rt.media.put(name, png((40, 40)), "image/png")
    finally:
        await rt.aclose()
    archive = tmp_path / "local.tar.gz"
    local_manifest = backup_mod.write_backup(local, archive, None, lambda _: None)
    assert backup_mod.media_note(local_manifest) is None and local_manifest["media"] == "archive"
    checked = restore_mod.verify(archive, lambda _: None)
    await restore_mod.restore(s3_side, archive, checked, lambda _: None)
    assert name in keys_in(s3_endpoint, bucket)
    assert 'store = "s3"' in s3_side.config_path.read_text()


# -- configuration and failure -------------------------------------------------------------------
def test_config_errors_name_the_key_and_the_file(tmp_path) -> None:
    """Each wrong [media] value is refused with its key and the config file named; the
    secret is never in the settings' repr, and can come from the environment."""
    path = tmp_path / "config.toml"
    base = {"instance": {"domain": "example.com"}}
    cases = {
        "[media] store": {"store": "ftp"},
        "[media] s3_bucket is required": {"store": "s3"},
        "[media] s3_endpoint_url must be an http(s) URL": {"store": "s3", "s3_bucket": "b",
                                                           "s3_endpoint_url": "minio:9000"},
        "[media] public_base_url": {"public_base_url": "cdn.example"},
        "[media] s3_prefix": {"s3_prefix": "../up"},
        "[media] s3_access_key_id and s3_secret_access_key go together": {
            "store": "s3", "s3_bucket": "b", "s3_access_key_id": "AKIA"},
        "unknown key [media] bucket": {"bucket": "b"},
    }  # fmt: skip
    for expected, section in cases.items():
        with pytest.raises(ConfigError, match=re.escape(expected)) as info:
            settings_from_dict({**base, "media": section}, path, env={})
        assert str(path) in str(info.value), expected
    env = {"DREAMLOOM_MEDIA_S3_SECRET_ACCESS_KEY": "from-env-secret"}
    made = settings_from_dict(
        {**base, "media": {"store": "s3", "s3_bucket": "b", "s3_access_key_id": "AKIA"}},
        path, env=env,
    )  # fmt: skip
    assert made.media.s3_secret_access_key == "from-env-secret"
    assert "from-env-secret" not in repr(made)


@pytest.fixture
def closed_port_media(media: dict[str, Any]) -> dict[str, Any]:
    media["s3_endpoint_url"] = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    return media


async def test_an_unreachable_endpoint_is_a_clear_error_not_a_hang(
    tmp_path, tiny_cache, closed_port_media  # noqa: F811
) -> None:
    """With nothing at the endpoint, the store's check is false and names the endpoint, a
    write raises MediaStoreError, /media and /healthz answer 503, and a generated image is
    not posted: its job waits for a retry saying why."""
    settings = make_settings(tmp_path / "down", generator=GEN, media=closed_port_media)
    share_cache(settings, tiny_cache)
    store = make_media_store(settings)
    health = await asyncio.wait_for(store.check(), 30)
    assert not health.ok and closed_port_media["s3_endpoint_url"] in health.detail
    with pytest.raises(MediaStoreError, match=r"storing x\.png on s3://"):
        await asyncio.wait_for(store.put("x.png", b"x", "image/png"), 30)
    rt = await open_runtime(settings)
    try:
        await ensure_instance(rt)
        async with rt.session() as s:
            painter = await create_account(s, rt.urls, NewAccount("painter", ai=True))
        job = await asyncio.wait_for(generate_post(rt, painter), 120)
        assert job.status == "queued" and job.post_id is None
        assert "the image could not be stored" in (job.last_error or "")
        assert not list((settings.data_path / "media-staging").iterdir())
        async with asgi_client(rt) as client:
            answer = await client.get(f"/media/{'a' * 26}.png")
            health = await client.get("/healthz")
        assert answer.status_code == 503 and "media store" in answer.text
        assert health.status_code == 503 and health.json()["media"]["ok"] is False
        assert "127.0.0.1" not in health.text  # where the bucket is goes to the log only
    finally:
        await rt.aclose()


async def test_a_silent_endpoint_times_out(media, tmp_path, monkeypatch) -> None:
    """An endpoint that accepts connections and never answers is given up on after the
    read timeout (shortened here), with the check false: no request waits forever."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)  # the kernel accepts connections; nobody ever reads or answers
    try:
        monkeypatch.setattr(media_store, "S3_READ_TIMEOUT_S", 0.5)
        media["s3_endpoint_url"] = f"http://127.0.0.1:{silent.getsockname()[1]}"
        store = make_media_store(make_settings(tmp_path / "silent", media=media))
        health = await asyncio.wait_for(store.check(), 30)
        assert not health.ok and "timeout" in health.detail.lower()
    finally:
        silent.close()


def test_the_local_store_keeps_todays_urls_and_refuses_paths(tmp_path) -> None:
    """The default store is the media dir with the /media/<name> URLs we always minted, and
    a key is one file name: a path out of the directory is refused."""
    settings = make_settings(tmp_path / "local")
    store = make_media_store(settings)
    assert isinstance(store, LocalMediaStore) and store.directory == settings.media_path
    assert store.public_url("abc.png") == f"{settings.base_url}/media/abc.png"
    assert store.staging_dir == settings.media_path  # generated files land in place
    for bad in ("../config.toml", "a/b.png", "", ".."):
        with pytest.raises(ValueError, match="not a media key"):
            store.location(bad)


# -- renditions of images stored before renditions existed ----------------------------------------
@pytest.fixture
def bucket_public_media(media: dict[str, Any], s3_endpoint: str, bucket: str) -> dict[str, Any]:
    """public_base_url is the bucket's own (path-style) URL on the moto server, and the
    bucket is public (a policy lets anyone read its objects), so a public URL can really be
    fetched without credentials, as a browser does."""
    policy = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{bucket}/*"}]}  # fmt: skip
    s3_client(s3_endpoint).put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    media.update(public_base_url=f"{s3_endpoint}/{bucket}/", s3_prefix="old")
    return media


def put_old_image(endpoint: str, bucket: str, key: str, data: bytes) -> None:
    """An image as it was stored before renditions existed: the original and nothing else."""
    s3_client(endpoint).put_object(Bucket=bucket, Key=f"old/{key}", Body=data,
                                   ContentType="image/png")  # fmt: skip


async def test_the_backfill_makes_an_old_images_missing_renditions_once(
    tmp_path, bucket_public_media, s3_endpoint, bucket
) -> None:
    """With public_base_url set, an image stored before renditions existed gets them from
    the retention worker's first step (a background walk of the bucket): the 320 and 640 px
    copies of a wide image, only the 320 of a 500 px one, none of a small one. The public
    URL of a made rendition is then served by the bucket itself. Running it again makes
    nothing, and the next start does not walk the bucket at all (a marker row says done)."""
    settings = make_settings(tmp_path / "old", media=bucket_public_media)
    wide, mid, small = (f"{new_public_id()}.png" for _ in range(3))
    for key, size in ((wide, (1000, 500)), (mid, (500, 500)), (small, (200, 100))):
        put_old_image(s3_endpoint, bucket, key, png(size))
    rt = await open_runtime(settings)
    try:
        await ensure_instance(rt)
        worker = RetentionWorker(rt)
        await worker.run_once()
        assert worker.backfill is not None
        await asyncio.wait_for(worker.backfill, 60)
        await worker.aclose()
        made = {k.removeprefix("old/") for k in keys_in(s3_endpoint, bucket)} - {wide, mid, small}
        stem = {k: k.removesuffix(".png") for k in (wide, mid, small)}
        assert made == {f"{stem[wide]}.w320.webp", f"{stem[wide]}.w640.webp",
                        f"{stem[mid]}.w320.webp"}  # fmt: skip
        url = rt.media.public_url(f"{stem[wide]}.w640.webp")
        assert url == f"{s3_endpoint}/{bucket}/old/{stem[wide]}.w640.webp"
        async with httpx.AsyncClient() as client:
            answer = await client.get(url)
        assert answer.status_code == 200
        with Image.open(io.BytesIO(answer.content)) as image:
            assert image.format == "WEBP" and image.size == (640, 320)

        before = keys_in(s3_endpoint, bucket)
        again = await rendition_backfill.run(rt)
        assert again.made == [] and again.failed == [] and again.present == 3
        assert keys_in(s3_endpoint, bucket) == before
        assert await rendition_backfill.at_start(rt) is None  # marked: no walk at a start
    finally:
        await rt.aclose()


async def test_the_backfill_reports_a_corrupt_image_and_makes_the_rest(
    tmp_path, bucket_public_media, s3_endpoint, bucket
) -> None:
    """An original that is not an image is reported with the reason and skipped; the walk
    goes on and makes the other images' renditions (many of them, handled a few at once)."""
    settings = make_settings(tmp_path / "corrupt", media=bucket_public_media)
    broken = f"{new_public_id()}.png"
    put_old_image(s3_endpoint, bucket, broken, b"\x89PNG but not really an image")
    good = [f"{new_public_id()}.png" for _ in range(6)]
    for key in good:
        put_old_image(s3_endpoint, bucket, key, png((700, 350)))
    rt = await open_runtime(settings)
    try:
        await ensure_instance(rt)
        dry = await rendition_backfill.run(rt, dry_run=True)
        assert len(dry.made) == 12 and len(keys_in(s3_endpoint, bucket)) == 7  # nothing written
        report = await rendition_backfill.run(rt, concurrency=3)
        assert [o for o, _ in report.failed] == [broken]
        assert "not an image we can read" in report.failed[0][1]
        assert report.store_failures == 0 and report.originals == 7 and len(report.made) == 12
        stored = set(keys_in(s3_endpoint, bucket))
        for key in good:
            stem = key.removesuffix(".png")
            assert {f"old/{stem}.w320.webp", f"old/{stem}.w640.webp"} <= stored
        assert not [k for k in stored if broken.removesuffix(".png") + ".w" in k]
    finally:
        await rt.aclose()


def test_media_renditions_command_reports_counts_and_exits_1_on_a_failure(
    tmp_path, bucket_public_media, s3_endpoint, bucket
) -> None:
    """`dreamloom media renditions --json` makes the missing renditions and says how many;
    a second run makes none; `--dry-run` writes nothing; an unreadable image is named in
    the report and the exit code is 1, after the others were made."""
    made = sqlite_settings(tmp_path / "cli", media=bucket_public_media)
    asyncio.run(_set_up(made))
    image = f"{new_public_id()}.png"
    put_old_image(s3_endpoint, bucket, image, png((800, 400)))
    runner = CliRunner()
    args = ["media", "renditions", "--json", "--dir", str(made.config_path.parent)]
    dry = runner.invoke(cli_app, [*args, "--dry-run"], catch_exceptions=False)
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.stdout)["made"] == 2 and len(keys_in(s3_endpoint, bucket)) == 1
    first = runner.invoke(cli_app, args, catch_exceptions=False)
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["made"] == 2 and len(keys_in(s3_endpoint, bucket)) == 3
    second = runner.invoke(cli_app, args, catch_exceptions=False)
    assert json.loads(second.stdout)["made"] == 0 and second.exit_code == 0
    broken = f"{new_public_id()}.png"
    put_old_image(s3_endpoint, bucket, broken, b"garbage")
    failing = runner.invoke(cli_app, args, catch_exceptions=False)
    assert failing.exit_code == 1
    assert [f["original"] for f in json.loads(failing.stdout)["failed"]] == [broken]


async def _set_up(settings) -> None:
    rt = await open_runtime(settings)
    try:
        await ensure_instance(rt)
    finally:
        await rt.aclose()


# -- staging leftovers -----------------------------------------------------------------------------
HOUR = 3600


def aged(path: Path, data: bytes, seconds: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    then = path.stat().st_mtime - seconds
    os.utime(path, (then, then))
    return path


async def test_staging_leftovers_of_dead_jobs_are_pruned_and_fresh_ones_kept(runtime) -> None:
    """On an S3 store a staged PNG over an hour old (a crash between write and upload) is
    removed, with its bytes counted, by `media prune --staging` and when a generation worker
    starts; a fresh one (a job uploading now) is kept; --dry-run only lists."""
    staging = runtime.media.staging_dir
    old = aged(staging / f"{new_public_id()}.png", b"o" * 100, 2 * HOUR)
    tmp = aged(staging / ".tmp-half.png", b"t" * 20, 3 * HOUR)
    fresh = aged(staging / f"{new_public_id()}.png", b"f" * 10, 60)
    dry = await prune_staged(runtime, dry_run=True)
    assert dry["files"] == sorted([str(old), str(tmp)]) and dry["bytes"] == 120
    assert dry["removed"] == 0 and old.exists()
    done = await prune_staged(runtime, dry_run=False)
    assert done["removed"] == 2 and done["bytes"] == 120
    assert not old.exists() and not tmp.exists() and fresh.exists()

    another = aged(staging / f"{new_public_id()}.png", b"a", 2 * HOUR)
    await run_generation(runtime)  # no job queued: the worker's first step prunes
    assert not another.exists() and fresh.exists()


async def test_a_local_store_never_loses_media_to_staging_prune(tmp_path) -> None:
    """On a local store the staging dir is the media dir: neither the prune (the function,
    nor `dreamloom media prune --staging`) nor a starting generation worker deletes anything
    there, however old (they are the images)."""
    settings = sqlite_settings(tmp_path / "local", generator=GEN)
    rt = await open_runtime(settings)
    try:
        await ensure_instance(rt)
        assert rt.media.staging_dir == settings.media_path
        files = [aged(settings.media_path / f"{new_public_id()}.png", b"i", 30 * 86400),
                 aged(settings.media_path / ".tmp-x.png", b"t", 30 * 86400)]  # fmt: skip
        pruned = prune_staging(rt.media, 0)
        assert pruned.directory is None and pruned.files == [] and pruned.removed == 0
        assert (await prune_staged(rt, dry_run=False))["removed"] == 0
        await run_generation(rt)
        command = ["media", "prune", "--staging", "--dir", str(settings.config_path.parent)]
        said = await asyncio.to_thread(CliRunner().invoke, cli_app, command)
        assert said.exit_code == 0 and "nothing to prune" in said.stdout, said.output
        assert all(f.exists() for f in files)
    finally:
        await rt.aclose()
