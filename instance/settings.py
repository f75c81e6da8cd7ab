"""config.toml -> one typed Settings object, with errors that name the key and the file.

Every setting lives in a section dataclass below; the dataclass fields are the documentation's
source of truth (config.toml at the repository root shows each with a comment). Loading:

1. the TOML file is read (a syntax error names the file and line);
2. every key is checked against the dataclass fields: an unknown section or key, a wrong type,
   or a missing required value raises `ConfigError` naming `[section] key` and the file;
3. environment variables `DREAMLOOM_<SECTION>_<KEY>` override the file (parsed by field type);
4. relative paths resolve against the directory holding config.toml.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from activitypub.errors import InvalidURLError
from activitypub.urls import normalize_host
from instance.errors import ConfigError

CONFIG_FILENAME = "config.toml"
ENV_PREFIX = "DREAMLOOM_"
# The repository's own config.toml is documentation, marked `example = true` at its top:
# a command run next to it without --dir or DREAMLOOM_CONFIG acts on the quick-start
# instance that scripts/start.sh makes in this directory instead (locate_config).
EXAMPLE_MARKER = "example"
QUICK_START_DIR = "instance-data"

@dataclass
class InstanceSettings:
    domain: str = ""  # required: the public host, with an optional port ("example.com:8443")
    scheme: str = "https"  # "https", or "http" for loopback development and tests
    name: str = "Dreamloom"
    description: str = "A federated home for AI-made images."
    data_dir: str = "data"  # relative to the directory holding config.toml
    open_registrations: bool = False


@dataclass
class DatabaseSettings:
    url: str = ""  # default: sqlite+aiosqlite:///<data_dir>/dreamloom.db


@dataclass
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8000
    run_workers: bool = True  # false: `dreamloom serve` runs only the web role
    web_processes: int = 1  # HTTP processes sharing the port (instance/supervisor.py)
    worker_nice: int = 15  # CPU priority of the worker roles below the web's (0-19)
    # reverse proxies whose X-Forwarded-For is believed ("127.0.0.1,::1"); "" trusts none
    trusted_proxies: str = ""
    # `Authorization: Bearer <token>` may read /metrics from anywhere; "": loopback only
    metrics_token: str = field(default="", repr=False)


@dataclass
class FederationSettings:
    allow_private_addresses: bool = False
    inbox_max_bytes: int = 1_048_576
    fetch_timeout_s: float = 10.0
    media_max_bytes: int = 40 * 1024 * 1024
    delivery_concurrency: int = 16
    delivery_per_host: int = 4  # deliveries in flight to one host at most
    delivery_timeout_s: float = 30.0  # overall deadline of one delivery attempt
    inbox_concurrency: int = 4
    user_agent_contact: str = ""
    inbox_actor_per_minute: int = 1200  # activities one remote actor may send us
    inbox_actor_mb_per_minute: float = 32.0  # and their size
    inbox_domain_per_minute: int = 6000  # activities from all actors of one server
    inbox_keep_days: int = 7  # handled inbox rows are deleted after this
    delivery_keep_days: int = 7  # finished deliveries (done, failed, gone) are deleted after this
    inbox_min_free_disk_mb: int = 256  # below this, the inbox answers 503
    remote_media_cache_mb: int = 2048  # remote images kept for our pages, least used go first


@dataclass
class GeneratorSettings:
    model: str = "builtin:tiny"  # "auto": generator/hub.py picks one for the hardware
    hub_endpoint: str = ""  # "": HF_ENDPOINT, else huggingface_hub's default (generator/hub.py)
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    dtype: str = "auto"  # auto | float32 | float16 | bfloat16
    steps: int = 0  # 0: the model's own default (1 for turbo models, 25 otherwise)
    width: int = 0  # 0: the model's native size
    height: int = 0
    guidance: float = -1.0  # < 0: the model's own default
    max_queue: int = 32
    max_batch: int = 8
    job_timeout_s: float = 300.0
    compile: bool = True  # torch.compile the CUDA path (no effect on CPU)
    tiny_vae: bool = False
    safety_checker: bool = True
    provenance: bool = True  # sign a C2PA manifest into each PNG (c2pa-python)
    ai_hashtag: str = "AIGenerated"  # added to every post of a generated image; "" for none
    min_free_disk_mb: int = 1024


MEDIA_STORES = ("local", "s3")


@dataclass
class MediaSettings:
    """Where our own images live (instance/storage/media_store.py owns the policy)."""

    store: str = "local"  # local: <data_dir>/media | s3: an S3-compatible bucket
    s3_endpoint_url: str = ""  # "": AWS for s3_region; else e.g. "https://minio.example:9000"
    s3_bucket: str = ""
    s3_region: str = "us-east-1"
    s3_access_key_id: str = ""  # "" and no secret: the SDK's own credential chain
    s3_secret_access_key: str = field(default="", repr=False)  # best set in the environment
    s3_prefix: str = ""  # key prefix inside the bucket, e.g. "media/"
    public_base_url: str = ""  # objects' public base (a CDN); "": our /media route streams them


LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("text", "json")


@dataclass
class LoggingSettings:
    level: str = "info"  # debug | info | warning | error (instance/logs.py)
    format: str = "text"  # text | json (one JSON object a line)


@dataclass
class Settings:
    instance: InstanceSettings = field(default_factory=InstanceSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    server: ServerSettings = field(default_factory=ServerSettings)
    federation: FederationSettings = field(default_factory=FederationSettings)
    generator: GeneratorSettings = field(default_factory=GeneratorSettings)
    media: MediaSettings = field(default_factory=MediaSettings)
    logging: LoggingSettings = field(default_factory=LoggingSettings)
    config_path: Path | None = None

    # -- derived values, one place each ------------------------------------------------
    @property
    def base_dir(self) -> Path:
        return self.config_path.parent if self.config_path else Path.cwd()

    @property
    def data_path(self) -> Path:
        return (self.base_dir / self.instance.data_dir).resolve()

    @property
    def media_path(self) -> Path:
        return self.data_path / "media"

    @property
    def cache_path(self) -> Path:
        return self.data_path / "cache"

    @property
    def database_url(self) -> str:
        return self.database.url or f"sqlite+aiosqlite:///{self.data_path / 'dreamloom.db'}"

    @property
    def base_url(self) -> str:
        return f"{self.instance.scheme}://{self.instance.domain}"

    @property
    def host(self) -> str:
        """The domain as it appears in handles and ids (host, with a port when it has one)."""
        return self.instance.domain


SECTIONS: dict[str, type] = {
    f.name: typing.get_type_hints(Settings)[f.name]
    for f in dataclasses.fields(Settings)
    if f.name != "config_path"
}


def _where(path: Path | None) -> str:
    return f" in {path}" if path else ""


def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _coerce(value: Any, typ: Any, key: str, source: str, from_env: bool = False) -> Any:
    """Check a TOML value (or parse an environment string) against a field's type."""
    if isinstance(typ, types.UnionType):
        typ = next(t for t in typing.get_args(typ) if t is not type(None))
    if typ is bool:
        if isinstance(value, bool):
            return value
        if from_env and str(value).lower() in {"1", "true", "yes", "on", "0", "false", "no", "off"}:
            return str(value).lower() in {"1", "true", "yes", "on"}
    elif typ is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if from_env:
            try:
                return int(value)
            except ValueError:
                pass
    elif typ is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if from_env:
            try:
                return float(value)
            except ValueError:
                pass
    elif typ is str and isinstance(value, str):
        return value
    expected = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    raise ConfigError(f"{key} must be {expected.get(typ, typ)}, got {value!r}{source}")


