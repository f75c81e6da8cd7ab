"""Other architectures and options on CPU: tiny SDXL, an AutoencoderTiny decoder, the fast path."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from generator.loading import load_pipeline
from generator.pipelines import Pipeline
from generator.recipe import Recipe


def _tiny_sdxl(dirpath: Path) -> Path:
    """diffusers' SDXL test fixture shapes (get_dummy_components), with our local tokenizer."""
    import torch
    from diffusers import (
        AutoencoderKL,
        EulerDiscreteScheduler,
        StableDiffusionXLPipeline,
        UNet2DConditionModel,
    )
    from transformers import (
        CLIPTextConfig,
        CLIPTextModel,
        CLIPTextModelWithProjection,
        CLIPTokenizer,
    )

    from generator.tiny import write_tokenizer

    tok = CLIPTokenizer.from_pretrained(str(write_tokenizer(dirpath / "tok")))
    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(2, 4), layers_per_block=2, sample_size=32, in_channels=4,
        out_channels=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), attention_head_dim=(2, 4),
        use_linear_projection=True, addition_embed_type="text_time", addition_time_embed_dim=8,
        transformer_layers_per_block=(1, 2), projection_class_embeddings_input_dim=80,
        cross_attention_dim=64, norm_num_groups=1,
    )
    vae = AutoencoderKL(
        block_out_channels=[32, 64], in_channels=3, out_channels=3,
        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
        up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"], latent_channels=4,
        sample_size=128,
    )
    config = CLIPTextConfig(
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id, hidden_size=32, intermediate_size=37,
        layer_norm_eps=1e-05, num_attention_heads=4, num_hidden_layers=5,
        vocab_size=len(tok), hidden_act="gelu", projection_dim=32,
    )
    pipe = StableDiffusionXLPipeline(
        unet=unet, vae=vae,
        scheduler=EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012,
                                         beta_schedule="scaled_linear", steps_offset=1,
                                         timestep_spacing="leading"),
        text_encoder=CLIPTextModel(config), tokenizer=tok,
        text_encoder_2=CLIPTextModelWithProjection(config), tokenizer_2=tok,
    )
    pipe.save_pretrained(dirpath / "sdxl", safe_serialization=True)
    return dirpath / "sdxl"


@pytest.fixture(scope="module")
def sdxl(tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    root = tmp_path_factory.mktemp("sdxl")
    return load_pipeline(str(_tiny_sdxl(root)), cache_dir=root / "cache", device="cpu")


def rec(**kw) -> Recipe:
    base = dict(prompt="a teapot", seed=1, steps=2, width=64, height=64)
    base.update(kw)
    return Recipe(**base)


def test_sdxl_directory_is_detected_and_generates(sdxl: Pipeline) -> None:
    from diffusers import StableDiffusionXLImg2ImgPipeline, StableDiffusionXLPipeline

    assert sdxl.arch == "sdxl" and isinstance(sdxl.pipe, StableDiffusionXLPipeline)
    assert sdxl.model_id == "sdxl"  # a local directory publishes its name
    (g,) = sdxl.generate([rec()])
    assert g.image is not None and g.image.size == (64, 64)
    assert np.array_equal(np.asarray(g.image), np.asarray(sdxl.generate([rec()])[0].image))
    remix = rec(seed=2, parent="p.png", strength=0.5)
    (r,) = sdxl.generate([remix], [g.image])
    assert r.image is not None and r.image.size == (64, 64)
    i2i = sdxl._pipeline_for(remix)
    assert isinstance(i2i, StableDiffusionXLImg2ImgPipeline) and i2i.unet is sdxl.pipe.unet


def test_sdxl_precomputed_embeddings_match(sdxl: Pipeline) -> None:
    recipes = [rec(guidance=5.0), rec(seed=3, guidance=5.0, prompt="a kettle")]
    direct = [np.asarray(g.image) for g in sdxl.generate(recipes)]
    embedded = sdxl.generate(recipes, embeds=sdxl.encode_prompts(recipes))
    assert all(np.array_equal(a, np.asarray(g.image)) for a, g in zip(direct, embedded))


def test_autoencoder_tiny_decoder(tmp_path: Path, cache_dir: Path) -> None:
    import torch
    from diffusers import AutoencoderTiny

    torch.manual_seed(0)
    AutoencoderTiny(
        encoder_block_out_channels=(8, 8), decoder_block_out_channels=(8, 8),
        num_encoder_blocks=(1, 1), num_decoder_blocks=(1, 1), upsampling_scaling_factor=2,
    ).save_pretrained(tmp_path / "taesd")
    p = load_pipeline("builtin:tiny", cache_dir=cache_dir, device="cpu",
                      tiny_vae=str(tmp_path / "taesd"))
    assert type(p.decoder).__name__ == "AutoencoderTiny" and p.pipe.vae is not p.decoder
    (g,) = p.generate([rec(width=32, height=32)])
    assert g.image is not None and g.image.size == (32, 32)


def test_bad_tiny_vae_names_its_setting(cache_dir: Path, tmp_path: Path) -> None:
    from generator.errors import ModelLoadError

    with pytest.raises(ModelLoadError, match=r"\[generator\] tiny_vae = "):
        load_pipeline("builtin:tiny", cache_dir=cache_dir, device="cpu",
                      tiny_vae=str(tmp_path))


def test_fast_path_transforms_keep_the_image(cache_dir: Path) -> None:
    """Fused QKV + channels_last (the CUDA fast path) run on CPU and change only rounding."""
    from generator.fastpath import apply_cuda_fast_path

    plain = load_pipeline("builtin:tiny", cache_dir=cache_dir, device="cpu")
    fast = load_pipeline("builtin:tiny", cache_dir=cache_dir, device="cpu")
    apply_cuda_fast_path(fast.pipe, None)
    r = rec(width=32, height=32, guidance=4.0)
    a = np.asarray(plain.generate([r])[0].image).astype(int)
    b = np.asarray(fast.generate([r])[0].image).astype(int)
    assert np.abs(a - b).max() <= 1


@pytest.mark.slow  # ~2 min of inductor compilation on CPU; runs with `-m slow`
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit deprecations in inductor
def test_torch_compile_path_on_cpu(cache_dir: Path, monkeypatch) -> None:
    """compile=True on CPU: inductor (no CUDA graphs), padded buckets, kernels cached on disk."""
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", os.environ.get("TORCHINDUCTOR_CACHE_DIR", ""))
    monkeypatch.setenv("TRITON_CACHE_DIR", os.environ.get("TRITON_CACHE_DIR", ""))
    p = load_pipeline("builtin:tiny", cache_dir=cache_dir, device="cpu", compile=True)
    assert p.compiled
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str((cache_dir / "inductor").resolve())
    out = p.generate([rec(width=32, height=32, seed=s) for s in range(3)])  # padded to 4
    assert len(out) == 3 and all(g.image is not None for g in out)
    assert any((cache_dir / "inductor").rglob("*"))
