"""Pipelines: builtin:tiny end to end on CPU, determinism, batching, limits, load errors."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from generator.devices import is_out_of_memory, resolve_dtype
from generator.errors import (
    GenerationTimeout,
    HubUnavailableError,
    ModelLoadError,
    OutOfGPUMemory,
    ParentImageError,
    PromptTooLongError,
    RecipeError,
)
from generator.loading import load_pipeline
from generator.locating import weights_sha256
from generator.pipelines import Pipeline
from generator.recipe import Recipe
from generator.safety import BLOCKED_REASON

SIZE = 32


def r(prompt: str = "a red fox in snow", seed: int = 1, **kw) -> Recipe:
    base = dict(prompt=prompt, seed=seed, steps=2, guidance=6.0, width=SIZE, height=SIZE)
    base.update(kw)
    return Recipe(**base)


def pixels(pipe: Pipeline, recipes: list[Recipe], parents=None) -> list[np.ndarray]:
    out = pipe.generate(recipes, parents)
    return [np.asarray(g.image) for g in out]


def digest(a: np.ndarray) -> str:
    return hashlib.sha256(a.tobytes()).hexdigest()


def test_builtin_tiny_loads_as_a_real_diffusers_pipeline(tiny: Pipeline) -> None:
    from diffusers import StableDiffusionPipeline

    assert isinstance(tiny.pipe, StableDiffusionPipeline)
    assert tiny.model_id == "builtin:tiny"
    assert tiny.weights_hash.startswith("sha256:") and len(tiny.weights_hash) == 71
    assert tiny.arch == "sd" and tiny.device == "cpu"
    assert tiny.default_scheduler == "DDIMScheduler"
    assert tiny.has_safety_checker is False
    assert tiny.max_tokens == 77


def test_generate_fills_in_the_recipe(tiny: Pipeline) -> None:
    (g,) = tiny.generate([r()])
    assert g.image is not None and g.image.size == (SIZE, SIZE) and g.image.mode == "RGB"
    assert g.blocked is None
    assert g.recipe.model == "builtin:tiny"
    assert g.recipe.weights_hash == tiny.weights_hash
    assert g.recipe.scheduler == "DDIMScheduler"
    assert g.denoise_ms > 0 and g.decode_ms > 0


def test_non_square_sizes(tiny: Pipeline) -> None:
    (g,) = tiny.generate([r(width=48, height=32)])
    assert g.image is not None and g.image.size == (48, 32)


def test_same_recipe_same_pixels_and_seed_or_prompt_changes_them(tiny: Pipeline) -> None:
    a = pixels(tiny, [r()])[0]
    assert np.array_equal(a, pixels(tiny, [r()])[0])
    assert not np.array_equal(a, pixels(tiny, [r(seed=2)])[0])
    assert not np.array_equal(a, pixels(tiny, [r(prompt="a blue whale")])[0])
    assert not np.array_equal(a, pixels(tiny, [r(negative_prompt="snow")])[0])


def test_same_pixels_after_a_second_load(tiny: Pipeline, cache_dir: Path) -> None:
    again = load_pipeline("builtin:tiny", cache_dir=cache_dir, device="cpu")
    assert again.weights_hash == tiny.weights_hash
    assert np.array_equal(pixels(tiny, [r()])[0], pixels(again, [r()])[0])


def test_same_pixels_in_another_process(tiny: Pipeline, tmp_path: Path) -> None:
    """A fresh process builds builtin:tiny in its own cache and gets the same bytes."""
    script = textwrap.dedent(
        """
        import hashlib, json, os, sys
        os.environ["HF_HUB_OFFLINE"] = "1"
        import numpy as np, torch
        torch.set_num_threads(1)
        from pathlib import Path
        from generator.loading import load_pipeline
        from generator.recipe import Recipe
        p = load_pipeline("builtin:tiny", cache_dir=Path(sys.argv[1]), device="cpu")
        r = Recipe.from_json(json.loads(sys.argv[2]))
        img = p.generate([r])[0].image
        print(p.weights_hash, hashlib.sha256(np.asarray(img).tobytes()).hexdigest())
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "other-cache"), json.dumps(r().to_json())],
        capture_output=True, text=True, check=True, cwd=Path(__file__).parents[2],
    )
    weights, image = out.stdout.split()
    assert weights == tiny.weights_hash
    assert image == digest(pixels(tiny, [r()])[0])


def test_batch_companions_and_position_do_not_change_an_image(tiny: Pipeline) -> None:
    """Exact guarantee: within one batch size, an image ignores its companions and position."""
    target = r(seed=5)
    a = pixels(tiny, [r("a dog", 9), target, r("zzz", 3)])[1]
    b = pixels(tiny, [target, r("a cat", 7), r("q", 8)])[0]
    c = pixels(tiny, [r("x", 1), r("y", 2), target])[2]
    assert np.array_equal(a, b) and np.array_equal(a, c)


