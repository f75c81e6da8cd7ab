"""The CUDA fast path applied to a loaded diffusers pipeline (``load_pipeline(fast=True)``).

- TF32 matmuls, SDPA attention (diffusers' default processor), fused QKV projections,
  ``channels_last`` UNet and VAE (:func:`apply_cuda_fast_path`);
- ``torch.compile(mode="reduce-overhead", fullgraph=True)`` (CUDA graphs) on the UNet and on
  ``vae.decode`` (:func:`compile_pipeline`); :class:`generator.pipelines.Pipeline` pads
  batches to power-of-two buckets so a bounded set of shapes is compiled, and its
  :meth:`~generator.pipelines.Pipeline.warmup` pays compilation before the first job;
- the inductor caches (FX graph + AOTAutograd) live on disk in ``cache_dir/inductor``
  (:func:`configure_inductor_cache`) so a restart reuses compiled kernels.

torch and diffusers are imported lazily, inside the functions.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def apply_cuda_fast_path(pipe: Any, decoder: Any) -> None:
    """TF32, fused QKV projections, channels_last (CUDA only; SDPA is diffusers' default)."""
    import torch
    from diffusers import AutoencoderKL

    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    torch.backends.cudnn.benchmark = True
    pipe.fuse_qkv_projections(unet=True, vae=isinstance(pipe.vae, AutoencoderKL))
    pipe.unet.to(memory_format=torch.channels_last)
    pipe.vae.to(memory_format=torch.channels_last)
    if decoder is not None:
        decoder.to(memory_format=torch.channels_last)


def configure_inductor_cache(cache_dir: Path) -> Path:
    """Keep inductor's FX-graph/AOTAutograd caches and Triton's kernels in ``cache_dir``.

    Set unconditionally: torch fills ``TORCHINDUCTOR_CACHE_DIR`` with a /tmp default as soon as
    anything asks for it, and /tmp is often wiped on reboot, which would make every restart
    compile from scratch (minutes for a UNet).
    """
    path = (cache_dir / "inductor").resolve()
    path.mkdir(parents=True, exist_ok=True)
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(path)
    os.environ["TRITON_CACHE_DIR"] = str(path / "triton")
    os.environ.setdefault("TORCHINDUCTOR_FX_GRAPH_CACHE", "1")
    os.environ.setdefault("TORCHINDUCTOR_AUTOGRAD_CACHE", "1")
    return path


def compile_pipeline(pipe: Any, decoder: Any, cache_dir: Path) -> Any:
    """torch.compile the UNet and ``decoder.decode``; return the decoder."""
    import torch

    configure_inductor_cache(cache_dir)
    import torch._dynamo
    import torch._inductor.config as inductor_config

    inductor_config.fx_graph_cache = True
    inductor_config.conv_1x1_as_mm = True
    inductor_config.coordinate_descent_tuning = True
    inductor_config.epilogue_fusion = False
    torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, 64)
    mode = "reduce-overhead" if torch.cuda.is_available() else None
    pipe.unet = torch.compile(pipe.unet, mode=mode, fullgraph=True)
    decoder.decode = torch.compile(decoder.decode, mode=mode, fullgraph=True)
    return decoder
