"""`dreamloom model info|fetch|warmup`, and the first-start fetch `init` and `serve` run.

The rules are the generator's: which model ``auto`` means, where a fetched model lives and what
counts as fetched (generator/hub.py); what runs while it is missing (builtin:tiny for ``auto``,
generator/locating.py ``effective_model``). This module only reports and shows progress.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from generator import hub
from generator.errors import GeneratorError, ModelLoadError
from generator.locating import BUILTIN_TINY, effective_model, files_on_disk, weights_sha256
from instance.cli.common import (
    DirOption,
    JsonOption,
    app,
    err,
    fail,
    out,
    print_json,
    settings_for,
)
from instance.settings import Settings

model_app = typer.Typer(
    help="The image model: what is configured and cached, fetch it, warm it up.",
    no_args_is_help=True,
)
app.add_typer(model_app, name="model")


def wanted_repo(settings: Settings, model: str | None = None) -> str | None:
    """The hub id the setting (or ``model``) asks for; None for builtin models and
    directories."""
    name = model or settings.generator.model
    if name == hub.AUTO:
        return hub.auto_model(settings.generator.device)
    return name if hub.is_hub_id(name) and not Path(name).expanduser().is_dir() else None


def _device_and_dtype(settings: Settings) -> tuple[str, str]:
    from generator.devices import resolve_device, resolve_dtype

    gen = settings.generator
    device = resolve_device(None if gen.device == "auto" else gen.device)
    dtype = resolve_dtype(None if gen.dtype == "auto" else gen.dtype, device)
    return device, str(dtype).removeprefix("torch.")


def fetch_with_progress(settings: Settings, repo: str, *, show: bool = True) -> hub.FetchResult:
    """:func:`generator.hub.fetch` into the instance cache with a rich progress bar."""
    device, _dtype = _device_and_dtype(settings)
    kwargs: dict[str, Any] = {
        "endpoint": settings.generator.hub_endpoint,
        "fp16": device.startswith("cuda"),
    }
    if not show or hub.cached_dir(repo, settings.cache_path) is not None:
        return hub.fetch(repo, settings.cache_path, **kwargs)
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    bar = Progress(*columns, console=err, transient=False)
    task = bar.add_task(f"fetching {repo}", total=None)

    def progress(done: int, total: int) -> None:
        if not bar.live.is_started:  # shown once the hub answered: an offline hub is one line
            bar.start()
        bar.update(task, completed=done, total=total or None)

    try:
        return hub.fetch(repo, settings.cache_path, progress=progress, **kwargs)
    finally:
        if bar.live.is_started:
            bar.stop()


def ensure_model(settings: Settings, *, log: logging.Logger | None = None) -> None:
    """First start (`init`, `serve`): fetch the configured hub model once, with progress.

    Nothing to do for builtin models, directories and models already on disk. When the hub
    cannot be reached, one line says so and (for ``auto``) that builtin:tiny runs meanwhile.
    With ``log`` (serve), the lines are log records, and the bar shows only with text logs."""

    def say(text: str, *, warn: bool = False) -> None:
        if log is not None:
            (log.warning if warn else log.info)("%s", text)
        elif warn:
            err.print(escape(f"warning: {text}"), style="yellow", highlight=False, soft_wrap=True)
        else:
            out.print(escape(text), highlight=False, soft_wrap=True)

    configured = settings.generator.model
    repo = wanted_repo(settings)
    if repo is None:
        return
    if configured == hub.AUTO:  # auto runs only from Dreamloom's own cache (effective_model)
        present = hub.cached_dir(repo, settings.cache_path)
    else:  # a hub id also loads from the Hugging Face cache
        present = files_on_disk(repo, settings.cache_path)
    if present is not None:
        return
    if configured == hub.AUTO and repo in hub.LICENCES:
        say(f"model: {repo} (auto), licence: {hub.LICENCES[repo]}")
    show = log is None or settings.logging.format == "text"
    try:
        result = fetch_with_progress(settings, repo, show=show)
    except ModelLoadError as exc:
        meanwhile = (
            "running on builtin:tiny (noise) until `dreamloom model fetch` succeeds"
            if configured == hub.AUTO
            else "generation fails until `dreamloom model fetch` succeeds"
        )
        say(f"the model {repo} could not be fetched: {exc}; {meanwhile}", warn=True)
        return
    say(f"model {repo} ready in {result.path}")


def model_info(settings: Settings) -> dict[str, Any]:
    """What `model info` reports: setting, resolution, cache, device, hash, compile cache."""
    gen = settings.generator
    repo = wanted_repo(settings)
    running = effective_model(gen.model, settings.cache_path)
    directory = files_on_disk(running, settings.cache_path)
    fetched = hub.cached_dir(repo, settings.cache_path) if repo else None
    try:
        device, dtype = _device_and_dtype(settings)
    except GeneratorError as exc:
        device, dtype = f"error: {exc}", ""
    inductor = settings.cache_path / "inductor"
    compiles = gen.compile and device.startswith("cuda")
    return {
        "configured": gen.model,
        "resolved": repo or gen.model,
        "runs": running,
        "licence": hub.LICENCES.get(repo or "", ""),
        "cached": directory is not None,
        "fetched": fetched is not None,
        "cache_path": str(directory or (hub.model_dir(repo, settings.cache_path) if repo else "")),
        "cache_bytes": hub.directory_size(directory) if directory else 0,
        "commit": hub.cache_info(repo, settings.cache_path).get("commit", "") if repo else "",
        "hub_endpoint": hub.hub_endpoint(gen.hub_endpoint),
        "device": device,
        "dtype": dtype,
        "weights_hash": weights_sha256(directory, settings.cache_path) if directory else "",
        "compile": {
            "enabled": compiles,
            "cache_path": str(inductor),
            "cache_bytes": hub.directory_size(inductor) if inductor.is_dir() else 0,
        },
    }


@model_app.command("info")
def info(directory: DirOption = None, as_json: JsonOption = False) -> None:
    """The configured model, what it resolves to and runs as, its cache, device and hash."""
    data = model_info(settings_for(directory))
    if as_json:
        print_json(data)
        return
    size = f"yes ({data['cache_bytes'] / 1e6:.1f} MB)" if data["cached"] else "no"
    comp = data["compile"]
    lines = [
        f"model: {data['configured']} -> {data['resolved']}",
        f"runs: {data['runs']}",
        f"cached: {size} {data['cache_path']}",
        f"device: {data['device']} {data['dtype']}",
        f"weights: {data['weights_hash'] or '-'}",
        f"compile: {'on' if comp['enabled'] else 'off'}, cache "
        f"{comp['cache_bytes'] / 1e6:.1f} MB in {comp['cache_path']}",
        f"hub: {data['hub_endpoint']}",
    ]
    if data["licence"]:
        lines.append(f"licence: {data['licence']}")
    if data["runs"] == BUILTIN_TINY and data["configured"] != BUILTIN_TINY:
        lines.append("note: the real model is not fetched yet; run `dreamloom model fetch`")
    for line in lines:
        out.print(escape(line), highlight=False, soft_wrap=True)


@model_app.command("fetch")
def fetch(
    model: Annotated[
        str | None,
        typer.Argument(
            help="A hub id or auto (default: the configured model).", show_default=False
        ),
    ] = None,
    directory: DirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Download a hub model into the instance cache once, with a progress bar; resumable."""
    settings = settings_for(directory)
    repo = wanted_repo(settings, model)
    if repo is None:
        fail(f"{model or settings.generator.model!r} is not a hub model (owner/name or auto)")
        return
    try:
        result = fetch_with_progress(settings, repo, show=not as_json)
    except ModelLoadError as exc:
        fail(str(exc))
        return
    if as_json:
        data = {
            "repo_id": repo,
            "path": str(result.path),
            "reused": result.reused,
            "downloaded_bytes": result.downloaded_bytes,
            "files": result.files,
        }
        print_json(data)
        return
    verb = "already fetched" if result.reused else f"fetched {result.downloaded_bytes / 1e6:.1f} MB"
    out.print(escape(f"{repo}: {verb} in {result.path}"), highlight=False, soft_wrap=True)
    if model and model != settings.generator.model:
        out.print(escape(f'to use it, set [generator] model = "{repo}"'), highlight=False)