def test_across_batch_sizes_pixels_differ_by_rounding_at_most(tiny: Pipeline) -> None:
    """Different batch sizes may round differently: at most one 8-bit level per channel."""
    target = r(seed=5)
    single = pixels(tiny, [target])[0].astype(int)
    for batch in ([target, r("a dog", 9)], [r("a dog", 9), r("x", 2), target, r("y", 3)]):
        out = pixels(tiny, batch)[batch.index(target)].astype(int)
        assert np.abs(out - single).max() <= 1


def test_batch_must_share_one_shape_key(tiny: Pipeline) -> None:
    with pytest.raises(RecipeError, match="one shape key"):
        tiny.generate([r(), r(steps=1)])
    assert tiny.generate([]) == []


def test_prompt_too_long_is_refused_not_truncated(tiny: Pipeline) -> None:
    assert tiny.tokenize_length("abc") == 5  # BOS + 3 characters + EOS
    assert tiny.check_prompt("x" * 75) == 77
    with pytest.raises(PromptTooLongError, match=r"^prompt too long: 10002 tokens, max 77$"):
        tiny.check_prompt("x" * 10_000)
    with pytest.raises(PromptTooLongError, match=r"^negative prompt too long: 102 tokens"):
        tiny.generate([r(negative_prompt="n" * 100)])
    with pytest.raises(PromptTooLongError) as info:
        tiny.generate([r(prompt="p" * 76)])
    assert (info.value.tokens, info.value.max_tokens) == (78, 77)


def test_recipe_for_another_model_is_refused(tiny: Pipeline) -> None:
    with pytest.raises(RecipeError, match="this instance runs model 'builtin:tiny'"):
        tiny.generate([r(model="stabilityai/sd-turbo")])
    assert tiny.generate([r(model="builtin:tiny")])[0].image is not None


def test_other_scheduler_is_deterministic(tiny: Pipeline) -> None:
    rec = r(scheduler="EulerAncestralDiscreteScheduler")
    a, b = pixels(tiny, [rec])[0], pixels(tiny, [rec])[0]
    assert np.array_equal(a, b)
    assert not np.array_equal(a, pixels(tiny, [r()])[0])
    assert tiny.generate([rec])[0].recipe.scheduler == "EulerAncestralDiscreteScheduler"
    assert tiny.pipe.scheduler is not None


def test_img2img_uses_the_same_weights_and_is_deterministic(tiny: Pipeline) -> None:
    parent = tiny.generate([r(seed=11)])[0].image
    remix = r(seed=3, parent="media/parent.png", strength=0.5)
    a = pixels(tiny, [remix], [parent])[0]
    assert a.shape == (SIZE, SIZE, 3)
    assert np.array_equal(a, pixels(tiny, [remix], [parent])[0])
    i2i = tiny._pipeline_for(remix)
    assert i2i.unet is tiny.pipe.unet and i2i.vae is tiny.pipe.vae
    assert i2i.text_encoder is tiny.pipe.text_encoder


def test_img2img_resizes_the_parent_and_needs_one_per_recipe(tiny: Pipeline) -> None:
    from PIL import Image

    big = Image.new("RGB", (100, 60), (10, 200, 30))
    remix = r(parent="p.png", strength=1.0, width=48, height=32)
    (g,) = tiny.generate([remix], [big])
    assert g.image is not None and g.image.size == (48, 32)
    with pytest.raises(ParentImageError, match="one parent image per recipe"):
        tiny.generate([remix, remix], [big])


def test_deadline_in_the_past_times_out(tiny: Pipeline) -> None:
    import time

    with pytest.raises(GenerationTimeout, match="timed out"):
        tiny.generate([r()], deadline=time.monotonic() - 1)


class FakeFeatureExtractor:
    def __call__(self, images, return_tensors="pt"):
        import torch

        class Out:
            pixel_values = torch.zeros(len(images), 3, 8, 8)

        return Out()


class FakeSafetyChecker:
    """Mimics diffusers' StableDiffusionSafetyChecker(clip_input, images) -> (images, flags)."""

    def __init__(self, flag_every: bool = True) -> None:
        self.calls = 0
        self.flag_every = flag_every

    def __call__(self, clip_input, images):
        self.calls += 1
        assert clip_input.shape[0] == len(images)
        flags = [self.flag_every or i == 1 for i in range(len(images))]
        return images, flags


