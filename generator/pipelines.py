"""Run a loaded diffusers pipeline: :class:`Pipeline` generates batches of same-shape recipes.

A :class:`Pipeline` comes from :func:`generator.loading.load_pipeline` (re-exported here, with
:data:`BUILTIN_TINY`, for the many callers that import them from this module). This module
owns what happens after loading: prompt checks against the tokenizer, resolving a recipe
against the model, text-to-image and image-to-image (``from_pipe``-style, from the same
components: weights are loaded once), the deadline checked between denoising steps, decoding,
the safety check, and the per-batch timings; plus :class:`ImagePipeline`, the protocol the
worker and test fakes share, and :class:`Generated`, one image of a batch.

With ``compile=True`` (the CUDA fast path, :mod:`generator.fastpath`) batches are padded to
power-of-two buckets (:data:`BATCH_BUCKETS`) so a bounded set of shapes is compiled, and
:meth:`Pipeline.warmup` pays compilation before the first job. Latents are decoded by our own
:meth:`Pipeline._decode` to uint8 on the device, with a single device-to-host copy per batch;
the denoising loop has no ``.item()``/``.cpu()`` of ours (the deadline check between steps
reads only the host clock), and timings use CUDA events.

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

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

from generator.devices import is_out_of_memory
from generator.errors import (
    GenerationTimeout,
    GeneratorError,
    OutOfGPUMemory,
    ParentImageError,
    PromptTooLongError,
    RecipeError,
)

# re-exported: callers load pipelines through this module
from generator.loading import load_pipeline as load_pipeline
from generator.locating import BUILTIN_TINY as BUILTIN_TINY
from generator.recipe import Recipe

if TYPE_CHECKING:
    import torch
    from PIL import Image

    from generator.locating import Arch
    from generator.safety import SafetyChecker

BATCH_BUCKETS = (1, 2, 4, 8, 16, 32)


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
