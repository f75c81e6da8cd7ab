"""The safety check on generated images: the protocol, and the adapter for shipped checkers.

SD 1.x checkpoints ship a ``StableDiffusionSafetyChecker`` with its CLIP feature extractor;
:func:`safety_checker_of` wraps them (when present on a loaded diffusers pipeline) as a
:class:`SafetyChecker`, which :class:`generator.pipelines.Pipeline` runs on every batch.
A blocked image is withheld with :data:`BLOCKED_REASON`, never returned.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from PIL import Image

BLOCKED_REASON = "blocked by the model's safety checker (possible NSFW content)"


class SafetyChecker(Protocol):
    """Given RGB images, return per image None (fine) or the reason it is blocked."""

    def __call__(self, images: Sequence[Image.Image]) -> list[str | None]: ...


class DiffusersSafetyChecker:
    """Adapter for a diffusers ``StableDiffusionSafetyChecker`` + its CLIP feature extractor."""

    def __init__(self, checker: Any, feature_extractor: Any, device: str, dtype: Any) -> None:
        self.checker = checker
        self.feature_extractor = feature_extractor
        self.device = device
        self.dtype = dtype

    def __call__(self, images: Sequence[Image.Image]) -> list[str | None]:
        import numpy as np

        inputs = self.feature_extractor(list(images), return_tensors="pt")
        clip_input = inputs.pixel_values.to(self.device, self.dtype)
        arrays = np.stack([np.asarray(im, dtype=np.float32) / 255.0 for im in images])
        _, flags = self.checker(clip_input=clip_input, images=arrays)
        return [BLOCKED_REASON if flag else None for flag in flags]


def safety_checker_of(pipe: Any, device: str) -> SafetyChecker | None:
    """The checker shipped with a loaded diffusers pipeline, or None when it has none."""
    checker = getattr(pipe, "safety_checker", None)
    extractor = getattr(pipe, "feature_extractor", None)
    if checker is None or extractor is None:
        return None
    return DiffusersSafetyChecker(checker, extractor, device, pipe.unet.dtype)
