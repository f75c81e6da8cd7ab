"""Side-by-side benchmark: plain diffusers (eager, default components) vs Dreamloom's path.

:func:`run_bench` measures both in ONE process and ONE run, on the same model directory,
prompts, seeds, size, steps and batch sizes, so the ratios are meaningful even on a noisy
machine:

- ``diffusers``: ``from_pretrained`` + ``.to(device)`` and ``pipe(prompts, ...).images`` —
  what a diffusers user writes first (no compile, no fused projections, PIL output);
- ``dreamloom``: :func:`generator.loading.load_pipeline` (``fast=True``: on CUDA fused QKV,
  channels_last, ``torch.compile`` with CUDA graphs, our decode) + warm-up, then
  :meth:`Pipeline.generate`.

For each path: single-request latency (batch 1, median ms), throughput (images/s) at each batch
size, load-to-first-image seconds (load + warm-up/compile + first image), and, for the path that
runs first (Dreamloom's), seconds from process start to its first image. Each batch size runs
once untimed before ``iterations`` timed runs.

Model ``"auto"`` is ``builtin:sd-turbo-random`` on CUDA (SD-Turbo's architecture with random
weights, built from configs, no hub: 512², 1 step, no CFG, as SD-Turbo is meant to run) and
``builtin:tiny`` elsewhere. ``prompt_embeds=True`` precomputes the text-encoder outputs for
both paths, so only denoising and decoding are timed.

Printing and JSON are the CLI's job: :meth:`BenchReport.to_json`.
"""

from __future__ import annotations

import gc
import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from generator.recipe import Recipe

PROMPTS = (
    "a lighthouse on a cliff at dusk, oil painting",
    "a red fox curled up in fresh snow, photograph",
    "an isometric city of glass towers, morning light",
    "a bowl of ramen on a wooden table, studio lighting",
)


@dataclass(frozen=True, slots=True)
class PathResult:
    """Measurements of one path."""

    name: str
    latency_ms: float
    """Median wall time of one batch-1 request."""
    latency_samples_ms: list[float]
    throughput: dict[int, float]
    """Batch size -> images per second."""
    load_s: float
    """Loading (and, for Dreamloom, warm-up/compilation)."""
    load_to_first_image_s: float
    process_start_to_first_image_s: float | None = None


