"""`dreamloom doctor`: one line per check, OK / WARN / FAIL; any FAIL is exit code 1.

The checks and their rules:

- config: config.toml parses (when it does not, nothing else can be checked);
- database: reachable, and its schema at the head revision;
- media: the media dir exists and is writable; world-writable is a WARN;
- disk: free space at the data dir at least `[generator] min_free_disk_mb` (else FAIL),
  below twice that a WARN;
- clock: the `Date` header of the most recently seen remote host against our clock: more
  than CLOCK_WARN_S off is a WARN, more than CLOCK_FAIL_S (signatures are refused past
  that) a FAIL; no known remote host, or it does not answer, is a WARN; the peer is asked
  through the SSRF-guarded client (activitypub.netguard), so a stored actor URI naming a
  private or loopback address is never connected to (unless allow_private_addresses);
- model: builtin models always load (`auto` still on builtin:tiny, not fetched yet, is a
  WARN); a directory must hold model_index.json; a hub id must be in Dreamloom's model
  cache or the local Hugging Face cache (nothing is downloaded): missing is a FAIL
  offline, else a WARN;
- webfinger: the instance actor's WebFinger answers through the configured scheme and
  domain; no answer is a FAIL saying the server did not answer.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from sqlalchemy import select

from activitypub.errors import FetchError
from activitypub.netguard import make_client
from generator import hub
from generator.errors import ModelLoadError
from generator.locating import (
    BUILTIN_MODELS,
    effective_model,
    files_on_disk,
    hub_offline,
    locate,
)
from instance.errors import ConfigError
from instance.settings import Settings, load_settings
from instance.storage.db import make_engine, make_sessionmaker
from instance.storage.media_store import make_media_store
from instance.storage.migrate import current_revision, head_revision
from instance.storage.models import Account
from instance.urls import INSTANCE_ACTOR_USERNAME

CLOCK_WARN_S = 30.0
CLOCK_FAIL_S = 300.0
HTTP_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # OK | WARN | FAIL
    detail: str


def check_config(config_path: Path) -> tuple[Check, Settings | None]:
    try:
        settings = load_settings(config_path)
    except ConfigError as exc:
        return Check("config", "FAIL", str(exc)), None
    return Check("config", "OK", f"{config_path} parses"), settings


async def check_database(settings: Settings) -> tuple[Check, str | None]:
    """The database check, and the most recently seen remote actor's URI (for the clock)."""
    engine = make_engine(settings.database_url)
    try:
        revision = await current_revision(engine)
        async with make_sessionmaker(engine)() as s:
            peer = await s.scalar(
                select(Account.uri)
                .where(Account.local.is_(False))
                .order_by(Account.id.desc())
                .limit(1)
            )
    except Exception as exc:  # any driver error means: not reachable
        return Check("database", "FAIL", f"not reachable: {type(exc).__name__}: {exc}"), None
    finally:
        await engine.dispose()
    head = head_revision()
    if revision != head:
        return Check(
            "database", "FAIL", f"schema at {revision}, head is {head}: run `dreamloom db upgrade`"
        ), peer
    return Check("database", "OK", f"reachable, schema at head ({head})"), peer


def check_media(settings: Settings) -> Check:
    media = settings.media_path
    if not media.is_dir():
        return Check("media", "FAIL", f"{media} does not exist")
    mode = stat.S_IMODE(media.stat().st_mode)
    try:
        fd, name = tempfile.mkstemp(dir=media, prefix=".tmp-doctor-")
        os.close(fd)
        os.unlink(name)
    except OSError as exc:
        return Check("media", "FAIL", f"{media} is not writable ({exc.strerror}), mode {mode:o}")
    if mode & stat.S_IWOTH:
        return Check("media", "WARN", f"{media} is writable by everyone (mode {mode:o})")
    return Check("media", "OK", f"{media} writable, mode {mode:o}")


async def check_bucket(settings: Settings) -> Check:
    """An object store (`[media] store = "s3"`): its bucket answers (media_store.check)."""
    health = await make_media_store(settings).check()
    return Check("media", "OK" if health.ok else "FAIL", health.detail)