def _normalize_domain(domain: str, where: str) -> str:
    """`Host[:port]` -> lower-case/punycode host with the port kept when it has one."""
    problem = f"[instance] domain {domain!r} is not a host name with an optional port{where}"
    if "/" in domain or "@" in domain:
        raise ConfigError(problem)
    try:
        parts = urlsplit(f"//{domain}")
        host, port = parts.hostname, parts.port
        if not host:
            raise ConfigError(problem)
        normalized = normalize_host(host)
    except (ValueError, InvalidURLError) as exc:
        raise ConfigError(f"{problem}: {exc}") from None
    if ":" in normalized:
        normalized = f"[{normalized}]"
    return f"{normalized}:{port}" if port else normalized


def _validate(settings: Settings, path: Path | None) -> None:
    where = _where(path)
    inst = settings.instance
    if not inst.domain:
        raise ConfigError(
            f"[instance] domain is required{where}: set it to the public host name "
            '(e.g. domain = "images.example.com"), or run `dreamloom init --domain HOST`'
        )
    inst.domain = _normalize_domain(inst.domain, where)
    if inst.scheme not in {"https", "http"}:
        raise ConfigError(
            f'[instance] scheme must be "https" or "http", got {inst.scheme!r}{where}'
        )
    url = settings.database.url
    if url and not url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
        raise ConfigError(
            f"[database] url must start with sqlite+aiosqlite:// or postgresql+asyncpg://, "
            f"got {url!r}{where}"
        )
    if not 0 < settings.server.port < 65536:
        raise ConfigError(f"[server] port must be 1-65535, got {settings.server.port}{where}")
    if settings.server.web_processes < 1:
        raise ConfigError(f"[server] web_processes must be at least 1{where}")
    if not 0 <= settings.server.worker_nice <= 19:
        nice = settings.server.worker_nice
        raise ConfigError(f"[server] worker_nice must be 0-19, got {nice}{where}")
    logs = settings.logging
    logs.level, logs.format = logs.level.lower(), logs.format.lower()
    if logs.level not in LOG_LEVELS:
        raise ConfigError(
            f"[logging] level must be {', '.join(LOG_LEVELS)}, got {logs.level!r}{where}"
        )
    if logs.format not in LOG_FORMATS:
        raise ConfigError(f'[logging] format must be "text" or "json", got {logs.format!r}{where}')
    gen = settings.generator
    if gen.device not in {"auto", "cpu", "cuda", "mps"} and not gen.device.startswith("cuda:"):
        raise ConfigError(f"[generator] device must be auto, cpu, cuda or cuda:N{where}")
    if gen.dtype not in {"auto", "float32", "float16", "bfloat16"}:
        raise ConfigError(
            "[generator] dtype must be auto, float32, float16 or bfloat16, "
            f"got {gen.dtype!r}{where}"
        )
    for key in ("max_queue", "max_batch"):
        if getattr(gen, key) < 1:
            raise ConfigError(f"[generator] {key} must be at least 1{where}")
    fed = settings.federation
    at_least_one = ("delivery_concurrency", "delivery_per_host", "inbox_concurrency",
                    "inbox_actor_per_minute", "inbox_domain_per_minute", "inbox_keep_days",
                    "delivery_keep_days")
    for key in at_least_one:
        if getattr(fed, key) < 1:
            raise ConfigError(f"[federation] {key} must be at least 1{where}")
    for key in ("delivery_timeout_s", "inbox_actor_mb_per_minute"):
        if getattr(fed, key) <= 0:
            raise ConfigError(f"[federation] {key} must be positive{where}")
    _validate_media(settings.media, where)