@dataclass(frozen=True, slots=True)
class BenchReport:
    """Both paths, their ratios, and the setting they ran in."""

    model: str
    device: str
    dtype: str
    size: int
    steps: int
    guidance: float
    batch_sizes: list[int]
    iterations: int
    prompt_embeds: bool
    compiled: bool
    versions: dict[str, str]
    results: dict[str, PathResult]
    latency_speedup: float | None
    """diffusers latency / Dreamloom latency (> 1: Dreamloom is faster)."""
    throughput_speedup: dict[int, float]
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON-able dict (batch sizes become string keys)."""
        data = asdict(self)
        for r in data["results"].values():
            r["throughput"] = {str(k): round(v, 2) for k, v in r["throughput"].items()}
            r["latency_ms"] = round(r["latency_ms"], 2)
            r["latency_samples_ms"] = [round(x, 2) for x in r["latency_samples_ms"]]
        data["throughput_speedup"] = {
            str(k): round(v, 3) for k, v in self.throughput_speedup.items()
        }
        return data


def run_bench(
    model: str = "auto",
    *,
    cache_dir: Path,
    batch_sizes: Sequence[int] = (1, 8),
    steps: int = 1,
    size: int | None = None,
    iterations: int = 5,
    guidance: float = 0.0,
    device: str | None = None,
    dtype: str | None = None,
    prompt_embeds: bool = False,
    compile: bool | None = None,
    tiny_vae: str | None = None,
    paths: Sequence[str] = ("dreamloom", "diffusers"),
    progress: Callable[[str], None] | None = None,
) -> BenchReport:
    """Benchmark ``paths`` on ``model`` and return a :class:`BenchReport` (see module doc).

    ``size`` defaults to 512 on CUDA and 64 elsewhere; ``batch_sizes`` always includes 1.
    """
    import diffusers
    import torch

    from generator.devices import resolve_device, resolve_dtype

    say = progress or (lambda _msg: None)
    dev = resolve_device(device)
    cuda = dev.startswith("cuda")
    if model == "auto":
        model = "builtin:sd-turbo-random" if cuda else "builtin:tiny"
    size = size or (512 if cuda else 64)
    sizes = sorted({1, *batch_sizes})
    torch_dtype = resolve_dtype(dtype, dev)
    recipes = {
        b: [
            Recipe(
                prompt=PROMPTS[i % len(PROMPTS)],
                seed=i,
                steps=steps,
                guidance=guidance,
                width=size,
                height=size,
            )
            for i in range(b)
        ]
        for b in sizes
    }
    results: dict[str, PathResult] = {}
    compiled = False
    notes: list[str] = []
    for name in paths:
        say(f"{name}: loading {model} on {dev}")
        if name == "dreamloom":
            runner, load_s, compiled = _dreamloom(
                model, dev, dtype, cache_dir, compile, tiny_vae, recipes, prompt_embeds
            )
        elif name == "diffusers":
            runner, load_s = _diffusers(model, dev, torch_dtype, cache_dir, recipes, prompt_embeds)
        else:
            raise ValueError(f"unknown benchmark path {name!r}; use 'dreamloom' or 'diffusers'")
        results[name] = _measure(
            name, runner, load_s, sizes, iterations, first=not results, say=say
        )
        del runner
        gc.collect()
        if cuda:
            torch.cuda.empty_cache()
    base, ours = results.get("diffusers"), results.get("dreamloom")
    latency_speedup = base.latency_ms / ours.latency_ms if base and ours else None
    throughput_speedup = (
        {b: ours.throughput[b] / base.throughput[b] for b in sizes} if base and ours else {}
    )
    if not cuda:
        notes.append(
            "CPU run: Dreamloom's fast path (compile, CUDA graphs, fused QKV) is CUDA-only; "
            "on CPU both paths run the same eager kernels"
        )
    versions = {"torch": torch.__version__, "diffusers": diffusers.__version__}
    if cuda:
        versions["gpu"] = torch.cuda.get_device_name()
    return BenchReport(
        model=model,
        device=dev,
        dtype=str(torch_dtype).removeprefix("torch."),
        size=size,
        steps=steps,
        guidance=guidance,
        batch_sizes=sizes,
        iterations=iterations,
        prompt_embeds=prompt_embeds,
        compiled=compiled,
        versions=versions,
        results=results,
        latency_speedup=latency_speedup,
        throughput_speedup=throughput_speedup,
        notes=notes,
    )


Runner = Callable[[int], None]
"""Generate one batch of the given size (returns when the images are on the host)."""


def _dreamloom(
    model: str,
    dev: str,
    dtype: str | None,
    cache_dir: Path,
    compile: bool | None,
    tiny_vae: str | None,
    recipes: dict[int, list[Recipe]],
    prompt_embeds: bool,
) -> tuple[Runner, float, bool]:
    from generator.loading import load_pipeline

    t = time.perf_counter()
    pipe = load_pipeline(
        model, device=dev, dtype=dtype, cache_dir=cache_dir, compile=compile, tiny_vae=tiny_vae
    )
    embeds = {b: pipe.encode_prompts(rs) for b, rs in recipes.items()} if prompt_embeds else {}
    if pipe.compiled:  # pay compilation before the clock of the first image starts
        for b, rs in recipes.items():
            pipe.generate(rs, embeds=embeds.get(b))
    load_s = time.perf_counter() - t

    def run(b: int) -> None:
        pipe.generate(recipes[b], embeds=embeds.get(b))

    return run, load_s, pipe.compiled


def _diffusers(
    model: str,
    dev: str,
    torch_dtype: Any,
    cache_dir: Path,
    recipes: dict[int, list[Recipe]],
    prompt_embeds: bool,
) -> tuple[Runner, float]:
    import torch

    from generator.loading import from_pretrained
    from generator.locating import ARCH_BY_CLASS, locate, model_index

    t = time.perf_counter()
    source, model_dir, _ = locate(model, cache_dir, None)
    arch = ARCH_BY_CLASS.get(str(model_index(source, model_dir, None).get("_class_name")))
    pipe = from_pretrained(arch or "sd", source, model, torch_dtype, None, with_checker=True)
    if dev != "cpu":
        pipe.to(dev)
    pipe.set_progress_bar_config(disable=True)
    load_s = time.perf_counter() - t
    first = next(iter(recipes.values()))[0]
    cfg = first.guidance > 1.0
    embeds: dict[int, dict[str, Any]] = {}
    if prompt_embeds:
        for b, rs in recipes.items():
            with torch.inference_mode():
                out = pipe.encode_prompt(
                    [r.prompt for r in rs],
                    device=dev,
                    num_images_per_prompt=1,
                    do_classifier_free_guidance=cfg,
                )
            keys = ["prompt_embeds", "negative_prompt_embeds"]
            if arch == "sdxl":
                keys += ["pooled_prompt_embeds", "negative_pooled_prompt_embeds"]
            embeds[b] = {k: v for k, v in zip(keys, out, strict=True) if cfg or "negative" not in k}

    def run(b: int) -> None:
        rs = recipes[b]
        text = embeds.get(b) or {"prompt": [r.prompt for r in rs]}
        _ = pipe(
            **text,
            num_inference_steps=first.steps,
            guidance_scale=first.guidance,
            height=first.height,
            width=first.width,
            generator=[torch.Generator("cpu").manual_seed(r.seed) for r in rs],
        ).images

    return run, load_s


def _measure(
    name: str,
    run: Runner,
    load_s: float,
    sizes: list[int],
    iterations: int,
    *,
    first: bool,
    say: Callable[[str], None],
) -> PathResult:
    t = time.perf_counter()
    run(1)
    first_image_s = load_s + (time.perf_counter() - t)
    process_s = _process_age_s() if first else None
    latencies: list[float] = []
    for _ in range(iterations):
        t = time.perf_counter()
        run(1)
        latencies.append((time.perf_counter() - t) * 1000)
    throughput = {1: 1000.0 / statistics.mean(latencies)}
    for b in sizes:
        if b == 1:
            continue
        run(b)  # untimed: allocator (and, if compiled, graph) warm-up for this shape
        t = time.perf_counter()
        for _ in range(iterations):
            run(b)
        throughput[b] = b * iterations / (time.perf_counter() - t)
    say(f"{name}: batch 1 {statistics.median(latencies):.1f} ms, {throughput}")
    return PathResult(
        name=name,
        latency_ms=statistics.median(latencies),
        latency_samples_ms=latencies,
        throughput=throughput,
        load_s=load_s,
        load_to_first_image_s=first_image_s,
        process_start_to_first_image_s=process_s,
    )


def _process_age_s() -> float | None:
    """Seconds since this process started (Linux /proc), or None where unknown."""
    try:
        stat = Path(f"/proc/{os.getpid()}/stat").read_text().rsplit(")", 1)[1].split()
        start_ticks = int(stat[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None
