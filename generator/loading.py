"""Everything up to a ready pipeline: :func:`load_pipeline` turns ``[generator] model`` into a
:class:`generator.pipelines.Pipeline`.

Steps, each owned elsewhere where it is more than a line:

1. device and dtype (:mod:`generator.devices`): CUDA + float16 when available
   (``dtype="bf16"`` for bfloat16), else CPU + float32;
2. where the model is — ``builtin:tiny``, a local diffusers directory or a hub id — and its
   ``model_index.json`` (:mod:`generator.locating`);
3. the architecture, detected from ``model_index.json``
   (:data:`generator.locating.ARCH_BY_CLASS`): Stable
   Diffusion 1.x/2.x/Turbo (``StableDiffusionPipeline``) and SDXL/SDXL-Turbo
   (``StableDiffusionXLPipeline``); the image-to-image pipeline is built later from the same
   components, so weights are loaded once;
4. the weights (:func:`from_pretrained`), their hash (:func:`~generator.locating.weights_sha256`),
   an optional tiny VAE decoder, and the shipped safety checker (:mod:`generator.safety`);
5. with ``fast=True`` on CUDA, the fast path and ``torch.compile`` (:mod:`generator.fastpath`).

``tiny_vae`` swaps in an ``AutoencoderTiny`` (TAESD) decoder: 0.14 instead of 2.51 TFLOP per
512² decode, the largest cost for 1-4 step models. Quality cost: TAESD is a distilled
approximation of the SD VAE — softer fine texture (hair, text, foliage), slightly lower
contrast and occasional colour shifts; fine for previews and Turbo models, not for finals at
1024². The full VAE still encodes img2img parents.

torch and diffusers are imported lazily, inside the functions.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from generator.devices import resolve_device, resolve_dtype
from generator.errors import MODEL_SETTING, ModelLoadError
from generator.fastpath import apply_cuda_fast_path, compile_pipeline
from generator.locating import (
    ARCH_BY_CLASS,
    Arch,
    hub_error,
    hub_offline,
    hub_snapshot_dir,
    locate,
    looks_like_network_error,
    model_index,
    weights_sha256,
)
from generator.safety import safety_checker_of

if TYPE_CHECKING:
    import torch

    from generator.pipelines import Pipeline


def load_pipeline(
    model: str,
    *,
    device: str | None = None,
    dtype: str | None = None,
    cache_dir: Path,
    fast: bool = True,
    compile: bool | None = None,
    tiny_vae: str | None = None,
    safety_checker: bool = True,
    name: str | None = None,
    hub_cache_dir: Path | None = None,
) -> Pipeline:
    """Load the ``[generator] model`` once and return a :class:`Pipeline`.

    ``cache_dir`` holds Dreamloom's own caches (builtin:tiny, weight hashes, inductor kernels).
    ``compile`` defaults to ``fast`` on CUDA and to False elsewhere. ``tiny_vae`` is a local
    directory or hub id of an ``AutoencoderTiny`` to decode with (see the module docstring for
    its quality cost). ``safety_checker=False`` skips loading a shipped checker. ``name`` is
    the model name published in recipes (default: the hub id, ``builtin:tiny``, or the
    directory's name). ``hub_cache_dir`` defaults to the Hugging Face cache (``HF_HOME``).
    """
    # generator.pipelines re-exports load_pipeline, so it is imported here, not at the top
    from generator.pipelines import Pipeline

    dev = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, dev)
    cache_dir = Path(cache_dir)
    source, model_dir, published = locate(model, cache_dir, hub_cache_dir)
    index = model_index(source, model_dir, hub_cache_dir)
    cls_name = str(index.get("_class_name", ""))
    arch = ARCH_BY_CLASS.get(cls_name)
    if arch is None:
        raise ModelLoadError(
            f"{MODEL_SETTING} = {model!r} is a {cls_name or 'unknown'} pipeline; Dreamloom "
            "runs Stable Diffusion 1.x/2.x/Turbo and SDXL/SDXL-Turbo diffusers models. "
            "Set it to one of those (or builtin:tiny)."
        )
    pipe = from_pretrained(
        arch, source, model, torch_dtype, hub_cache_dir, with_checker=safety_checker
    )
    if dev != "cpu":
        pipe.to(dev)
    if model_dir is None:
        model_dir = hub_snapshot_dir(source, hub_cache_dir)
    weights_hash = weights_sha256(model_dir, cache_dir) if model_dir is not None else ""

    decoder = None
    if tiny_vae:
        decoder = _load_tiny_vae(tiny_vae, torch_dtype, hub_cache_dir).to(dev)
    checker = safety_checker_of(pipe, dev)
    use_compile = (fast and dev.startswith("cuda")) if compile is None else compile
    if fast and dev.startswith("cuda"):
        apply_cuda_fast_path(pipe, decoder)
    if use_compile:
        decoder = compile_pipeline(pipe, decoder if decoder is not None else pipe.vae, cache_dir)
    return Pipeline(
        pipe,
        model_id=name or published,
        weights_hash=weights_hash,
        arch=arch,
        device=dev,
        decoder=decoder,
        safety_checker=checker,
        compiled=use_compile,
    )


def from_pretrained(
    arch: Arch,
    source: str,
    model: str,
    torch_dtype: torch.dtype,
    hub_cache: Path | None,
    *,
    with_checker: bool,
) -> Any:
    """The plain diffusers text-to-image pipeline for ``arch``, on the CPU, in ``torch_dtype``."""
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    is_local = Path(source).is_dir()
    kwargs: dict[str, Any] = {
        **_dtype_kwarg(torch_dtype),
        "local_files_only": is_local or hub_offline(),
    }
    if hub_cache is not None and not is_local:
        kwargs["cache_dir"] = str(hub_cache)
    if not with_checker and arch == "sd":
        kwargs.update(safety_checker=None, requires_safety_checker=False)
    cls: Any = StableDiffusionXLPipeline if arch == "sdxl" else StableDiffusionPipeline
    try:
        return cls.from_pretrained(source, **kwargs)
    except Exception as exc:
        if not is_local and (hub_offline() or looks_like_network_error(exc)):
            raise hub_error(model, exc) from exc
        raise ModelLoadError(f"{MODEL_SETTING} = {model!r} could not be loaded: {exc}") from exc


def _dtype_kwarg(torch_dtype: torch.dtype) -> dict[str, Any]:
    """diffusers >= 0.36 takes ``dtype=`` (``torch_dtype=`` is deprecated); older only that."""
    from diffusers.pipelines import pipeline_utils

    key = "dtype" if hasattr(pipeline_utils, "_resolve_dtype") else "torch_dtype"
    return {key: torch_dtype}


def _load_tiny_vae(ref: str, torch_dtype: torch.dtype, hub_cache: Path | None) -> Any:
    from diffusers import AutoencoderTiny

    cls: Any = AutoencoderTiny
    local = Path(ref).expanduser().is_dir()
    try:
        return cls.from_pretrained(
            ref,
            **_dtype_kwarg(torch_dtype),
            local_files_only=local or hub_offline(),
            cache_dir=None if local or hub_cache is None else str(hub_cache),
        )
    except Exception as exc:
        raise ModelLoadError(
            f"[generator] tiny_vae = {ref!r} could not be loaded ({exc}); set it to a local "
            "AutoencoderTiny directory, a cached hub id such as 'madebyollin/taesd', or leave "
            "it empty for the model's own VAE"
        ) from exc