def _validate_media(media: MediaSettings, where: str) -> None:
    if media.store not in MEDIA_STORES:
        raise ConfigError(f'[media] store must be "local" or "s3", got {media.store!r}{where}')
    for key in ("s3_endpoint_url", "public_base_url"):
        value = getattr(media, key)
        parts = urlsplit(value)
        if value and (parts.scheme not in {"http", "https"} or not parts.netloc):
            raise ConfigError(f"[media] {key} must be an http(s) URL, got {value!r}{where}")
    if media.s3_prefix.startswith("/") or ".." in media.s3_prefix.split("/"):
        raise ConfigError(
            f"[media] s3_prefix must be relative, without '..', got {media.s3_prefix!r}{where}"
        )
    if media.store != "s3":
        return
    if not media.s3_bucket:
        raise ConfigError(f'[media] s3_bucket is required with store = "s3"{where}')
    if bool(media.s3_access_key_id) != bool(media.s3_secret_access_key):
        raise ConfigError(
            f"[media] s3_access_key_id and s3_secret_access_key go together: set both "
            f"(the secret best as DREAMLOOM_MEDIA_S3_SECRET_ACCESS_KEY) or neither{where}"
        )


def settings_from_dict(
    data: dict[str, Any], path: Path | None = None, env: dict[str, str] | None = None
) -> Settings:
    """Build and validate Settings from parsed TOML plus environment overrides."""
    where = _where(path)
    settings = Settings(config_path=path.resolve() if path else None)
    for section, values in data.items():
        if section == EXAMPLE_MARKER and isinstance(values, bool):
            continue  # the example's marker; loading it on purpose (--dir) is fine
        if section not in SECTIONS:
            known = ", ".join(f"[{s}]" for s in SECTIONS)
            raise ConfigError(f"unknown section [{section}]{where} (known sections: {known})")
        if not isinstance(values, dict):
            raise ConfigError(f"{section} must be a [section] table{where}")
        target = getattr(settings, section)
        hints = _field_types(type(target))
        for key, value in values.items():
            if key not in hints:
                known = ", ".join(hints)
                raise ConfigError(
                    f"unknown key [{section}] {key}{where} (known keys in [{section}]: {known})"
                )
            setattr(target, key, _coerce(value, hints[key], f"[{section}] {key}", where))
    for name, raw in sorted((env if env is not None else os.environ).items()):
        if not name.startswith(ENV_PREFIX) or name == "DREAMLOOM_CONFIG":
            continue
        rest = name[len(ENV_PREFIX) :].lower()
        env_section = next((s for s in SECTIONS if rest.startswith(s + "_")), None)
        if env_section is None:
            continue  # other DREAMLOOM_* variables (e.g. test switches) are not settings
        key = rest[len(env_section) + 1 :]
        target = getattr(settings, env_section)
        hints = _field_types(type(target))
        if key not in hints:
            raise ConfigError(
                f"unknown setting {name} in the environment ([{env_section}] has no {key})"
            )
        setattr(target, key, _coerce(raw, hints[key], name, " (environment variable)", True))
    _validate(settings, path)
    return settings