def check_disk(settings: Settings) -> Check:
    free_mb = shutil.disk_usage(settings.data_path).free // (1024 * 1024)
    floor = settings.generator.min_free_disk_mb
    line = f"{free_mb} MiB free at {settings.data_path} (minimum {floor} MiB)"
    if free_mb < floor:
        return Check("disk", "FAIL", line)
    return Check("disk", "WARN" if free_mb < 2 * floor else "OK", line)


async def check_clock(peer_uri: str | None, allow_private_addresses: bool = False) -> Check:
    if not peer_uri:
        return Check("clock", "WARN", "skipped: no known remote host to compare with")
    parts = urlsplit(peer_uri)
    origin = f"{parts.scheme}://{parts.netloc}/"
    try:
        timeout = httpx.Timeout(HTTP_TIMEOUT_S)
        async with make_client(allow_private_addresses, timeout=timeout) as client:
            started = time.time()
            response = await client.head(origin)
            ours = (started + time.time()) / 2
        date = response.headers.get("date")
        theirs = parsedate_to_datetime(date).timestamp() if date else None
    except (httpx.HTTPError, FetchError, TypeError, ValueError) as exc:
        return Check("clock", "WARN", f"skipped: {parts.netloc} did not answer ({exc})")
    if theirs is None:
        return Check("clock", "WARN", f"skipped: {parts.netloc} sent no Date header")
    skew = ours - theirs
    line = f"{abs(skew):.0f} s {'ahead of' if skew > 0 else 'behind'} {parts.netloc}"
    if abs(skew) > CLOCK_FAIL_S:
        return Check("clock", "FAIL", f"{line}: signatures will be refused; fix the clock")
    return Check("clock", "WARN" if abs(skew) > CLOCK_WARN_S else "OK", line)


def check_model(settings: Settings) -> Check:
    setting = settings.generator.model
    model = effective_model(setting, settings.cache_path)
    if setting == hub.AUTO and model in BUILTIN_MODELS:
        return Check(
            "model", "WARN", f"model = auto runs {model} until {hub.auto_model()} is fetched"
        )
    if model in BUILTIN_MODELS:
        return Check("model", "OK", f"{model} (built in)")
    if hub.cached_dir(model, settings.cache_path) is not None:
        return Check("model", "OK", f"{model}: in Dreamloom's model cache")
    try:
        _source, local, _name = locate(model, settings.cache_path, None)
    except ModelLoadError as exc:
        return Check("model", "FAIL", str(exc))
    if local is not None:
        return Check("model", "OK", f"{model}: a local diffusers directory")
    if files_on_disk(model, settings.cache_path) is not None:
        return Check("model", "OK", f"{model}: in the local Hugging Face cache")
    if hub_offline():
        return Check("model", "FAIL", f"{model} is not in the local cache and the hub is offline")
    return Check("model", "WARN", f"{model} is not in the local cache: the first load downloads it")


async def check_webfinger(settings: Settings) -> Check:
    resource = f"acct:{INSTANCE_ACTOR_USERNAME}@{settings.host}"
    url = f"{settings.base_url}/.well-known/webfinger"
    try:
        async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_S) as client:
            response = await client.get(url, params={"resource": resource})
    except httpx.HTTPError as exc:
        return Check(
            "webfinger", "FAIL",
            f"the server did not answer at {settings.base_url} ({type(exc).__name__}): is "
            "`dreamloom serve` running and the domain/scheme in config.toml right?",
        )  # fmt: skip
    links: list[object] = []
    with contextlib.suppress(ValueError, AttributeError):
        links = response.json().get("links", [])
    if response.status_code != 200 or not links:
        return Check("webfinger", "FAIL", f"{url} answered {response.status_code} for {resource}")
    return Check("webfinger", "OK", f"{resource} answers at {settings.base_url}")


async def run_checks(config_path: Path) -> list[Check]:
    config, settings = check_config(config_path)
    if settings is None:
        return [config]
    database, peer = await check_database(settings)
    return [
        config,
        database,
        check_media(settings) if settings.media.store == "local" else await check_bucket(settings),
        check_disk(settings),
        await check_clock(peer, settings.federation.allow_private_addresses),
        check_model(settings),
        await check_webfinger(settings),
    ]
