"""Find the model named by ``[generator] model`` and say what it is, without loading it.

The setting is one of:

- ``builtin:tiny`` — a real ``StableDiffusionPipeline`` with tiny random weights, built
  offline (:mod:`generator.tiny`), saved once under ``cache_dir`` and reloaded from there;
  ``builtin:sd-turbo-random`` — SD-Turbo's architecture with random weights (benchmarks);
- a local diffusers directory (with ``model_index.json``), e.g. a ``save_pretrained`` output;
- a Hugging Face Hub id (``stabilityai/sd-turbo``): taken from the local HF cache when there,
  downloaded only when the hub is reachable; with ``HF_HUB_OFFLINE=1`` or no network it raises
  :class:`HubUnavailableError` naming the setting.

This module owns: :func:`locate` (setting -> source, local directory, published name),
:func:`model_index` (the pipeline's ``model_index.json``, local or from the hub), the hub
offline/unreachable diagnosis (:func:`hub_offline`, :func:`hub_error`,
:func:`looks_like_network_error`), the weights hash published in recipes
(:func:`weights_sha256`, :func:`hub_snapshot_dir`), and what a model is made for, read from
its configs on disk without loading or fetching anything (:func:`files_on_disk`,
:func:`architecture` from :data:`ARCH_BY_CLASS`, :func:`model_defaults`). Loading the weights
is :mod:`generator.loading`'s job.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from generator import hub
from generator.errors import MODEL_SETTING, HubUnavailableError, ModelLoadError

log = logging.getLogger(__name__)

BUILTIN_TINY = "builtin:tiny"
BUILTIN_SD_TURBO_RANDOM = "builtin:sd-turbo-random"
BUILTIN_MODELS = (BUILTIN_TINY, BUILTIN_SD_TURBO_RANDOM)

Arch = Literal["sd", "sdxl"]
ARCH_BY_CLASS: dict[str, Arch] = {
    "StableDiffusionPipeline": "sd",
    "StableDiffusionImg2ImgPipeline": "sd",
    "StableDiffusionXLPipeline": "sdxl",
    "StableDiffusionXLImg2ImgPipeline": "sdxl",
}
"""The pipelines Dreamloom runs, by ``model_index.json``'s ``_class_name``: Stable Diffusion
1.x/2.x/Turbo and SDXL/SDXL-Turbo."""
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".json", ".txt", ".model")


def effective_model(model: str, cache_dir: Path) -> str:
    """The model that runs for the setting: ``auto`` is :func:`generator.hub.auto_model` once
    fetched into ``cache_dir`` (else the other model ``auto`` can pick, if that one was fetched,
    e.g. with ``device = "cpu"`` on a GPU machine), and builtin:tiny until then; anything else
    is itself."""
    if model != hub.AUTO:
        return model
    first = hub.auto_model()
    for repo in (first, *(r for r in hub.LICENCES if r != first)):
        if hub.cached_dir(repo, cache_dir) is not None:
            return repo
    return BUILTIN_TINY


def locate(model: str, cache_dir: Path, hub_cache: Path | None) -> tuple[str, Path | None, str]:
    """-> (what to pass to from_pretrained, local directory or None, published name).

    A hub id fetched by :func:`generator.hub.fetch` loads from Dreamloom's cache."""
    model = effective_model(model, cache_dir)
    fetched = hub.cached_dir(model, cache_dir)
    if fetched is not None:
        return str(fetched), fetched, model
    if model in BUILTIN_MODELS:
        from generator import tiny

        build = tiny.ensure_tiny_pipeline if model == BUILTIN_TINY else tiny.ensure_sd_turbo_random
        built = build(cache_dir / "models")
        return str(built), built, model
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "model_index.json").is_file():
            raise ModelLoadError(
                f"{MODEL_SETTING} = {model!r} is a directory without model_index.json; "
                "point it at a diffusers model directory (save_pretrained output), a hub id "
                "such as 'stabilityai/sd-turbo', or builtin:tiny"
            )
        return str(path), path, path.resolve().name
    if _HUB_ID.match(model) and not model.startswith((".", "/", "~")):
        return model, None, model
    raise ModelLoadError(
        f"{MODEL_SETTING} = {model!r} is not a directory, a hub id (owner/name) or "
        "builtin:tiny; set it to a diffusers model directory, e.g. "
        "'/srv/models/sd-turbo', a hub id such as 'stabilityai/sd-turbo', or builtin:tiny"
    )