@model_app.command("warmup")
def warmup(directory: DirOption = None, as_json: JsonOption = False) -> None:
    """Load the configured model and make one image at its native size (compiling now, not
    on the first request); print how long each took."""
    from generator.locating import model_defaults
    from generator.recipe import Recipe
    from instance.generation.worker import load_configured_pipeline

    settings = settings_for(directory)
    try:
        device, _dtype = _device_and_dtype(settings)
        with err.status("loading the model ...", spinner="dots"):
            t0 = time.perf_counter()
            pipe = load_configured_pipeline(settings)
            loaded = time.perf_counter() - t0
        size = model_defaults(settings.generator.model, settings.cache_path)
        recipe = pipe.resolve(
            Recipe(
                prompt="warm-up",
                seed=0,
                steps=size.steps,
                width=size.width,
                height=size.height,
                guidance=size.guidance,
            )
        )
        with err.status("generating one image ...", spinner="dots"):
            t1 = time.perf_counter()
            pipe.generate([recipe])
            took = time.perf_counter() - t1
    except GeneratorError as exc:
        fail(str(exc))
        return
    data = {
        "model": pipe.model_id,
        "device": device,
        "load_s": round(loaded, 3),
        "generate_s": round(took, 3),
        "width": recipe.width,
        "height": recipe.height,
        "steps": recipe.steps,
    }
    if as_json:
        print_json(data)
        return
    out.print(
        escape(
            f"{pipe.model_id} on {device}: loaded in {loaded:.2f} s, one "
            f"{recipe.width}x{recipe.height} image ({recipe.steps} steps) in {took:.2f} s"
        ),
        highlight=False,
    )
