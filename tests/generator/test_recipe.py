"""Recipe: wire format, validation messages, shape keys; no torch import."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from generator.errors import RecipeError
from generator.recipe import MAX_SEED, GenerationResult, Recipe, Timings


def make(**kw) -> Recipe:
    base = dict(prompt="a lighthouse at dusk", seed=42, steps=2, width=64, height=64)
    base.update(kw)
    return Recipe(**base)


def test_wire_format_keys_are_stable() -> None:
    r = make(negative_prompt="blurry", guidance=1.5, scheduler="DDIMScheduler",
             model="builtin:tiny", weights_hash="sha256:" + "a" * 64)
    assert r.to_json() == {
        "model": "builtin:tiny",
        "weightsHash": "sha256:" + "a" * 64,
        "prompt": "a lighthouse at dusk",
        "negativePrompt": "blurry",
        "seed": 42,
        "steps": 2,
        "guidance": 1.5,
        "scheduler": "DDIMScheduler",
        "width": 64,
        "height": 64,
    }


def test_remix_roundtrip_through_json_text() -> None:
    r = make(parent="https://other.example/media/p.png", strength=0.5, prompt="été 🐱")
    wire = json.loads(json.dumps(r.to_json()))
    assert wire["parent"] == "https://other.example/media/p.png"
    assert wire["strength"] == 0.5
    assert Recipe.from_json(wire) == r
    assert r.is_remix and not make().is_remix


def test_from_json_ignores_unknown_keys_and_accepts_int_numbers() -> None:
    r = Recipe.from_json({"prompt": "x", "seed": 1, "guidance": 2, "futureKey": [1],
                          "parent": "p.png", "strength": 1, "steps": 1})
    assert r.guidance == 2.0 and isinstance(r.guidance, float)
    assert r.strength == 1.0


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "recipe must be a JSON object"),
        ({"seed": 1}, "recipe is missing 'prompt'"),
        ({"prompt": "x"}, "recipe is missing 'seed'"),
        ({"prompt": "x", "seed": "1"}, "seed must be an integer"),
        ({"prompt": "x", "seed": True}, "seed must be an integer"),
        ({"prompt": "x", "seed": 1, "width": 64.0}, "width must be an integer"),
        ({"prompt": "x", "seed": 1, "guidance": "high"}, "guidance must be a finite number"),
    ],
)
def test_from_json_rejects_bad_input(data, message: str) -> None:
    with pytest.raises(RecipeError, match=message):
        Recipe.from_json(data)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"prompt": "   "}, "prompt must not be empty"),
        ({"prompt": "x" * 4001}, "prompt too long: 4001 characters, max 4000"),
        ({"width": 100}, "width must be a multiple of 8, got 100"),
        ({"height": 8}, "height must be between 16 and 2048 pixels, got 8"),
        ({"width": 4096}, "width must be between 16 and 2048 pixels, got 4096"),
        ({"steps": 0}, "steps must be between 1 and 100, got 0"),
        ({"steps": 101}, "steps must be between 1 and 100, got 101"),
        ({"seed": -1}, "seed must be between 0 and"),
        ({"seed": MAX_SEED + 1}, "seed must be between 0 and"),
        ({"guidance": float("nan")}, "guidance must be a finite number"),
        ({"guidance": 31.0}, "guidance must be between 0.0 and 30.0, got 31.0"),
        ({"scheduler": "MagicScheduler"}, "unknown scheduler 'MagicScheduler'"),
        ({"weights_hash": "md5:abc"}, "weights_hash must be empty or 'sha256:'"),
        ({"strength": 0.5}, "strength is only allowed with a parent image"),
        ({"parent": "p.png"}, "a remix \\(parent set\\) needs a strength"),
        ({"parent": "p.png", "strength": 0.0}, "strength must be > 0 and <= 1"),
        ({"parent": "p.png", "strength": 1.5}, "strength must be > 0 and <= 1"),
        ({"parent": "p.png", "strength": 0.3, "steps": 2}, "steps x strength"),
        ({"parent": "", "strength": 0.5}, "parent must be 1 to"),
    ],
)
def test_validation_messages(kw, message: str) -> None:
    with pytest.raises(RecipeError, match=message):
        make(**kw)


def test_recipe_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        make(steps=0)


def test_shape_key_groups_what_can_share_a_batch() -> None:
    a = make()
    assert a.shape_key() == make(prompt="other", seed=7, negative_prompt="n").shape_key()
    for kw in ({"width": 72}, {"height": 72}, {"steps": 3}, {"guidance": 2.0},
               {"scheduler": "DDIMScheduler"}, {"model": "builtin:tiny"},
               {"parent": "p.png", "strength": 1.0}):
        assert make(**kw).shape_key() != a.shape_key(), kw
    remix = make(parent="a.png", strength=0.5)
    assert remix.shape_key() == make(parent="b.png", strength=0.5, seed=9).shape_key()
    assert remix.shape_key() != make(parent="a.png", strength=1.0).shape_key()


def test_parameters_text_is_human_readable() -> None:
    text = make(negative_prompt="blurry", parent="p.png", strength=0.5).parameters_text()
    assert text.splitlines()[0] == "a lighthouse at dusk"
    assert "Negative prompt: blurry" in text
    assert "Seed: 42" in text and "Size: 64x64" in text and "Denoising strength: 0.5" in text


def test_result_and_timings(tmp_path) -> None:
    p = tmp_path / "x.png"
    p.write_bytes(b"png")
    res = GenerationResult(path=p, sha256="0" * 64, width=64, height=64, blurhash="L",
                           size_bytes=3, recipe=make(), timings=Timings(queue_ms=1.234))
    assert res.read_bytes() == b"png"
    assert res.timings.to_json()["queue_ms"] == 1.2
    assert res.media_type == "image/png" and res.c2pa is False


def test_importing_recipe_png_and_errors_does_not_import_torch() -> None:
    code = ("import sys, generator.recipe, generator.png, generator.errors, generator.worker;"
            "print('torch' in sys.modules, 'diffusers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