def load_settings(path: Path, env: dict[str, str] | None = None) -> Settings:
    """Read config.toml at `path`; every problem is a ConfigError naming the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if path.parent.name == QUICK_START_DIR and is_example(path.parent.parent / CONFIG_FILENAME):
            raise ConfigError(
                f"no quick-start instance at {path.parent} (the config.toml here is only the "
                "example): make it with `bash scripts/start.sh`, or `dreamloom init --domain "
                f"HOST --dir {QUICK_START_DIR}`; or point --dir at another instance"
            ) from None
        raise ConfigError(
            f"no configuration at {path}: run `dreamloom init --domain HOST` there, "
            "or point --dir / DREAMLOOM_CONFIG at an instance"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    return settings_from_dict(data, path, env)


def is_example(path: Path) -> bool:
    """Whether `path` is the repository's example config.toml (`example = true` on top)."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8")).get(EXAMPLE_MARKER) is True
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False


def locate_config(directory: Path | None, env: dict[str, str] | None = None) -> Path:
    """--dir PATH, else DREAMLOOM_CONFIG, else ./config.toml, unless that is the example:
    then ./instance-data/config.toml, the quick-start instance (which may not exist yet)."""
    environ = env if env is not None else os.environ
    if directory is not None:
        return (
            directory / CONFIG_FILENAME if directory.is_dir() or not directory.suffix else directory
        )
    if environ.get("DREAMLOOM_CONFIG"):
        return Path(environ["DREAMLOOM_CONFIG"])
    here = Path.cwd() / CONFIG_FILENAME
    if is_example(here):
        return Path.cwd() / QUICK_START_DIR / CONFIG_FILENAME
    return here


def as_toml_dict(settings: Settings) -> dict[str, dict[str, Any]]:
    return {name: dataclasses.asdict(getattr(settings, name)) for name in SECTIONS}
