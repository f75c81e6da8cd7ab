"""Load a diffusers pipeline once and generate batches of same-shape recipes with it.

:func:`load_pipeline` takes the ``[generator] model`` setting:

- ``builtin:tiny`` — a real ``StableDiffusionPipeline`` with tiny random weights, built
  offline (:mod:`generator.tiny`), saved once under ``cache_dir`` and reloaded from there;
  ``builtin:sd-turbo-random`` — SD-Turbo's architecture with random weights (benchmarks);
- a local diffusers directory (with ``model_index.json``), e.g. a ``save_pretrained`` output;
- a Hugging Face Hub id (``stabilityai/sd-turbo``): taken from the local HF cache when there,
  downloaded only when the hub is reachable; with ``HF_HUB_OFFLINE=1`` or no network it raises
  :class:`HubUnavailableError` naming the setting.

Architectures: Stable Diffusion 1.x/2.x/Turbo (``StableDiffusionPipeline`` +
``StableDiffusionImg2ImgPipeline``) and SDXL/SDXL-Turbo (``StableDiffusionXLPipeline`` +
``StableDiffusionXLImg2ImgPipeline``), detected from ``model_index.json``. The image-to-image
pipeline is built from the same components (``from_pipe``): weights are loaded once.

Device and dtype default to CUDA + float16 when available (``dtype="bf16"`` for bfloat16),
else CPU + float32. With ``fast=True`` on CUDA, the fast path is:

- TF32 matmuls, SDPA attention (diffusers' default processor), fused QKV projections,
  ``channels_last`` UNet and VAE;
- ``torch.compile(mode="reduce-overhead", fullgraph=True)`` (CUDA graphs) on the UNet and on
  ``vae.decode``; batches are padded to power-of-two buckets so a bounded set of shapes is
  compiled; the inductor caches (FX graph + AOTAutograd) live on disk in
  ``cache_dir/inductor`` so a restart reuses compiled kernels; :meth:`Pipeline.warmup` pays
  compilation before the first job;
- latents are decoded by our own :meth:`Pipeline._decode` to uint8 on the device, with a single
  device-to-host copy per batch; the denoising loop has no ``.item()``/``.cpu()`` of ours (the
  deadline check between steps reads only the host clock), and timings use CUDA events.

``tiny_vae`` swaps in an ``AutoencoderTiny`` (TAESD) decoder: 0.14 instead of 2.51 TFLOP per
512² decode, the largest cost for 1-4 step models. Quality cost: TAESD is a distilled
approximation of the SD VAE — softer fine texture (hair, text, foliage), slightly lower
contrast and occasional colour shifts; fine for previews and Turbo models, not for finals at
1024². The full VAE still encodes img2img parents.

Batches are deterministic per recipe: each item gets its own ``torch.Generator`` seeded from
``recipe.seed`` (on the GPU when generating there, so ancestral schedulers add no host-to-device
copies to the loop; CPU and CUDA therefore start from different noise). The exact guarantee on
one build and device type: the same recipe gives identical pixels across loads and processes; and
within one batch size an image does not depend on its companions or position. Across
different batch sizes the float outputs differ by rounding only (~1e-6 on CPU: GEMM/conv
kernels block differently for different batch sizes), which can move an 8-bit pixel by at most
one level. With ``compile=True`` batches are padded to buckets, so the bucket size is what
matters.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from generator.errors import (
    MODEL_SETTING,
    GenerationTimeout,
    GeneratorError,
    HubUnavailableError,
    ModelLoadError,
    OutOfGPUMemory,
    ParentImageError,
    PromptTooLongError,
    RecipeError,
)
from generator.recipe import Recipe

if TYPE_CHECKING:
    import torch
    from PIL import Image

log = logging.getLogger(__name__)

BUILTIN_TINY = "builtin:tiny"
BUILTIN_SD_TURBO_RANDOM = "builtin:sd-turbo-random"
BUILTIN_MODELS = (BUILTIN_TINY, BUILTIN_SD_TURBO_RANDOM)
Arch = Literal["sd", "sdxl"]
_ARCH_BY_CLASS: dict[str, Arch] = {
    "StableDiffusionPipeline": "sd",
    "StableDiffusionImg2ImgPipeline": "sd",
    "StableDiffusionXLPipeline": "sdxl",
    "StableDiffusionXLImg2ImgPipeline": "sdxl",
}
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_DTYPES = {
    "fp16": "float16",
    "float16": "float16",
    "half": "float16",
    "bf16": "bfloat16",
    "bfloat16": "bfloat16",
    "fp32": "float32",
    "float32": "float32",
}
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32)
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".json", ".txt", ".model")
BLOCKED_REASON = "blocked by the model's safety checker (possible NSFW content)"


@dataclass(frozen=True, slots=True)
class Generated:
    """One image of a batch, or the reason it was withheld."""

    recipe: Recipe
    """The recipe as run (model, weights hash and scheduler filled in)."""
    image: Image.Image | None
    """RGB image; None when ``blocked``."""
    blocked: str | None = None
    """Why the safety checker withheld the image; such an image is never returned."""
    denoise_ms: float = 0.0
    decode_ms: float = 0.0


class SafetyChecker(Protocol):
    """Given RGB images, return per image None (fine) or the reason it is blocked."""

    def __call__(self, images: Sequence[Image.Image]) -> list[str | None]: ...


class ImagePipeline(Protocol):
    """What the worker needs from a pipeline; :class:`Pipeline` and test fakes provide it."""

    model_id: str
    weights_hash: str

    def check_prompt(self, prompt: str, *, field: str = "prompt") -> int: ...

    def resolve(self, recipe: Recipe) -> Recipe: ...

    def generate(
        self,
        recipes: Sequence[Recipe],
        parent_images: Sequence[Image.Image] | None = None,
        *,
        deadline: float | None = None,
    ) -> list[Generated]: ...


def is_out_of_memory(exc: BaseException) -> bool:
    """True for CUDA (or other accelerator) out-of-memory errors, by type or by message."""
    if isinstance(exc, OutOfGPUMemory):
        return True
    import sys

    torch_mod = sys.modules.get("torch")
    if torch_mod is not None and isinstance(exc, torch_mod.cuda.OutOfMemoryError):
        return True
    msg = str(exc).lower()
    return isinstance(exc, RuntimeError | MemoryError) and "out of memory" in msg


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


class Pipeline:
    """A loaded diffusers pipeline (text-to-image, with image-to-image from the same weights).

    Use from one thread at a time (the worker's GPU thread): a batch swaps the scheduler.
    """

    def __init__(
        self,
        pipe: Any,
        *,
        model_id: str,
        weights_hash: str = "",
        arch: Arch = "sd",
        device: str = "cpu",
        decoder: Any = None,
        safety_checker: SafetyChecker | None = None,
        compiled: bool = False,
    ) -> None:
        self.pipe = pipe
        self.model_id = model_id
        self.weights_hash = weights_hash
        self.arch: Arch = arch
        self.device = device
        self.decoder = decoder if decoder is not None else pipe.vae
        self.safety_checker = safety_checker
        self.compiled = compiled
        self.tokenizer = pipe.tokenizer
        self.max_tokens = int(pipe.tokenizer.model_max_length)
        self.default_scheduler = type(pipe.scheduler).__name__
        self._schedulers: dict[str, Any] = {self.default_scheduler: pipe.scheduler}
        self._img2img: Any = None
        # per-item generators live on the device: ancestral schedulers draw noise every step,
        # and CPU generators would copy it host-to-device (a sync) inside the loop
        self._rng_device = "cuda" if device.startswith("cuda") else "cpu"
        pipe.set_progress_bar_config(disable=True)

    @property
    def has_safety_checker(self) -> bool:
        """Whether generated images are checked (SD 1.x checkpoints ship a checker)."""
        return self.safety_checker is not None

    @property
    def dtype(self) -> torch.dtype:
        """The dtype the denoiser runs in."""
        return self.pipe.unet.dtype  # type: ignore[no-any-return]

    # -- prompts ---------------------------------------------------------------------------

    def tokenize_length(self, prompt: str) -> int:
        """Number of tokens the text encoder would see, BOS and EOS included, untruncated."""
        ids = self.tokenizer(prompt, truncation=False, verbose=False).input_ids
        return len(ids)

    def check_prompt(self, prompt: str, *, field: str = "prompt") -> int:
        """Raise :class:`PromptTooLongError` rather than let CLIP truncate; return the length."""
        n = self.tokenize_length(prompt)
        if n > self.max_tokens:
            raise PromptTooLongError(n, self.max_tokens, field=field)
        return n

    def resolve(self, recipe: Recipe) -> Recipe:
        """Check the recipe against this model and fill in model, weights hash and scheduler."""
        if recipe.model and recipe.model != self.model_id:
            raise RecipeError(
                f"this instance runs model {self.model_id!r}; the recipe asks for {recipe.model!r}"
            )
        self.check_prompt(recipe.prompt)
        if recipe.negative_prompt:
            self.check_prompt(recipe.negative_prompt, field="negative_prompt")
        return replace(
            recipe,
            model=self.model_id,
            weights_hash=self.weights_hash,
            scheduler=recipe.scheduler or self.default_scheduler,
        )

    # -- generation ------------------------------------------------------------------------

    def generate(
        self,
        recipes: Sequence[Recipe],
        parent_images: Sequence[Image.Image] | None = None,
        *,
        deadline: float | None = None,
        embeds: dict[str, Any] | None = None,
    ) -> list[Generated]:
        """Generate one image per recipe; all recipes must share :meth:`Recipe.shape_key`.

        ``parent_images`` (remixes only) are aligned with ``recipes`` and resized to the
        recipe's size. ``deadline`` is a :func:`time.monotonic` instant checked between
        denoising steps; past it, :class:`GenerationTimeout` is raised. Out-of-memory errors
        are raised as :class:`OutOfGPUMemory`. ``embeds`` (from :meth:`encode_prompts` for the
        same recipes) skips the text encoder.
        """
        import torch

        if not recipes:
            return []
        resolved = [self.resolve(r) for r in recipes]
        if len({r.shape_key() for r in resolved}) != 1:
            raise RecipeError("a batch must contain recipes of one shape key")
        first = resolved[0]
        if first.is_remix and (parent_images is None or len(parent_images) != len(resolved)):
            raise ParentImageError("a remix batch needs one parent image per recipe")
        n = len(resolved)
        padded = _pad_to_bucket(resolved, self.compiled)
        try:
            with torch.inference_mode():
                return self._generate(resolved, padded, parent_images, deadline, embeds)[:n]
        except GeneratorError:
            raise
        except Exception as exc:
            if is_out_of_memory(exc):
                self.free_memory()
                raise OutOfGPUMemory(f"out of GPU memory for a batch of {n}: {exc}") from exc
            raise

    def _generate(
        self,
        resolved: list[Recipe],
        padded: list[Recipe],
        parent_images: Sequence[Image.Image] | None,
        deadline: float | None,
        embeds: dict[str, Any] | None = None,
    ) -> list[Generated]:
        import torch

        first = padded[0]
        pipe = self._pipeline_for(first)
        pipe.scheduler = self._scheduler(first.scheduler)
        kwargs: dict[str, Any] = {
            "prompt": [r.prompt for r in padded],
            "negative_prompt": [r.negative_prompt for r in padded],
            "num_inference_steps": first.steps,
            "guidance_scale": first.guidance,
            "generator": [
                torch.Generator(device=self._rng_device).manual_seed(r.seed) for r in padded
            ],
            "output_type": "latent",
            "return_dict": False,
            "callback_on_step_end": _deadline_callback(deadline),
        }
        if embeds is not None:
            del kwargs["prompt"], kwargs["negative_prompt"]
            extra = len(padded) - len(resolved)
            for key, t in embeds.items():
                kwargs[key] = torch.cat([t, t[-1:].expand(extra, *t.shape[1:])]) if extra else t
        if first.is_remix:
            assert parent_images is not None
            parents = [fit_image(im, first.width, first.height) for im in parent_images]
            parents += [parents[-1]] * (len(padded) - len(parents))
            kwargs["image"] = parents
            kwargs["strength"] = first.strength
        else:
            kwargs["height"] = first.height
            kwargs["width"] = first.width

        watch = _Stopwatch(self.device)
        latents = pipe(**kwargs)[0]
        watch.mark()
        _check_deadline(deadline)
        pixels = self._decode(latents)
        watch.mark()
        return self._finish(resolved, pixels, watch.spans)

    def encode_prompts(self, recipes: Sequence[Recipe]) -> dict[str, Any]:
        """Text-encoder outputs for ``recipes``, as pipeline keyword arguments."""
        import torch

        cfg = recipes[0].guidance > 1.0
        prompts = [r.prompt for r in recipes]
        negatives = [r.negative_prompt for r in recipes]
        with torch.inference_mode():
            if self.arch == "sdxl":
                pe, npe, ppe, nppe = self.pipe.encode_prompt(
                    prompt=prompts,
                    device=self.device,
                    num_images_per_prompt=1,
                    do_classifier_free_guidance=cfg,
                    negative_prompt=negatives,
                )
                out = {"prompt_embeds": pe, "pooled_prompt_embeds": ppe}
                if cfg:
                    out.update(negative_prompt_embeds=npe, negative_pooled_prompt_embeds=nppe)
                return out
            pe, npe = self.pipe.encode_prompt(
                prompts, self.device, 1, cfg, negative_prompt=negatives
            )
            return {"prompt_embeds": pe, **({"negative_prompt_embeds": npe} if cfg else {})}

    def _finish(
        self, resolved: list[Recipe], pixels: torch.Tensor, spans: list[float]
    ) -> list[Generated]:
        from PIL import Image

        images = [Image.fromarray(a) for a in pixels[: len(resolved)].numpy()]
        t = time.perf_counter()
        reasons: list[str | None] = (
            self.safety_checker(images) if self.safety_checker else [None] * len(images)
        )
        check_ms = (time.perf_counter() - t) * 1000
        denoise_ms, decode_ms = spans[0], spans[1] + check_ms
        return [
            Generated(
                recipe=r,
                image=None if reason else im,
                blocked=reason,
                denoise_ms=denoise_ms,
                decode_ms=decode_ms,
            )
            for r, im, reason in zip(resolved, images, reasons, strict=True)
        ]

    def _decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents -> uint8 NHWC on the CPU (one device-to-host copy)."""
        import torch

        vae = self.decoder
        config = vae.config
        # the SDXL VAE overflows in fp16 (diffusers honours force_upcast for SDXL only; the
        # SD 1.x/2.x VAE decodes fine in fp16). A no-op once upcast.
        if self.arch == "sdxl" and vae.dtype == torch.float16 and config.get("force_upcast"):
            vae.to(torch.float32)
        latents = latents.to(vae.dtype)
        mean = getattr(config, "latents_mean", None)
        std = getattr(config, "latents_std", None)
        if mean is not None and std is not None:
            m = torch.tensor(mean).view(1, -1, 1, 1).to(latents.device, latents.dtype)
            s = torch.tensor(std).view(1, -1, 1, 1).to(latents.device, latents.dtype)
            latents = latents * s / config.scaling_factor + m
        else:
            latents = latents / config.scaling_factor
        image = vae.decode(latents, return_dict=False)[0]
        image = (image.float() / 2 + 0.5).clamp(0, 1)
        u8: torch.Tensor = (image * 255).round().to(torch.uint8).permute(0, 2, 3, 1)
        return u8.contiguous().cpu()

    def _pipeline_for(self, recipe: Recipe) -> Any:
        if not recipe.is_remix:
            return self.pipe
        if self._img2img is None:
            from diffusers import StableDiffusionImg2ImgPipeline, StableDiffusionXLImg2ImgPipeline

            cls: Any = StableDiffusionImg2ImgPipeline
            extra: dict[str, Any] = {}
            if self.arch == "sdxl":
                cls = StableDiffusionXLImg2ImgPipeline
                extra["force_zeros_for_empty_prompt"] = self.pipe.config.get(
                    "force_zeros_for_empty_prompt", True
                )
            else:
                extra["requires_safety_checker"] = self.pipe.config.get(
                    "requires_safety_checker", False
                )
            # the same module objects: no second copy of the weights
            self._img2img = cls(**self.pipe.components, **extra)
            self._img2img.set_progress_bar_config(disable=True)
        return self._img2img

    def _scheduler(self, name: str) -> Any:
        if name not in self._schedulers:
            import diffusers

            cls = getattr(diffusers, name)
            base = self._schedulers[self.default_scheduler]
            self._schedulers[name] = cls.from_config(base.config)
        return self._schedulers[name]

    def warmup(
        self, sizes: Sequence[tuple[int, int]], batch_sizes: Sequence[int] = (1,), steps: int = 1
    ) -> float:
        """Run each (size, batch size) once so compilation happens now; return seconds."""
        t = time.perf_counter()
        for width, height in sizes:
            for b in batch_sizes:
                recipes = [
                    Recipe(prompt="warm-up", seed=i, steps=steps, width=width, height=height)
                    for i in range(b)
                ]
                self.generate(recipes)
        return time.perf_counter() - t

    def free_memory(self) -> None:
        """Return cached accelerator memory after an OOM."""
        import torch

        if self.device.startswith("cuda") and torch.cuda.is_available():
            torch.cuda.empty_cache()


def fit_image(image: Image.Image, width: int, height: int) -> Image.Image:
    """Center-crop ``image`` to the aspect ratio of width x height, then resize (Lanczos)."""
    from PIL import Image as PILImage
    from PIL import ImageOps

    rgb = image.convert("RGB")
    return ImageOps.fit(rgb, (width, height), method=PILImage.Resampling.LANCZOS)


def _pad_to_bucket(recipes: list[Recipe], compiled: bool) -> list[Recipe]:
    if not compiled:
        return recipes
    n = len(recipes)
    size = next((b for b in BATCH_BUCKETS if b >= n), n)
    return recipes + [recipes[-1]] * (size - n)


def _check_deadline(deadline: float | None) -> None:
    if deadline is not None and time.monotonic() > deadline:
        raise GenerationTimeout("generation timed out")


def _deadline_callback(
    deadline: float | None,
) -> Callable[[Any, int, Any, dict[str, Any]], dict[str, Any]] | None:
    if deadline is None:
        return None

    def callback(pipe: Any, step: int, timestep: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        _check_deadline(deadline)
        return kwargs

    return callback


class _Stopwatch:
    """Spans between marks, in ms: CUDA events on CUDA (read after the final copy syncs)."""

    def __init__(self, device: str) -> None:
        import torch

        self.cuda = device.startswith("cuda") and torch.cuda.is_available()
        self._marks: list[Any] = []
        self.mark()

    def mark(self) -> None:
        if self.cuda:
            import torch

            event_cls: Any = torch.cuda.Event
            event = event_cls(enable_timing=True)
            event.record()
            self._marks.append(event)
        else:
            self._marks.append(time.perf_counter())

    @property
    def spans(self) -> list[float]:
        pairs = zip(self._marks, self._marks[1:], strict=False)
        if self.cuda:
            self._marks[-1].synchronize()
            return [float(a.elapsed_time(b)) for a, b in pairs]
        return [(b - a) * 1000 for a, b in pairs]


# -- loading -------------------------------------------------------------------------------


def resolve_device(device: str | None) -> str:
    """``None``/``"auto"`` -> ``"cuda"`` when available, else ``"mps"``, else ``"cpu"``."""
    import torch

    if device in (None, "", "auto"):
        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return "mps"
        return "cpu"
    assert device is not None
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelLoadError(
            f"[generator] device is {device!r} but no CUDA device is available; "
            "set it to 'auto' or 'cpu'"
        )
    return device


def resolve_dtype(dtype: str | None, device: str) -> torch.dtype:
    """``None``/``"auto"`` -> float16 on CUDA/MPS, float32 on CPU; else fp16/bf16/fp32."""
    import torch

    if dtype in (None, "", "auto"):
        return torch.float32 if device == "cpu" else torch.float16
    assert dtype is not None
    name = _DTYPES.get(dtype.lower())
    if name is None:
        raise ModelLoadError(
            f"[generator] dtype {dtype!r} is not supported; use auto, fp16, bf16 or fp32"
        )
    return getattr(torch, name)  # type: ignore[no-any-return]


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
    dev = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, dev)
    cache_dir = Path(cache_dir)
    source, model_dir, published = _locate(model, cache_dir, hub_cache_dir)
    index = _model_index(source, model_dir, hub_cache_dir)
    cls_name = str(index.get("_class_name", ""))
    arch = _ARCH_BY_CLASS.get(cls_name)
    if arch is None:
        raise ModelLoadError(
            f"{MODEL_SETTING} = {model!r} is a {cls_name or 'unknown'} pipeline; Dreamloom "
            "runs Stable Diffusion 1.x/2.x/Turbo and SDXL/SDXL-Turbo diffusers models. "
            "Set it to one of those (or builtin:tiny)."
        )
    pipe = _from_pretrained(
        arch, source, model, torch_dtype, hub_cache_dir, with_checker=safety_checker
    )
    if dev != "cpu":
        pipe.to(dev)
    if model_dir is None:
        model_dir = _hub_snapshot_dir(source, hub_cache_dir)
    weights_hash = weights_sha256(model_dir, cache_dir) if model_dir is not None else ""

    decoder = None
    if tiny_vae:
        decoder = _load_tiny_vae(tiny_vae, torch_dtype, hub_cache_dir).to(dev)
    checker = _safety_checker_of(pipe, dev)
    use_compile = (fast and dev.startswith("cuda")) if compile is None else compile
    if fast and dev.startswith("cuda"):
        _apply_cuda_fast_path(pipe, decoder)
    if use_compile:
        decoder = _compile(pipe, decoder if decoder is not None else pipe.vae, cache_dir)
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


def _locate(model: str, cache_dir: Path, hub_cache: Path | None) -> tuple[str, Path | None, str]:
    """-> (what to pass to from_pretrained, local directory or None, published name)."""
    if model in BUILTIN_MODELS:
        from generator import tiny

        build = tiny.ensure_tiny_pipeline if model == BUILTIN_TINY else tiny.ensure_sd_turbo_random
        built = build(cache_dir / "models")
        return str(built), built, model
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "model_index.json").is_file():
            raise ModelLoadError(
                f"{MODEL_SETTING} = {model!r} is a directory without model_index.json; "
                "point it at a diffusers model directory (save_pretrained output), a hub id "
                "such as 'stabilityai/sd-turbo', or builtin:tiny"
            )
        return str(path), path, path.resolve().name
    if _HUB_ID.match(model) and not model.startswith((".", "/", "~")):
        return model, None, model
    raise ModelLoadError(
        f"{MODEL_SETTING} = {model!r} is not a directory, a hub id (owner/name) or "
        "builtin:tiny; set it to a diffusers model directory, e.g. "
        "'/srv/models/sd-turbo', a hub id such as 'stabilityai/sd-turbo', or builtin:tiny"
    )