def hub_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` is set (the environment or huggingface_hub's constant)."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        return True
    try:
        from huggingface_hub import constants
    except ImportError:  # pragma: no cover - a diffusers dependency
        return False
    return bool(constants.HF_HUB_OFFLINE)


def hub_error(model: str, exc: BaseException | None) -> HubUnavailableError:
    """The error for a hub id that is neither cached nor downloadable, naming the setting."""
    why = "HF_HUB_OFFLINE is set" if hub_offline() else "the Hugging Face Hub is unreachable"
    detail = f" ({type(exc).__name__}: {exc})" if exc is not None else ""
    return HubUnavailableError(
        f"{MODEL_SETTING} = {model!r} is a hub id that is not in the local cache, and {why}"
        f"{detail}. If you meant a local directory, it does not exist. "
        f"Download the model once where the hub is reachable "
        f"(e.g. `hf download {model}`), or set {MODEL_SETTING} to a local diffusers "
        "directory or builtin:tiny."
    )


def model_index(source: str, model_dir: Path | None, hub_cache: Path | None) -> dict[str, Any]:
    """The model's ``model_index.json`` (its ``_class_name`` tells the architecture)."""
    if model_dir is not None or Path(source).is_dir():
        base = model_dir if model_dir is not None else Path(source)
        try:
            data = json.loads((base / "model_index.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelLoadError(
                f"{MODEL_SETTING}: cannot read {base / 'model_index.json'}: {exc}"
            ) from exc
        return data if isinstance(data, dict) else {}
    from huggingface_hub import hf_hub_download

    offline = hub_offline()
    try:
        path = hf_hub_download(
            source, "model_index.json", cache_dir=hub_cache, local_files_only=offline
        )
    except Exception as exc:  # offline, DNS, connection, 401/404 ...
        if offline or looks_like_network_error(exc):
            raise hub_error(source, exc) from exc
        raise ModelLoadError(
            f"{MODEL_SETTING} = {source!r}: cannot fetch model_index.json from the hub: {exc}"
        ) from exc
    return json.loads(Path(path).read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def looks_like_network_error(exc: BaseException) -> bool:
    """Whether ``exc`` (or anything in its cause/context chain) is a network/offline failure."""
    names = {type(e).__name__ for e in _chain(exc)}
    hints = ("Connect", "Timeout", "NameResolution", "LocalEntryNotFound", "Offline")
    return any(h in n for n in names for h in hints)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        yield cur
        cur = cur.__cause__ or cur.__context__


def hub_snapshot_dir(repo_id: str, hub_cache: Path | None) -> Path | None:
    """The cached snapshot directory of a hub model, or None (logged) when it is not found."""
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id, cache_dir=hub_cache, local_files_only=True))
    except Exception:  # the hash is informative; never fail a load over it
        log.warning("could not locate the hub snapshot of %s to hash its weights", repo_id)
        return None


def weights_sha256(model_dir: Path, cache_dir: Path | None = None) -> str:
    """``sha256:`` over the model's weight and config files (relative path + file hash).

    File hashes are cached in ``cache_dir/weights-hashes.json`` by (path, size, mtime), so a
    restart does not re-read gigabytes of weights.
    """
    cache_file = cache_dir / "weights-hashes.json" if cache_dir is not None else None
    cache: dict[str, str] = {}
    if cache_file is not None and cache_file.is_file():
        with contextlib.suppress(OSError, ValueError):
            cache = json.loads(cache_file.read_text(encoding="utf-8"))
    outer = hashlib.sha256()
    changed = False
    files = sorted(
        p
        for p in model_dir.rglob("*")
        if p.suffix in _WEIGHT_SUFFIXES and not any(part.startswith(".") for part in p.parts[-2:])
    )
    for p in files:
        real = p.resolve()
        if not real.is_file():
            continue
        st = real.stat()
        key = f"{real}|{st.st_size}|{st.st_mtime_ns}"
        digest = cache.get(key)
        if digest is None:
            h = hashlib.sha256()
            with open(real, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
            digest = cache[key] = h.hexdigest()
            changed = True
        outer.update(f"{p.relative_to(model_dir).as_posix()}\0{digest}\n".encode())
    if changed and cache_file is not None:
        with contextlib.suppress(OSError):
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(cache), encoding="utf-8")
            tmp.replace(cache_file)
    return "sha256:" + outer.hexdigest()


# -- what a model is made for, from its configs on disk -----------------------------------------
@dataclass(frozen=True)
class ModelDefaults:
    """The recipe a model is made for, where a request leaves it open."""

    steps: int
    width: int
    height: int
    guidance: float


def files_on_disk(model: str, cache_dir: Path, hub_cache: Path | None = None) -> Path | None:
    """The model's directory if its files are already on disk; never builds, downloads or
    loads anything. A builtin model counts once built, a hub id once in the local cache."""
    model = effective_model(model, cache_dir)
    fetched = hub.cached_dir(model, cache_dir)
    if fetched is not None:
        return fetched
    if model in BUILTIN_MODELS:
        from generator import tiny

        name = (
            f"builtin-tiny-v{tiny.TINY_VERSION}"
            if model == BUILTIN_TINY
            else f"sd-turbo-random-v{tiny.SD_TURBO_RANDOM_VERSION}"
        )
        built = cache_dir / "models" / name
        return built if (built / "model_index.json").is_file() else None
    path = Path(model).expanduser()
    if path.is_dir():
        return path
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(model, "model_index.json", cache_dir=hub_cache)
    except Exception:  # not a hub id, or no cache: nothing on disk
        return None
    return Path(found).parent if isinstance(found, str) else None


def _configs(directory: Path | None) -> dict[str, dict[str, Any]]:
    """model_index.json, unet/config.json and vae/config.json, those that can be read."""
    out: dict[str, dict[str, Any]] = {}
    if directory is None:
        return out
    for key, rel in (("index", "model_index.json"), ("unet", "unet/config.json"),
                     ("vae", "vae/config.json")):  # fmt: skip
        try:
            data = json.loads((directory / rel).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict):
            out[key] = data
    return out


def architecture(model: str, cache_dir: Path, hub_cache: Path | None = None) -> Arch | None:
    """The model's architecture (:data:`ARCH_BY_CLASS`), None when its configs are not on
    disk or it is no pipeline Dreamloom runs."""
    index = _configs(files_on_disk(model, cache_dir, hub_cache)).get("index", {})
    return ARCH_BY_CLASS.get(str(index.get("_class_name", "")))


def model_defaults(model: str, cache_dir: Path, hub_cache: Path | None = None) -> ModelDefaults:
    """Steps, size and guidance the model is made for.

    Native size: the UNet's sample size times the VAE's scale (2 ^ (blocks - 1)); without
    configs, 1024 for SDXL and 512 otherwise (64 for builtin:tiny). Turbo models (by name,
    and builtin:tiny) take 1 step without guidance; others 25 steps at guidance 7.5 (5.0 for
    SDXL)."""
    model = effective_model(model, cache_dir)
    configs = _configs(files_on_disk(model, cache_dir, hub_cache))
    sdxl = ARCH_BY_CLASS.get(str(configs.get("index", {}).get("_class_name", ""))) == "sdxl"
    turbo = model == BUILTIN_TINY or any(k in model.lower() for k in ("turbo", "sdxs"))
    native = 1024 if sdxl and not turbo else 512
    sample = configs.get("unet", {}).get("sample_size")
    blocks = configs.get("vae", {}).get("block_out_channels")
    if isinstance(sample, int) and isinstance(blocks, list) and blocks:
        native = sample * 2 ** (len(blocks) - 1)
    elif model == BUILTIN_TINY:
        native = 64
    guidance = 0.0 if turbo else (5.0 if sdxl else 7.5)
    return ModelDefaults(steps=1 if turbo else 25, width=native, height=native, guidance=guidance)
