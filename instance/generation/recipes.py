"""The recipe an image request becomes on this instance.

Field by field, first match wins:

    explicit argument  >  persona["recipe"] (wire keys)  >  [generator] setting  >  the model's
                                                            (0 / negative = unset)   defaults

The persona's `style` is appended to the prompt ("a lighthouse, a dreamy watercolour"). The
model's defaults come from its configs on disk, without loading weights
(`generator.locating.model_defaults`). The recipe leaves `model`, `weightsHash` and
`scheduler` (when unset) empty: the GPU worker fills them with what actually ran. A seed is
drawn at random when none is given. A recipe taken from elsewhere (a reproduction, a remix)
runs on this instance's model (`for_this_instance`).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import replace
from typing import Any

from generator.errors import PromptTooLongError, RecipeError
from generator.locating import files_on_disk, model_defaults
from generator.prompts import check_prompt_length
from generator.recipe import Recipe
from instance.errors import InvalidGenerationRequest
from instance.settings import Settings
from instance.storage.models import Account

_SIZE = re.compile(r"^\s*(\d{1,5})\s*[xX×]\s*(\d{1,5})\s*$")


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
    found = persona.get("recipe")
    own: dict[str, Any] = found if isinstance(found, dict) else {}
    gen = settings.generator
    defaults = model_defaults(gen.model, settings.cache_path)

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


def for_this_instance(recipe: Recipe, **overrides: Any) -> Recipe:
    """A given recipe (reproduce, remix) runs on this instance's model; the worker says which."""
    changes = {k: v for k, v in overrides.items() if v is not None}
    try:
        return replace(recipe, model="", weights_hash="", **changes)
    except (RecipeError, TypeError, ValueError) as exc:
        raise InvalidGenerationRequest(str(exc)) from None


def warm_prompt_check(settings: Settings) -> None:
    """Load what `check_prompt_tokens` needs (transformers and the model's tokenizer: seconds
    of CPU), so that the first ask a process handles does not pay for it mid-flood."""
    directory = files_on_disk(settings.generator.model, settings.cache_path)
    if directory is not None:
        check_prompt_length(directory, "warm-up")


def check_prompt_tokens(settings: Settings, recipe: Recipe) -> None:
    """Refuse a prompt the model's tokenizer would silently truncate, before it is queued;
    models whose tokenizer is not on disk yet are checked by the GPU worker."""
    directory = files_on_disk(settings.generator.model, settings.cache_path)
    if directory is None:
        return
    try:
        check_prompt_length(directory, recipe.prompt)
        if recipe.negative_prompt:
            check_prompt_length(directory, recipe.negative_prompt, field="negative_prompt")
    except PromptTooLongError as exc:
        raise InvalidGenerationRequest(str(exc)) from None
