"""Asking for an image: the recipe an account's request becomes, and the bounded job queue.

`enqueue()` is the one way a generation job is made (CLI, web pages, mentions, remixes,
schedules). It writes a `GenerationJob` row in the caller's transaction; the GPU worker
(instance/generation_worker.py) claims it through `DbJobStore` (instance/generation_jobs.py),
writes the PNG, and runs the job's `then` step (e.g. publish a post) in the transaction that
marks it done.

The recipe, field by field, first match wins:

    explicit argument  >  persona["recipe"] (wire keys)  >  [generator] setting  >  the model's
                                                            (0 / negative = unset)   defaults

The persona's `style` is appended to the prompt ("a lighthouse, a dreamy watercolour"). The
model's defaults come from its configs on disk, without loading weights (`model_defaults`):
native size = UNet sample size x VAE scale; 1 step and no guidance for turbo models (and
builtin:tiny), else 25 steps at guidance 7.5 (5.0 for SDXL). The stored recipe leaves
`model`, `weightsHash` and `scheduler` (when unset) empty: the worker fills them with what
actually ran. A seed is drawn at random when none is given.

Refusals (all `GenerationRefused`, with an HTTP status for web handlers):

- `InvalidGenerationRequest` (400): the recipe's or the `then` step's validation message;
- `LowDiskError` (503): less than `[generator] min_free_disk_mb` free (SECURITY 34);
- `QueueFullError` (503 + Retry-After): `[generator] max_queue` jobs queued or running.

The queue bound holds exactly: the new row is inserted *before* the jobs are counted, and the
row is removed again when the count is over the cap. On SQLite the insert takes the database's
single write lock, which is held until the caller commits, so concurrent enqueues count one
after another; on PostgreSQL a transaction-scoped advisory lock does the same. (A prompt that
is too long in tokens is found by the worker, which has the tokenizer: the job fails with
"prompt too long: N tokens, max 77".)
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sqlalchemy import event, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from generator.errors import PromptTooLongError, RecipeError
from generator.pipelines import BUILTIN_TINY
from generator.prompts import check_prompt_length
from generator.recipe import Recipe
from instance.runtime import Runtime
from instance.settings import Settings
from instance.storage.models import Account, GenerationJob
from instance.workers import wake

MiB = 1024 * 1024
ACTIVE = ("queued", "running")
QUEUE_RETRY_AFTER_S = 60
_PG_QUEUE_LOCK = 0x64726C6D  # "drlm": one advisory lock key for the generation queue
_SIZE = re.compile(r"^\s*(\d{1,5})\s*[xX×]\s*(\d{1,5})\s*$")


class GenerationRefused(Exception):
    """A generation request that was not queued; the message says why and what to do."""

    http_status = 400


class InvalidGenerationRequest(GenerationRefused):
    """The recipe (or the `then` step) is invalid: the validation message."""


class LowDiskError(GenerationRefused):
    """Too little free disk space for new images (SECURITY 34)."""

    http_status = 503


class QueueFullError(GenerationRefused):
    """`[generator] max_queue` jobs are already queued or running (SECURITY 33)."""

    http_status = 503
    retry_after_s = QUEUE_RETRY_AFTER_S


# -- the model's own defaults ----------------------------------------------------------------
@dataclass(frozen=True)
class ModelDefaults:
    steps: int
    width: int
    height: int
    guidance: float


def is_sdxl(settings: Settings, configs: dict[str, dict[str, Any]] | None = None) -> bool:
    """Whether the configured model is an SDXL pipeline (by its model_index.json)."""
    configs = _model_configs(settings) if configs is None else configs
    return "XL" in str(configs.get("index", {}).get("_class_name", ""))


def model_defaults(settings: Settings) -> ModelDefaults:
    """Steps, size and guidance the configured model is made for (configs only, no weights)."""
    model = settings.generator.model
    configs = _model_configs(settings)
    sdxl = is_sdxl(settings, configs)
    turbo = model == BUILTIN_TINY or "turbo" in model.lower()
    native = 1024 if sdxl and not turbo else 512
    unet, vae = configs.get("unet", {}), configs.get("vae", {})
    sample, blocks = unet.get("sample_size"), vae.get("block_out_channels")
    if isinstance(sample, int) and isinstance(blocks, list) and blocks:
        native = sample * 2 ** (len(blocks) - 1)
    elif model == BUILTIN_TINY:
        native = 64
    guidance = 0.0 if turbo else (5.0 if sdxl else 7.5)
    return ModelDefaults(steps=1 if turbo else 25, width=native, height=native, guidance=guidance)


def _model_configs(settings: Settings) -> dict[str, dict[str, Any]]:
    """model_index.json, unet/config.json and vae/config.json of the model, where on disk."""
    directory = _model_dir(settings)
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


def _model_dir(settings: Settings) -> Path | None:
    model = settings.generator.model
    if model == BUILTIN_TINY:
        from generator.tiny import TINY_VERSION

        return settings.cache_path / "models" / f"builtin-tiny-v{TINY_VERSION}"
    path = Path(model).expanduser()
    if path.is_dir():
        return path
    try:  # a hub id already in the local cache; never touches the network
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(model, "model_index.json")
    except Exception:
        return None
    return Path(found).parent if isinstance(found, str) else None


# -- recipes -----------------------------------------------------------------------------------
def parse_size(value: str) -> tuple[int, int]:
    """'512x768' -> (512, 768); InvalidGenerationRequest otherwise."""
    m = _SIZE.match(value)
    if not m:
        raise InvalidGenerationRequest(f"size must look like 512x512 (WIDTHxHEIGHT), got {value!r}")
    return int(m.group(1)), int(m.group(2))


def build_recipe(
    settings: Settings,
    account: Account,
    prompt: str,
    *,
    seed: int | None = None,
    steps: int | None = None,
    size: tuple[int, int] | None = None,
    negative: str | None = None,
) -> Recipe:
    """The recipe for `prompt` by `account` (precedence in the module docstring)."""
    persona = account.persona or {}
    style = str(persona.get("style") or "").strip()
    own = persona.get("recipe") if isinstance(persona.get("recipe"), dict) else {}
    gen = settings.generator
    defaults = model_defaults(settings)

    def pick(explicit: Any, persona_key: str, setting: Any, default: Any) -> Any:
        if explicit is not None:
            return explicit
        if own.get(persona_key) is not None:
            return own[persona_key]
        return setting if setting is not None else default

    width, height = size if size is not None else (None, None)
    guidance_setting = gen.guidance if gen.guidance >= 0 else None
    text_prompt = prompt.strip()
    if style and text_prompt:
        text_prompt = f"{text_prompt}, {style}"
    try:
        return Recipe(
            prompt=text_prompt,
            seed=secrets.randbelow(2**32) if seed is None else seed,
            steps=pick(steps, "steps", gen.steps or None, defaults.steps),
            guidance=float(pick(None, "guidance", guidance_setting, defaults.guidance)),
            width=pick(width, "width", gen.width or None, defaults.width),
            height=pick(height, "height", gen.height or None, defaults.height),
            negative_prompt=pick(negative, "negativePrompt", None, ""),
            scheduler=str(own.get("scheduler") or ""),
        )
    except (RecipeError, TypeError, ValueError) as exc:
        raise InvalidGenerationRequest(str(exc)) from None


def _for_this_instance(recipe: Recipe, **overrides: Any) -> Recipe:
    """A given recipe (reproduce, remix) runs on this instance's model; the worker says which."""
    changes = {k: v for k, v in overrides.items() if v is not None}
    try:
        return replace(recipe, model="", weights_hash="", **changes)
    except (RecipeError, TypeError, ValueError) as exc:
        raise InvalidGenerationRequest(str(exc)) from None


