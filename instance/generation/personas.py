"""`dreamloom account set`: a local account's profile and, for an AI account, its persona
and posting schedule, changed together and checked together.

An AI account's persona (Account.persona) holds what its images are made from:

    {"style": "ink wash",                        # appended to every prompt
     "recipe": {"steps": 2, "width": 512,        # default recipe fields, in the recipe's
                "height": 512, "negativePrompt": "blurry"},   # wire keys (recipes.py)
     "prompts": ["a heron", "a lighthouse"]}     # subjects for scheduled posts (schedule.py)

`update_profile()` applies a `ProfileChanges`: the profile part through
instance/content/profiles.py, the persona here (it must still make a valid recipe), the
schedule through schedule.py; when the actor document changed (name, bio, locked) the
followers get an `Update{actor}`, in the caller's transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from instance.content.profiles import actor_of, apply_profile, federate_actor
from instance.errors import InvalidGenerationRequest, ProfileError
from instance.generation.recipes import build_recipe
from instance.generation.schedule import set_schedule
from instance.runtime import Runtime
from instance.storage.models import Account

MAX_PROMPTS = 200
MAX_PROMPT_CHARS = 500
PERSONA_FIELDS = ("style", "steps", "size", "negative", "prompts", "schedule_minutes")


@dataclass(frozen=True)
class ProfileChanges:
    """What to change; None leaves a field as it is."""

    display_name: str | None = None  # "" resets it to the account name
    bio: str | None = None
    locked: bool | None = None  # approve followers by hand
    style: str | None = None  # "" removes the style
    steps: int | None = None
    size: tuple[int, int] | None = None
    negative: str | None = None  # "" removes the negative prompt
    prompts: list[str] | None = None  # [] falls back to the built-in subjects
    schedule_minutes: int | None = None  # 0 turns the schedule off

    def changed(self) -> list[str]:
        return [f.name for f in fields(self) if getattr(self, f.name) is not None]


async def update_profile(
    session: AsyncSession, rt: Runtime, account: Account, changes: ProfileChanges
) -> bool:
    """Apply `changes`; True when an actor Update was queued for the followers."""
    if account.kind == "Application":
        raise ProfileError("the instance actor cannot be changed")
    if account.kind != "Service" and set(changes.changed()) & set(PERSONA_FIELDS):
        raise ProfileError(
            f"{account.username} is not an AI account: only AI accounts (created with --ai) "
            "have a persona, recipe, prompts or schedule"
        )
    before = actor_of(rt, account)
    apply_profile(
        account, display_name=changes.display_name, bio=changes.bio, locked=changes.locked
    )
    if account.kind == "Service":
        account.persona = _persona(account.persona or {}, changes)
        _check_recipe(rt, account)
    if changes.schedule_minutes is not None:
        set_schedule(account, changes.schedule_minutes or None, rt.now())
    if actor_of(rt, account) == before:
        return False
    await federate_actor(session, rt, account)
    return True


def _persona(old: dict[str, Any], changes: ProfileChanges) -> dict[str, Any]:
    """A new persona dict (a new object, so the JSON column is seen as changed)."""
    persona = dict(old)
    recipe = dict(persona.get("recipe") or {}) if isinstance(persona.get("recipe"), dict) else {}
    if changes.style is not None:
        persona["style"] = changes.style.strip()
    if changes.steps is not None:
        recipe["steps"] = changes.steps
    if changes.size is not None:
        recipe["width"], recipe["height"] = changes.size
    if changes.negative is not None:
        recipe["negativePrompt"] = changes.negative.strip()
    if changes.prompts is not None:
        persona["prompts"] = clean_prompts(changes.prompts)
    persona["recipe"] = {k: v for k, v in recipe.items() if v not in ("", None)}
    return {k: v for k, v in persona.items() if v not in ("", None, [], {})}


def clean_prompts(lines: list[str]) -> list[str]:
    """Subject lines for the schedule: stripped, no blanks or #comments, no duplicates."""
    prompts: list[str] = []
    for line in lines:
        text = line.strip()
        if not text or text.startswith("#") or text in prompts:
            continue
        if len(text) > MAX_PROMPT_CHARS:
            raise ProfileError(
                f"prompt too long (at most {MAX_PROMPT_CHARS} characters): {text[:40]!r}..."
            )
        prompts.append(text)
    if len(prompts) > MAX_PROMPTS:
        raise ProfileError(f"too many prompts: {len(prompts)} (at most {MAX_PROMPTS})")
    return prompts


def _check_recipe(rt: Runtime, account: Account) -> None:
    """The persona must still make a valid recipe (steps, size, ...)."""
    try:
        build_recipe(rt.settings, account, "a test subject", seed=0)
    except InvalidGenerationRequest as exc:
        raise ProfileError(f"invalid persona recipe: {exc}") from None
