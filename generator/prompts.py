"""Prompt length against the model's own tokenizer, without loading the model.

CLIP text encoders take 77 tokens; a longer prompt would be cut silently by diffusers. The
worker checks again with the loaded pipeline (`Pipeline.check_prompt`); this lets a request be
refused at once, before it is queued, instead of cut. The tokenizer is read from the model's
directory on disk (no hub access) and kept per directory.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from generator.errors import PromptTooLongError


@functools.lru_cache(maxsize=4)
def _tokenizer(directory: str) -> Any:
    from transformers import CLIPTokenizer

    return CLIPTokenizer.from_pretrained(directory, local_files_only=True)


def tokenizer_dir(model_dir: Path) -> Path | None:
    """The model's (first) tokenizer directory; SDXL's second one has the same 77 limit."""
    candidate = model_dir / "tokenizer"
    return candidate if (candidate / "tokenizer_config.json").is_file() else None


def check_prompt_length(model_dir: Path, prompt: str, *, field: str = "prompt") -> int | None:
    """The prompt's token count (BOS/EOS included); PromptTooLongError past the limit; None when
    the model has no tokenizer on disk (the worker checks later)."""
    directory = tokenizer_dir(model_dir)
    if directory is None:
        return None
    tokenizer = _tokenizer(str(directory))
    count = len(tokenizer(prompt, truncation=False, verbose=False).input_ids)
    limit = int(tokenizer.model_max_length)
    if count > limit:
        raise PromptTooLongError(count, limit, field=field)
    return count