def check_prompt_tokens(settings: Settings, recipe: Recipe) -> None:
    """Refuse a prompt the model's tokenizer would truncate, before it is queued (SECURITY 32);
    models whose tokenizer is not on disk yet are checked by the worker."""
    directory = _model_dir(settings)
    if directory is None:
        return
    try:
        check_prompt_length(directory, recipe.prompt)
        if recipe.negative_prompt:
            check_prompt_length(directory, recipe.negative_prompt, field="negative_prompt")
    except PromptTooLongError as exc:
        raise InvalidGenerationRequest(str(exc)) from None


# -- the queue ---------------------------------------------------------------------------------
def check_disk(settings: Settings) -> None:
    """LowDiskError when the media directory's disk has less than min_free_disk_mb free."""
    need = settings.generator.min_free_disk_mb
    path = settings.media_path
    path.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(path).free // MiB
    if free < need:
        raise LowDiskError(
            f"not enough disk space for new images: {free} MiB free in {path}, "
            f"[generator] min_free_disk_mb is {need}; free some space and try again"
        )


async def active_count(session: AsyncSession) -> int:
    return int(
        await session.scalar(
            select(func.count()).select_from(GenerationJob).where(GenerationJob.status.in_(ACTIVE))
        )
        or 0
    )


async def enqueue(
    session: AsyncSession,
    rt: Runtime,
    account: Account,
    request: str | Recipe,
    *,
    seed: int | None = None,
    steps: int | None = None,
    size: tuple[int, int] | None = None,
    negative: str | None = None,
    then: dict[str, Any] | None = None,
    requested_by: str | None = None,
) -> GenerationJob:
    """Queue a generation job for `account` in the caller's transaction (the caller commits).

    `request` is a prompt (the recipe is built as the module docstring says) or a ready
    Recipe (reproduce/remix: used as given, with `seed`/`steps`/`size`/`negative` applied on
    top). `then` is what to do with the image (instance/generation_jobs.py `THEN_STEPS`);
    `requested_by` the actor URI of whoever asked. Raises a GenerationRefused subclass.
    """
    from instance.generation.store import validate_then

    settings = rt.settings
    asked = request.prompt if isinstance(request, Recipe) else request.strip()
    then = validate_then(then or {}, asked)
    if isinstance(request, Recipe):
        width, height = size if size is not None else (None, None)
        recipe = _for_this_instance(
            request, seed=seed, steps=steps, width=width, height=height, negative_prompt=negative
        )
    else:
        recipe = build_recipe(
            settings, account, request, seed=seed, steps=steps, size=size, negative=negative
        )
    check_prompt_tokens(settings, recipe)
    check_disk(settings)
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_QUEUE_LOCK})
    now = rt.now()
    job = GenerationJob(
        account_id=account.id,
        requested_by=requested_by,
        recipe=recipe.to_json(),
        shape_key=recipe.shape_key(),
        then=then,
        status="queued",
        run_at=now,
        created_at=now,
    )
    session.add(job)
    await session.flush()  # the insert first: on SQLite this takes the write lock
    active = await active_count(session)
    if active > settings.generator.max_queue:
        await session.delete(job)
        await session.flush()
        raise QueueFullError(
            f"the generation queue is full ({active - 1} jobs queued or running, "
            f"[generator] max_queue is {settings.generator.max_queue}); "
            f"try again in a minute or two"
        )
    _wake_after_commit(session, rt)
    return job


def _wake_after_commit(session: AsyncSession, rt: Runtime) -> None:
    """Nudge the generation worker once the job is visible to it (no-op without workers)."""
    event.listen(session.sync_session, "after_commit", lambda _s: wake(rt, "generation"),
                 once=True)  # fmt: skip
