"""Builtin models made offline from configs: ``builtin:tiny`` and ``builtin:sd-turbo-random``.

``builtin:tiny`` is a real diffusers Stable Diffusion pipeline with tiny random weights.

It needs no model hub and no download: the UNet, VAE and CLIP text encoder are built from
configs (the shapes of diffusers' own ``get_dummy_components`` test fixture) with a fixed
initialisation seed, and the CLIP tokenizer is written locally (a byte-level BPE vocabulary of
the 256 byte characters, with and without ``</w>``, plus BOS/EOS, and no merges: one token per
character, any UTF-8 text covered). The pipeline is saved once with ``save_pretrained`` and
loaded back like any local model directory, so tests and CPU-only instances run the very code
path a real checkpoint takes. Its images are noise-like pictures, 64x64 in ~40 ms on one CPU
thread; the VAE downsamples by 2 (a 64x64 image is a 32x32 latent).

The saved directory is fully determined by :data:`TINY_VERSION` and the installed library
versions; bump the version when the architecture changes.

``builtin:sd-turbo-random`` has SD-Turbo's architecture (the SD 2.1 UNet, full SD VAE,
OpenCLIP-H text tower) with random weights: useless pictures, but the arithmetic per step of the
real checkpoint, so it benchmarks a GPU without the model hub. Both are saved once with
``save_pretrained`` (atomically: a temporary sibling directory renamed into place, safe against
concurrent builders) and loaded back like any local model directory.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

TINY_VERSION = 1
TINY_SEED = 0
BOS, EOS = "<|startoftext|>", "<|endoftext|>"
MAX_TOKENS = 77
CROSS_ATTENTION_DIM = 8


def _bytes_to_unicode() -> dict[int, str]:
    """The GPT-2/CLIP byte -> printable character table used by byte-level BPE."""
    bs = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs], strict=True))


def write_tokenizer(dirpath: Path) -> Path:
    """Write a char-level CLIP tokenizer (vocab.json, merges.txt, configs) into ``dirpath``."""
    dirpath.mkdir(parents=True, exist_ok=True)
    chars = list(_bytes_to_unicode().values())
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({c + "</w>": i + 256 for i, c in enumerate(chars)})
    vocab[BOS] = len(vocab)
    vocab[EOS] = len(vocab)
    (dirpath / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (dirpath / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    special = {"bos_token": BOS, "eos_token": EOS, "unk_token": EOS, "pad_token": EOS}
    config = {
        "tokenizer_class": "CLIPTokenizer",
        "model_max_length": MAX_TOKENS,
        "do_lower_case": True,
        "errors": "replace",
        **special,
    }
    (dirpath / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    (dirpath / "special_tokens_map.json").write_text(json.dumps(special), encoding="utf-8")
    return dirpath


def build_components(tokenizer_dir: Path, seed: int = TINY_SEED) -> dict[str, Any]:
    """UNet, VAE, scheduler, text encoder and tokenizer with deterministic random weights."""
    import diffusers
    import torch
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    lib: Any = diffusers

    tokenizer = CLIPTokenizer.from_pretrained(str(tokenizer_dir), local_files_only=True)
    torch.manual_seed(seed)
    unet = lib.UNet2DConditionModel(
        block_out_channels=(4, 8),
        layers_per_block=1,
        sample_size=32,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=CROSS_ATTENTION_DIM,
        norm_num_groups=2,
    )
    scheduler = lib.DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    torch.manual_seed(seed)
    vae = lib.AutoencoderKL(
        block_out_channels=[4, 8],
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
        up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"],
        latent_channels=4,
        norm_num_groups=2,
        sample_size=64,
    )
    torch.manual_seed(seed)
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
            hidden_size=CROSS_ATTENTION_DIM,
            intermediate_size=16,
            layer_norm_eps=1e-05,
            num_attention_heads=2,
            num_hidden_layers=2,
            max_position_embeddings=MAX_TOKENS,
            vocab_size=len(tokenizer),
        )
    )
    return {
        "unet": unet,
        "scheduler": scheduler,
        "vae": vae,
        "text_encoder": text_encoder,
        "tokenizer": tokenizer,
    }


def ensure_tiny_pipeline(cache_dir: Path) -> Path:
    """Build and save the tiny pipeline under ``cache_dir`` once; return its directory.

    Safe against concurrent callers: the pipeline is written to a temporary sibling directory
    and renamed into place, so a reader never sees a half-written model.
    """
    return _ensure_saved(
        cache_dir / f"builtin-tiny-v{TINY_VERSION}", build_components, half=False
    )


# -- builtin:sd-turbo-random ---------------------------------------------------------------

SD_TURBO_RANDOM_VERSION = 1

SD21_UNET_CONFIG: dict[str, Any] = {
    "act_fn": "silu",
    "attention_head_dim": [5, 10, 20, 20],
    "block_out_channels": [320, 640, 1280, 1280],
    "center_input_sample": False,
    "cross_attention_dim": 1024,
    "down_block_types": [
        "CrossAttnDownBlock2D",
        "CrossAttnDownBlock2D",
        "CrossAttnDownBlock2D",
        "DownBlock2D",
    ],
    "downsample_padding": 1,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "in_channels": 4,
    "layers_per_block": 2,
    "mid_block_scale_factor": 1,
    "norm_eps": 1e-05,
    "norm_num_groups": 32,
    "out_channels": 4,
    "sample_size": 64,
    "up_block_types": [
        "UpBlock2D",
        "CrossAttnUpBlock2D",
        "CrossAttnUpBlock2D",
        "CrossAttnUpBlock2D",
    ],
    "use_linear_projection": True,
}
"""The SD 2.1 (and SD-Turbo) UNet: 865.9 M parameters."""

SD_VAE_CONFIG: dict[str, Any] = {
    "block_out_channels": [128, 256, 512, 512],
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
    "in_channels": 3,
    "out_channels": 3,
    "latent_channels": 4,
    "layers_per_block": 2,
    "norm_num_groups": 32,
    "sample_size": 512,
    "scaling_factor": 0.18215,
}
"""The full Stable Diffusion VAE (83.7 M parameters)."""

OPEN_CLIP_H_TEXT: dict[str, Any] = {
    "hidden_size": 1024,
    "intermediate_size": 4096,
    "num_attention_heads": 16,
    "num_hidden_layers": 23,
    "projection_dim": 512,
    "hidden_act": "gelu",
    "max_position_embeddings": MAX_TOKENS,
    "vocab_size": 49408,
}
"""The OpenCLIP ViT-H text tower as SD 2.x uses it (penultimate layer: 23 of 24 layers)."""


def build_sd_turbo_random(tokenizer_dir: Path, seed: int = TINY_SEED) -> dict[str, Any]:
    """SD-Turbo's architecture with random weights: same arithmetic per step as the real model.

    The tokenizer is the local character-level one (ids < 514 of the 49408-entry vocabulary);
    text-encoder cost is the same for any ids. Built on CUDA when available (fast init).
    """
    import diffusers
    import torch
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    lib: Any = diffusers
    tokenizer = CLIPTokenizer.from_pretrained(str(tokenizer_dir), local_files_only=True)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(seed)
    with torch.device(device):
        unet = lib.UNet2DConditionModel(**SD21_UNET_CONFIG)
        vae = lib.AutoencoderKL(**SD_VAE_CONFIG)
        text_encoder = CLIPTextModel(
            CLIPTextConfig(
                bos_token_id=tokenizer.bos_token_id,
                eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id,
                **OPEN_CLIP_H_TEXT,
            )
        )
    scheduler = lib.EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        timestep_spacing="trailing",
        steps_offset=1,
    )
    return {
        "unet": unet,
        "scheduler": scheduler,
        "vae": vae,
        "text_encoder": text_encoder,
        "tokenizer": tokenizer,
    }


def ensure_sd_turbo_random(cache_dir: Path) -> Path:
    """Build and save ``builtin:sd-turbo-random`` (fp16, ~2.4 GB) under ``cache_dir`` once."""
    return _ensure_saved(
        cache_dir / f"sd-turbo-random-v{SD_TURBO_RANDOM_VERSION}",
        build_sd_turbo_random,
        half=True,
    )


def _ensure_saved(target: Path, build: Any, *, half: bool) -> Path:
    if (target / "model_index.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    from diffusers import StableDiffusionPipeline

    pipeline_cls: Any = StableDiffusionPipeline
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        components = build(write_tokenizer(tmp / "tokenizer-src"))
        pipe = pipeline_cls(
            **components,
            safety_checker=None,
            feature_extractor=None,
            image_encoder=None,
            requires_safety_checker=False,
        )
        if half:
            import torch

            pipe.to(torch.float16)
        model_dir = tmp / "model"
        pipe.save_pretrained(model_dir, safe_serialization=True)
        try:
            os.replace(model_dir, target)
        except OSError:
            if not (target / "model_index.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