def hub_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` is set (the environment or huggingface_hub's constant)."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        return True
    try:
        from huggingface_hub import constants
    except ImportError:  # pragma: no cover - a diffusers dependency
        return False
    return bool(constants.HF_HUB_OFFLINE)


def _hub_error(model: str, exc: BaseException | None) -> HubUnavailableError:
    why = "HF_HUB_OFFLINE is set" if hub_offline() else "the Hugging Face Hub is unreachable"
    detail = f" ({type(exc).__name__}: {exc})" if exc is not None else ""
    return HubUnavailableError(
        f"{MODEL_SETTING} = {model!r} is a hub id that is not in the local cache, and {why}"
        f"{detail}. If you meant a local directory, it does not exist. "
        f"Download the model once where the hub is reachable "
        f"(e.g. `hf download {model}`), or set {MODEL_SETTING} to a local diffusers "
        "directory or builtin:tiny."
    )


def _model_index(source: str, model_dir: Path | None, hub_cache: Path | None) -> dict[str, Any]:
    if model_dir is not None or Path(source).is_dir():
        base = model_dir if model_dir is not None else Path(source)
        try:
            data = json.loads((base / "model_index.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelLoadError(
                f"{MODEL_SETTING}: cannot read {base / 'model_index.json'}: {exc}"
            ) from exc
        return data if isinstance(data, dict) else {}
    from huggingface_hub import hf_hub_download

    offline = hub_offline()
    try:
        path = hf_hub_download(
            source, "model_index.json", cache_dir=hub_cache, local_files_only=offline
        )
    except Exception as exc:  # offline, DNS, connection, 401/404 ...
        if offline or _looks_like_network_error(exc):
            raise _hub_error(source, exc) from exc
        raise ModelLoadError(
            f"{MODEL_SETTING} = {source!r}: cannot fetch model_index.json from the hub: {exc}"
        ) from exc
    return json.loads(Path(path).read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def _looks_like_network_error(exc: BaseException) -> bool:
    names = {type(e).__name__ for e in _chain(exc)}
    hints = ("Connect", "Timeout", "NameResolution", "LocalEntryNotFound", "Offline")
    return any(h in n for n in names for h in hints)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        yield cur
        cur = cur.__cause__ or cur.__context__


def _from_pretrained(
    arch: Arch,
    source: str,
    model: str,
    torch_dtype: torch.dtype,
    hub_cache: Path | None,
    *,
    with_checker: bool,
) -> Any:
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
        if not is_local and (hub_offline() or _looks_like_network_error(exc)):
            raise _hub_error(model, exc) from exc
        raise ModelLoadError(f"{MODEL_SETTING} = {model!r} could not be loaded: {exc}") from exc


def _dtype_kwarg(torch_dtype: torch.dtype) -> dict[str, Any]:
    """diffusers >= 0.36 takes ``dtype=`` (``torch_dtype=`` is deprecated); older only that."""
    from diffusers.pipelines import pipeline_utils

    key = "dtype" if hasattr(pipeline_utils, "_resolve_dtype") else "torch_dtype"
    return {key: torch_dtype}


def _hub_snapshot_dir(repo_id: str, hub_cache: Path | None) -> Path | None:
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id, cache_dir=hub_cache, local_files_only=True))
    except Exception:  # the hash is informative; never fail a load over it
        log.warning("could not locate the hub snapshot of %s to hash its weights", repo_id)
        return None


def weights_sha256(model_dir: Path, cache_dir: Path | None = None) -> str:
    """``sha256:`` over the model's weight and config files (relative path + file hash).

    File hashes are cached in ``cache_dir/weights-hashes.json`` by (path, size, mtime), so a
    restart does not re-read gigabytes of weights.
    """
    cache_file = cache_dir / "weights-hashes.json" if cache_dir is not None else None
    cache: dict[str, str] = {}
    if cache_file is not None and cache_file.is_file():
        with contextlib.suppress(OSError, ValueError):
            cache = json.loads(cache_file.read_text(encoding="utf-8"))
    outer = hashlib.sha256()
    changed = False
    files = sorted(
        p
        for p in model_dir.rglob("*")
        if p.suffix in _WEIGHT_SUFFIXES and not any(part.startswith(".") for part in p.parts[-2:])
    )
    for p in files:
        real = p.resolve()
        if not real.is_file():
            continue
        st = real.stat()
        key = f"{real}|{st.st_size}|{st.st_mtime_ns}"
        digest = cache.get(key)
        if digest is None:
            h = hashlib.sha256()
            with open(real, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
            digest = cache[key] = h.hexdigest()
            changed = True
        outer.update(f"{p.relative_to(model_dir).as_posix()}\0{digest}\n".encode())
    if changed and cache_file is not None:
        with contextlib.suppress(OSError):
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(cache), encoding="utf-8")
            tmp.replace(cache_file)
    return "sha256:" + outer.hexdigest()


def _safety_checker_of(pipe: Any, device: str) -> SafetyChecker | None:
    checker = getattr(pipe, "safety_checker", None)
    extractor = getattr(pipe, "feature_extractor", None)
    if checker is None or extractor is None:
        return None
    return DiffusersSafetyChecker(checker, extractor, device, pipe.unet.dtype)


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


def _apply_cuda_fast_path(pipe: Any, decoder: Any) -> None:
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


def _compile(pipe: Any, decoder: Any, cache_dir: Path) -> Any:
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
