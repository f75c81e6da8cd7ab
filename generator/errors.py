"""Every exception the generator package raises on purpose.

The tree (all subclass :class:`Exception`; catch :class:`GeneratorError` for "any of ours")::

    GeneratorError
    ├── RecipeError            a recipe field is missing or out of bounds (also a ValueError)
    │   └── PromptTooLongError the prompt needs more tokens than the text encoder takes
    ├── ModelLoadError         the `[generator] model` setting cannot be loaded
    │   └── HubUnavailableError  a hub id was given but the hub is offline / unreachable
    │       └── HubUnreachableError  a download from the hub failed for want of a connection
    ├── ParentImageError       a remix's parent image is missing, too big or not an image
    ├── GenerationTimeout      a batch ran past its deadline (checked between steps)
    ├── OutOfGPUMemory         the device ran out of memory (CUDA OOM, normalised)
    └── ProvenanceError        C2PA signing failed or c2pa-python is not installed

Messages are written for the person who has to fix the problem: they name the setting or the
field and say what would be accepted.
"""

from __future__ import annotations

MODEL_SETTING = "[generator] model"


class GeneratorError(Exception):
    """Base class of every error raised on purpose by :mod:`generator`."""


class RecipeError(GeneratorError, ValueError):
    """A recipe is invalid; the message names the field and the accepted range."""


class PromptTooLongError(RecipeError):
    """The prompt is longer than the text encoder's context (never silently truncated)."""

    def __init__(self, tokens: int, max_tokens: int, *, field: str = "prompt") -> None:
        self.tokens = tokens
        self.max_tokens = max_tokens
        self.field = field
        super().__init__(f"{field.replace('_', ' ')} too long: {tokens} tokens, max {max_tokens}")


class ModelLoadError(GeneratorError):
    """The configured model cannot be loaded; the message says how to fix the setting."""


class HubUnavailableError(ModelLoadError):
    """A hub model id was configured, but the hub is offline or unreachable."""


class HubUnreachableError(HubUnavailableError):
    """Fetching a model failed: no connection to the hub, a timeout, or ``HF_HUB_OFFLINE``."""


class ParentImageError(GeneratorError):
    """The parent image of an image-to-image remix cannot be used."""


class GenerationTimeout(GeneratorError):
    """Generation ran past its deadline."""


class OutOfGPUMemory(GeneratorError):
    """The accelerator ran out of memory for this batch."""


class ProvenanceError(GeneratorError):
    """A C2PA manifest could not be made (or c2pa-python is missing)."""