def test_shipped_safety_checker_blocks_flagged_images(cache_dir: Path) -> None:
    from generator.safety import safety_checker_of

    p = load_pipeline("builtin:tiny", cache_dir=cache_dir, device="cpu")
    checker = FakeSafetyChecker(flag_every=False)
    p.pipe.safety_checker = checker
    p.pipe.feature_extractor = FakeFeatureExtractor()
    p.safety_checker = safety_checker_of(p.pipe, "cpu")
    assert p.has_safety_checker
    out = p.generate([r(seed=1), r(seed=2), r(seed=3)])
    assert checker.calls == 1
    assert [g.blocked for g in out] == [None, BLOCKED_REASON, None]
    assert out[1].image is None and out[0].image is not None and out[2].image is not None


def test_out_of_memory_detection() -> None:
    import torch

    assert is_out_of_memory(torch.cuda.OutOfMemoryError("CUDA out of memory. Tried 2 GiB"))
    assert is_out_of_memory(RuntimeError("CUDA error: out of memory"))
    assert is_out_of_memory(OutOfGPUMemory("x"))
    assert not is_out_of_memory(RuntimeError("shape mismatch"))
    assert not is_out_of_memory(ValueError("out of memory"))


def test_generate_turns_oom_into_out_of_gpu_memory(cache_dir: Path, monkeypatch) -> None:
    p = load_pipeline("builtin:tiny", cache_dir=cache_dir, device="cpu")

    def boom(*a, **kw):
        raise RuntimeError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(p, "pipe", boom)
    with pytest.raises(OutOfGPUMemory, match="out of GPU memory for a batch of 2"):
        p.generate([r(), r(seed=2)])


# -- loading errors -----------------------------------------------------------------------


def test_missing_path_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"\[generator\] model = '/nonexistent/x/y/z'"):
        load_pipeline("/nonexistent/x/y/z", cache_dir=tmp_path)


def test_directory_without_model_index_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"\[generator\] model .* without model_index.json"):
        load_pipeline(str(tmp_path), cache_dir=tmp_path)


def test_unsupported_architecture_is_named(tmp_path: Path) -> None:
    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": "FluxPipeline"}))
    with pytest.raises(ModelLoadError, match="is a FluxPipeline pipeline; Dreamloom runs"):
        load_pipeline(str(tmp_path), cache_dir=tmp_path)


def test_broken_local_model_names_the_setting(tmp_path: Path) -> None:
    (tmp_path / "model_index.json").write_text(
        json.dumps({"_class_name": "StableDiffusionPipeline", "unet": ["diffusers", "X"]})
    )
    with pytest.raises(ModelLoadError, match=r"\[generator\] model = .* could not be loaded"):
        load_pipeline(str(tmp_path), cache_dir=tmp_path)


def test_hub_id_offline_names_the_setting_and_the_fix(tmp_path: Path) -> None:
    with pytest.raises(HubUnavailableError) as info:
        load_pipeline("dreamloom-test/not-a-real-model", cache_dir=tmp_path,
                      hub_cache_dir=tmp_path / "hub")
    msg = str(info.value)
    assert "[generator] model = 'dreamloom-test/not-a-real-model'" in msg
    assert "HF_HUB_OFFLINE is set" in msg
    assert "local diffusers directory or builtin:tiny" in msg


def test_bad_dtype_and_device_name_the_setting(tmp_path: Path) -> None:
    import torch

    with pytest.raises(ModelLoadError, match=r"\[generator\] dtype 'int4'"):
        resolve_dtype("int4", "cpu")
    assert resolve_dtype(None, "cpu") == torch.float32
    assert resolve_dtype("bf16", "cuda") == torch.bfloat16
    assert resolve_dtype("auto", "cuda") == torch.float16
    if not torch.cuda.is_available():
        with pytest.raises(ModelLoadError, match=r"\[generator\] device is 'cuda'"):
            load_pipeline("builtin:tiny", cache_dir=tmp_path, device="cuda")


def test_weights_hash_is_cached_and_tracks_content(tmp_path: Path) -> None:
    (tmp_path / "m" / "unet").mkdir(parents=True)
    f = tmp_path / "m" / "unet" / "w.safetensors"
    f.write_bytes(b"one")
    h1 = weights_sha256(tmp_path / "m", tmp_path / "cache")
    assert (tmp_path / "cache" / "weights-hashes.json").is_file()
    assert weights_sha256(tmp_path / "m", tmp_path / "cache") == h1
    f.write_bytes(b"two!")
    assert weights_sha256(tmp_path / "m", tmp_path / "cache") != h1


def test_pipelines_reexports_the_loading_entry_points() -> None:
    """instance/ and older callers import these from generator.pipelines."""
    import generator.loading
    import generator.locating
    import generator.pipelines

    assert generator.pipelines.load_pipeline is generator.loading.load_pipeline
    assert generator.pipelines.BUILTIN_TINY == generator.locating.BUILTIN_TINY == "builtin:tiny"
