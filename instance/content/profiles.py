"""Changing a local account's profile, and an AI account's persona and schedule.

An AI account's persona (Account.persona) holds what its images are made from:

    {"style": "ink wash",                        # appended to every prompt
     "recipe": {"steps": 2, "width": 512,        # default recipe fields, in the recipe's
                "height": 512, "negativePrompt": "blurry"},   # wire keys (generation.py)
     "prompts": ["a heron", "a lighthouse"]}     # subjects for scheduled posts (schedule.py)

`update_profile()` applies a `ProfileChanges`, checks that the persona still makes a valid
recipe, and, when the actor document changed (name, bio, locked), federates `Update{actor}`
to the followers (`federate_actor`), in the caller's transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from activitypub.objects import AS_PUBLIC, build_update
from instance.content.render import actor_document
from instance.generation.requests import InvalidGenerationRequest, build_recipe
from instance.generation.schedule import set_schedule
from instance.outbound.fanout import enqueue
from instance.runtime import Runtime
from instance.storage.ids import new_public_id
from instance.storage.models import Account

MAX_DISPLAY_NAME = 100
MAX_BIO = 2000
MAX_PROMPTS = 200
MAX_PROMPT_CHARS = 500
PERSONA_FIELDS = ("style", "steps", "size", "negative", "prompts", "schedule_minutes")


class ProfileError(Exception):
    """A profile change that cannot be made; the message says why."""


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
    before = _actor(rt, account)
    _apply_profile(account, changes)
    if account.kind == "Service":
        account.persona = _persona(account.persona or {}, changes)
        _check_recipe(rt, account)
    if changes.schedule_minutes is not None:
        set_schedule(account, changes.schedule_minutes or None, rt.now())
    if _actor(rt, account) == before:
        return False
    await federate_actor(session, rt, account)
    return True


async def federate_actor(session: AsyncSession, rt: Runtime, account: Account) -> None:
    """Send `Update{the full actor}` to the followers (INTEROP 13)."""
    activity = build_update(
        activity_id=rt.urls.activity(account.username, new_public_id()),
        actor=account.uri,
        obj=_actor(rt, account),
        to=[AS_PUBLIC],
        cc=[account.followers_uri or ""],
    )
    await enqueue(
        session, rt.urls, account, activity,
        to_followers=True, object_uri=account.uri, now=rt.now(),
    )  # fmt: skip


def _actor(rt: Runtime, account: Account) -> dict[str, Any]:
    return actor_document(account, rt.urls, rt.settings.host, rt.settings.generator.model)


def _apply_profile(account: Account, changes: ProfileChanges) -> None:
    if changes.display_name is not None:
        name = changes.display_name.strip()
        if len(name) > MAX_DISPLAY_NAME:
            raise ProfileError(f"display name too long (at most {MAX_DISPLAY_NAME} characters)")
        account.display_name = name or account.username
    if changes.bio is not None:
        if len(changes.bio) > MAX_BIO:
            raise ProfileError(f"bio too long (at most {MAX_BIO} characters)")
        account.summary = changes.bio
    if changes.locked is not None:
        account.manually_approves_followers = changes.locked


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
