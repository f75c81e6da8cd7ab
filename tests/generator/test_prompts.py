"""Prompt length checked against the model's tokenizer on disk, before anything is queued."""

from __future__ import annotations

from pathlib import Path

import pytest

from generator.errors import PromptTooLongError
from generator.prompts import check_prompt_length
from generator.tiny import ensure_tiny_pipeline


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_tiny_pipeline(tmp_path_factory.mktemp("prompts-cache"))


def test_counts_agree_with_the_loaded_pipeline(model_dir: Path, tiny) -> None:
    for prompt in ("a heron", "a lighthouse at dawn, watercolour", "x" * 60):
        assert check_prompt_length(model_dir, prompt) == tiny.tokenize_length(prompt)


def test_too_long_is_an_error_never_a_truncation(model_dir: Path) -> None:
    """10k characters -> 'prompt too long (N tokens, max 77)', never a silent cut."""
    with pytest.raises(PromptTooLongError, match=r"prompt too long: \d+ tokens, max 77"):
        check_prompt_length(model_dir, "a" * 10_000)
    with pytest.raises(PromptTooLongError, match="negative prompt too long"):
        check_prompt_length(model_dir, "b" * 200, field="negative_prompt")


def test_model_without_tokenizer_is_left_to_the_worker(tmp_path: Path) -> None:
    assert check_prompt_length(tmp_path, "anything") is None
