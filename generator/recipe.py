"""The recipe of a generated image, and the result of generating it.

A :class:`Recipe` is everything needed to make an image again: model and weights hash, prompt,
negative prompt, seed, steps, guidance, scheduler, size, and for an image-to-image remix the
parent image and the strength. It federates as a plain JSON object (:meth:`Recipe.to_json`)
whose key names are the wire format; the activitypub package places that object under
Dreamloom's own JSON-LD namespace. Keys, once published, never change meaning: add new ones
instead, and :meth:`Recipe.from_json` ignores keys it does not know.

Wire format (``to_json``)::

    {"model": "builtin:tiny", "weightsHash": "sha256:…", "prompt": "…", "negativePrompt": "",
     "seed": 42, "steps": 2, "guidance": 0.0, "scheduler": "EulerDiscreteScheduler",
     "width": 512, "height": 512,
     "parent": "https://example.com/media/…png", "strength": 0.6}   # remixes only

``model`` may be ``""`` in a request ("this instance's model") and ``scheduler`` may be ``""``
("the model's default"); the worker fills both, and ``weightsHash``, into the recipe of the
result, so a published recipe always says what actually ran.

This module imports neither torch nor diffusers.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from generator.errors import RecipeError

MAX_SEED = 2**53 - 1
"""Seeds stay exact in JSON numbers read by JavaScript peers (IEEE double)."""
MIN_STEPS, MAX_STEPS = 1, 100
MIN_SIZE, MAX_SIZE = 16, 2048
MAX_PIXELS = 2048 * 2048
MIN_GUIDANCE, MAX_GUIDANCE = 0.0, 30.0
MAX_PROMPT_CHARS = 4000
"""A cheap bound before tokenizing; the real limit is in tokens (``Pipeline.check_prompt``)."""
MAX_REF_CHARS = 2048

SCHEDULERS: frozenset[str] = frozenset(
    {
        "DDIMScheduler",
        "DDPMScheduler",
        "PNDMScheduler",
        "LMSDiscreteScheduler",
        "EulerDiscreteScheduler",
        "EulerAncestralDiscreteScheduler",
        "DPMSolverMultistepScheduler",
        "DPMSolverSinglestepScheduler",
        "HeunDiscreteScheduler",
        "KDPM2DiscreteScheduler",
        "UniPCMultistepScheduler",
        "LCMScheduler",
    }
)
"""diffusers scheduler class names a recipe may name (``""`` = the model's default)."""

_WEIGHTS_HASH = re.compile(r"^(sha256:[0-9a-f]{64})?$")


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise RecipeError(message)


@dataclass(frozen=True, slots=True)
class Recipe:
    """One image's recipe. Validated on construction; raises :class:`RecipeError`."""

    prompt: str
    seed: int
    steps: int = 1
    guidance: float = 0.0
    width: int = 512
    height: int = 512
    negative_prompt: str = ""
    scheduler: str = ""
    model: str = ""
    weights_hash: str = ""
    parent: str | None = None
    """Remixes: the parent image, an https URL (federated) or a local media path."""
    strength: float | None = None
    """Remixes: how far from the parent to go, 0 < strength <= 1 (1 = ignore it entirely)."""

    def __post_init__(self) -> None:
        self._validate()

    def _validate(self) -> None:
        for name in ("prompt", "negative_prompt", "scheduler", "model", "weights_hash"):
            _check(isinstance(getattr(self, name), str), f"{name} must be a string")
        _check(bool(self.prompt.strip()), "prompt must not be empty")
        for name in ("prompt", "negative_prompt"):
            n = len(getattr(self, name))
            _check(
                n <= MAX_PROMPT_CHARS,
                f"{name} too long: {n} characters, max {MAX_PROMPT_CHARS}",
            )
        _check(_is_int(self.seed), "seed must be an integer")
        _check(0 <= self.seed <= MAX_SEED, f"seed must be between 0 and {MAX_SEED}")
        _check(_is_int(self.steps), "steps must be an integer")
        _check(
            MIN_STEPS <= self.steps <= MAX_STEPS,
            f"steps must be between {MIN_STEPS} and {MAX_STEPS}, got {self.steps}",
        )
        _check(
            _is_number(self.guidance) and math.isfinite(self.guidance),
            "guidance must be a finite number",
        )
        _check(
            MIN_GUIDANCE <= self.guidance <= MAX_GUIDANCE,
            f"guidance must be between {MIN_GUIDANCE} and {MAX_GUIDANCE}, got {self.guidance}",
        )
        for name in ("width", "height"):
            v = getattr(self, name)
            _check(_is_int(v), f"{name} must be an integer")
            _check(
                MIN_SIZE <= v <= MAX_SIZE,
                f"{name} must be between {MIN_SIZE} and {MAX_SIZE} pixels, got {v}",
            )
            _check(v % 8 == 0, f"{name} must be a multiple of 8, got {v}")
        _check(
            self.width * self.height <= MAX_PIXELS,
            f"image too large: {self.width}x{self.height}, max {MAX_PIXELS} pixels",
        )
        _check(
            self.scheduler == "" or self.scheduler in SCHEDULERS,
            f"unknown scheduler {self.scheduler!r}; one of: {', '.join(sorted(SCHEDULERS))}",
        )
        _check(len(self.model) <= 200, "model must be at most 200 characters")
        _check(
            bool(_WEIGHTS_HASH.match(self.weights_hash)),
            "weights_hash must be empty or 'sha256:' followed by 64 lowercase hex digits",
        )
        if self.parent is None:
            _check(self.strength is None, "strength is only allowed with a parent image")
        else:
            _check(isinstance(self.parent, str), "parent must be a string (URL or path)")
            _check(
                0 < len(self.parent) <= MAX_REF_CHARS,
                f"parent must be 1 to {MAX_REF_CHARS} characters",
            )
            _check(self.strength is not None, "a remix (parent set) needs a strength")
            s = self.strength
            _check(
                s is not None and _is_number(s) and 0.0 < s <= 1.0,
                "strength must be > 0 and <= 1",
            )
            assert s is not None
            _check(
                int(self.steps * s) >= 1,
                f"a remix runs steps x strength denoising steps; {self.steps} x {s} is less "
                "than 1: raise steps or strength",
            )

    @property
    def is_remix(self) -> bool:
        """True for image-to-image recipes (a parent image is given)."""
        return self.parent is not None

    def shape_key(self) -> str:
        """Recipes with equal keys can run in one batch.

        Everything a diffusers call takes as one scalar for the whole batch is in the key:
        model, mode, size, steps, guidance (classifier-free guidance doubles the batch when
        > 1), scheduler and strength. Prompts, negative prompts and seeds may differ per item.
        """
        mode = f"img2img@{self.strength!r}" if self.is_remix else "txt2img"
        return (
            f"{self.model}|{mode}|{self.width}x{self.height}|steps={self.steps}"
            f"|guidance={float(self.guidance)!r}|{self.scheduler}"
        )

    def to_json(self) -> dict[str, Any]:
        """The wire format: a plain JSON-able dict with stable camelCase keys."""
        out: dict[str, Any] = {
            "model": self.model,
            "weightsHash": self.weights_hash,
            "prompt": self.prompt,
            "negativePrompt": self.negative_prompt,
            "seed": self.seed,
            "steps": self.steps,
            "guidance": float(self.guidance),
            "scheduler": self.scheduler,
            "width": self.width,
            "height": self.height,
        }
        if self.parent is not None:
            out["parent"] = self.parent
            out["strength"] = float(self.strength) if self.strength is not None else None
        return out

    @classmethod
    def from_json(cls, data: Any) -> Recipe:
        """Parse the wire format; unknown keys are ignored, bad values raise RecipeError."""
        if not isinstance(data, dict):
            raise RecipeError("recipe must be a JSON object")
        kwargs: dict[str, Any] = {}
        for wire, attr in _WIRE_TO_ATTR.items():
            if wire in data and data[wire] is not None:
                kwargs[attr] = data[wire]
        for required in ("prompt", "seed"):
            if required not in kwargs:
                raise RecipeError(f"recipe is missing {required!r}")
        if "guidance" in kwargs and _is_int(kwargs["guidance"]):
            kwargs["guidance"] = float(kwargs["guidance"])
        if "strength" in kwargs and _is_int(kwargs["strength"]):
            kwargs["strength"] = float(kwargs["strength"])
        return cls(**kwargs)

    def parameters_text(self) -> str:
        """A human-readable one-paragraph summary (the PNG ``parameters`` chunk)."""
        lines = [self.prompt]
        if self.negative_prompt:
            lines.append(f"Negative prompt: {self.negative_prompt}")
        parts = [
            f"Steps: {self.steps}",
            f"Sampler: {self.scheduler or 'default'}",
            f"CFG scale: {float(self.guidance):g}",
            f"Seed: {self.seed}",
            f"Size: {self.width}x{self.height}",
            f"Model: {self.model or 'default'}",
        ]
        if self.weights_hash:
            parts.append(f"Model hash: {self.weights_hash}")
        if self.parent is not None:
            parts.append(f"Denoising strength: {self.strength}")
            parts.append(f"Parent: {self.parent}")
        lines.append(", ".join(parts))
        return "\n".join(lines)


_WIRE_TO_ATTR = {
    "model": "model",
    "weightsHash": "weights_hash",
    "prompt": "prompt",
    "negativePrompt": "negative_prompt",
    "seed": "seed",
    "steps": "steps",
    "guidance": "guidance",
    "scheduler": "scheduler",
    "width": "width",
    "height": "height",
    "parent": "parent",
    "strength": "strength",
}
assert set(_WIRE_TO_ATTR.values()) == {f.name for f in fields(Recipe)}


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


@dataclass(frozen=True, slots=True)
class Timings:
    """Where the time went, in milliseconds. Batch stages are shared by the batch's jobs."""

    queue_ms: float = 0.0
    """From enqueue to the worker claiming the job."""
    load_ms: float = 0.0
    """Pipeline load (and warm-up) paid by this batch; 0 once loaded."""
    denoise_ms: float = 0.0
    """Text encoding and the denoising loop, for the whole batch."""
    decode_ms: float = 0.0
    """VAE decode (+ safety check), for the whole batch."""
    encode_ms: float = 0.0
    """PNG + blurhash + hash for this image."""

    def to_json(self) -> dict[str, float]:
        """Plain dict, rounded to 0.1 ms."""
        return {k: round(v, 1) for k, v in asdict(self).items()}


@dataclass(frozen=True, slots=True)
class GenerationResult:
    """A finished image on disk, with everything a post needs about it."""

    path: Path
    """The PNG file, with a random (uuid) name inside the worker's media directory."""
    sha256: str
    """Hex SHA-256 of the file's bytes."""
    width: int
    height: int
    blurhash: str
    size_bytes: int
    recipe: Recipe
    """The recipe as run: model, weights hash and scheduler filled in."""
    timings: Timings = field(default_factory=Timings)
    media_type: str = "image/png"
    c2pa: bool = False
    """True when a signed C2PA manifest is embedded in the file."""

    def read_bytes(self) -> bytes:
        """The PNG file's bytes."""
        return self.path.read_bytes()
