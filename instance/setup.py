"""`dreamloom init`: config file, data directory, database and instance actor. Idempotent."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import tomli_w

from generator.provenance import Credentials, ensure_instance_credentials
from instance.accounts import ensure_instance_actor
from instance.errors import ConfigError
from instance.moderation import domains
from instance.runtime import Runtime
from instance.settings import CONFIG_FILENAME, Settings, load_settings, settings_from_dict

CONFIG_HEADER = """\
# Dreamloom instance configuration, written by `dreamloom init`.
# Every setting is documented in config.toml at the root of the Dreamloom source tree.
# Environment variables DREAMLOOM_<SECTION>_<KEY> override what is written here.

"""


@dataclass(frozen=True)
class InitResult:
    config_path: Path
    wrote_config: bool


def write_config(
    directory: Path,
    domain: str,
    scheme: str,
    *,
    allow_private_addresses: bool = False,
    model: str = "auto",
) -> InitResult:
    """Write config.toml unless one exists (an existing one is never changed).

    ``model`` defaults to "auto": a real model for the hardware (generator/hub.py)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / CONFIG_FILENAME
    if path.exists():
        load_settings(path)  # a broken existing config is reported, not overwritten
        return InitResult(path, False)
    if scheme not in {"http", "https"}:
        raise ConfigError(f'--scheme must be "http" or "https", got {scheme!r}')
    data: dict[str, dict[str, object]] = {
        "instance": {"domain": domain, "scheme": scheme, "data_dir": "data"},
        "generator": {"model": model},
    }
    if allow_private_addresses:
        data["federation"] = {"allow_private_addresses": True}
    settings_from_dict(data, path, env={})  # validate before writing anything
    path.write_text(CONFIG_HEADER + tomli_w.dumps(data), encoding="utf-8")
    return InitResult(path, True)


async def ensure_instance(rt: Runtime) -> None:
    """Everything an instance needs before it serves: directories and the instance actor."""
    rt.settings.media_path.mkdir(parents=True, exist_ok=True)
    async with rt.session() as session:
        actor = await ensure_instance_actor(session, rt.urls, rt.settings.instance.name)
    assert actor.key_id and actor.private_key_pem
    rt.signer = (actor.key_id, actor.private_key_pem)
    domains.guard_fetchers(rt)  # blocked domains are refused at every fetch hop


def c2pa_credentials(settings: Settings) -> Credentials:
    """The instance's own C2PA signing key and certificate chain, under `<data>/c2pa`: made
    by `dreamloom init` (or on first use), kept after; the key file is 0600."""
    return ensure_instance_credentials(
        settings.data_path / "c2pa", common_name=settings.host.split(":")[0]
    )
