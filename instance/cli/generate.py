"""`dreamloom generate`, `post`, `queue` and `bench generate`: images from the command line.

`generate` queues a job like any other (the same queue bound and refusals as the web and
mentions) and then runs a generation worker in this process until that job is finished,
showing its stage; `post` is `generate --post`. A failed job exits 1 with its reason.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table
from sqlalchemy import select

from generator.bench import run_bench
from generator.locating import BUILTIN_TINY, effective_model
from instance.accounts import get_local
from instance.cli.common import (
    DirOption,
    JsonOption,
    app,
    bench_app,
    err,
    fail,
    out,
    print_json,
    run,
    settings_for,
    with_runtime,
)
from instance.generation.recipes import parse_size
from instance.generation.requests import active_count, enqueue
from instance.generation.worker import (
    GenerationWorker,
    Outcome,
    load_configured_pipeline,
    quiet_hub_progress,
    run_until_final,
    staged_factory,
)
from instance.runtime import Runtime
from instance.settings import Settings, locate_config
from instance.storage.models import Account, GenerationJob

TINY_NOTICE = (
    "note: the model is builtin:tiny, a test model whose images are noise; "
    "`dreamloom model fetch` gets the real one (model = \"auto\"), or set "
    "[generator] model in config.toml to a diffusers model."
)

Seed = Annotated[int | None, typer.Option(help="Seed (default: random).", show_default=False)]
Steps = Annotated[
    int | None, typer.Option(help="Denoising steps (default: the account's/model's).")
]
Size = Annotated[str | None, typer.Option(help="WIDTHxHEIGHT, multiples of 8.")]
Negative = Annotated[str | None, typer.Option(help="Negative prompt.")]
Visibility = Annotated[
    str, typer.Option(help="With a post: public, unlisted, followers or direct.")
]
ContentWarning = Annotated[
    str | None, typer.Option("--cw", help="With a post: a content warning (marks it sensitive).")
]
Sensitive = Annotated[
    bool, typer.Option("--sensitive", help="With a post: hide the image behind a click.")
]
Language = Annotated[
    str, typer.Option(help="With a post: its language (en, de, pt-BR ...).")
]


class _Stages:
    """The job's stage as the worker reports it (from its GPU thread), shown by a spinner."""

    def __init__(self) -> None:
        self.stage = "queued"

    def __call__(self, stage: str) -> None:
        self.stage = stage


async def generate_one(
    rt: Runtime,
    username: str,
    prompt: str,
    *,
    seed: int | None,
    steps: int | None,
    size: str | None,
    negative: str | None,
    post: bool,
    visibility: str,
    show_progress: bool,
    cw: str | None = None,
    sensitive: bool = False,
    language: str = "en",
) -> Outcome:
    """Queue the job (GenerationRefused when refused) and run a worker until it ends."""
    options = {"visibility": visibility, "summary": cw, "sensitive": sensitive,
               "language": language}  # fmt: skip
    then: dict[str, Any] = {"post": options} if post else {}
    async with rt.session() as session:
        account = await get_local(session, username)
        job = await enqueue(
            session, rt, account, prompt, seed=seed, steps=steps,
            size=parse_size(size) if size else None, negative=negative, then=then,
        )  # fmt: skip
    return await await_job(rt, job.id, job.public_id, show_progress=show_progress)


async def await_job(rt: Runtime, job_id: int, public_id: str, *, show_progress: bool) -> Outcome:
    """Run a generation worker in this process until the job ends, showing its stage."""
    stages = _Stages()
    worker = GenerationWorker(
        rt, pipeline_factory=staged_factory(lambda: load_configured_pipeline(rt.settings), stages)
    )
    try:
        if not show_progress:
            return await run_until_final(rt, job_id, worker)
        with err.status("queued", spinner="dots") as status:
            task = asyncio.ensure_future(run_until_final(rt, job_id, worker))
            while not task.done():
                status.update(f"job {public_id}: {stages.stage}")
                await asyncio.wait([task], timeout=0.1)
            return task.result()
    finally:
        await worker.aclose()


def report(outcome: Outcome, settings: Settings, as_json: bool) -> None:
    if as_json:
        print_json(outcome.to_json())
    if outcome.status != "done":
        fail(f"generation {outcome.status}: {outcome.reason or 'no reason recorded'}")
    if as_json:
        return
    where = outcome.path or outcome.url or ""  # the file, or its URL when it is in a bucket
    out.print(f"image: {escape(where)}", highlight=False, soft_wrap=True)
    recipe = outcome.recipe
    steps = recipe.get("steps")
    out.print(
        f"seed {recipe.get('seed')}, {steps} step{'' if steps == 1 else 's'}, "
        f"{recipe.get('width')}x{recipe.get('height')}, model {recipe.get('model')}",
        highlight=False,
    )
    if outcome.post_url:
        out.print(f"post: {escape(outcome.post_url)}", highlight=False, soft_wrap=True)


def _generate(
    directory: Path | None, username: str, prompt: str, as_json: bool, **options: Any
) -> None:
    settings = settings_for(directory)
    if effective_model(settings.generator.model, settings.cache_path) == BUILTIN_TINY:
        err.print(escape(TINY_NOTICE), style="yellow", highlight=False, soft_wrap=True)

    async def go(rt: Runtime) -> Outcome:
        return await generate_one(rt, username, prompt, show_progress=not as_json, **options)

    report(run(with_runtime(settings, go)), settings, as_json)


@app.command()
def generate(
    account: Annotated[str, typer.Argument(help="Local account that makes the image.")],
    prompt: Annotated[str, typer.Argument(help="What to draw.")],
    seed: Seed = None,
    steps: Steps = None,
    size: Size = None,
    negative: Negative = None,
    post: Annotated[bool, typer.Option("--post", help="Publish the image as a post.")] = False,
    visibility: Visibility = "public",
    cw: ContentWarning = None,
    sensitive: Sensitive = False,
    language: Language = "en",
    directory: DirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Generate one image now (runs the model in this process) and print its path."""
    _generate(
        directory, account, prompt, as_json, seed=seed, steps=steps, size=size,
        negative=negative, post=post, visibility=visibility, cw=cw, sensitive=sensitive,
        language=language,
    )  # fmt: skip


@app.command()
def post(
    account: Annotated[str, typer.Argument(help="Local account that posts.")],
    prompt: Annotated[str, typer.Argument(help="What to draw.")],
    seed: Seed = None,
    steps: Steps = None,
    size: Size = None,
    negative: Negative = None,
    visibility: Visibility = "public",
    cw: ContentWarning = None,
    sensitive: Sensitive = False,
    language: Language = "en",
    directory: DirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Generate an image and publish it as a post (`generate --post`)."""
    _generate(
        directory, account, prompt, as_json, seed=seed, steps=steps, size=size,
        negative=negative, post=True, visibility=visibility, cw=cw, sensitive=sensitive,
        language=language,
    )  # fmt: skip


# -- queue ------------------------------------------------------------------------------------
SHOWN_BY_DEFAULT = ("queued", "running", "failed", "blocked")


async def list_jobs(rt: Runtime, *, everything: bool, limit: int = 100) -> list[dict[str, Any]]:
    query = (
        select(GenerationJob, Account.username)
        .join(Account, Account.id == GenerationJob.account_id)
        .order_by(GenerationJob.id.desc())
        .limit(limit)
    )
    if not everything:
        query = query.where(GenerationJob.status.in_(SHOWN_BY_DEFAULT))
    async with rt.sessions() as s:
        rows = (await s.execute(query)).all()
    return [
        {
            "job": job.public_id,
            "account": username,
            "status": job.status,
            "attempts": job.attempts,
            "prompt": job.recipe.get("prompt"),
            "seed": job.recipe.get("seed"),
            "size": f"{job.recipe.get('width')}x{job.recipe.get('height')}",
            "steps": job.recipe.get("steps"),
            "then": sorted(job.then or {}),
            "created_at": job.created_at.isoformat(),
            "run_at": job.run_at.isoformat(),
            "reason": job.last_error,
        }
        for job, username in rows
    ]


queue_app = typer.Typer(help="Show generation jobs; `queue cancel ID` cancels one.")
app.add_typer(queue_app, name="queue")


@queue_app.callback(invoke_without_command=True)
def queue(
    ctx: typer.Context,
    everything: Annotated[bool, typer.Option("--all", help="Include finished jobs.")] = False,
    directory: DirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show generation jobs: queued, running, failed and blocked (with reasons)."""
    if ctx.invoked_subcommand is not None:
        return
    settings = settings_for(directory)

    async def go(rt: Runtime) -> tuple[list[dict[str, Any]], int]:
        async with rt.sessions() as s:
            active = await active_count(s)
        return await list_jobs(rt, everything=everything), active

    rows, active = run(with_runtime(settings, go))
    if as_json:
        print_json(rows)
        return
    out.print(f"{active} of at most {settings.generator.max_queue} jobs queued or running")
    table = Table("job", "account", "status", "tries", "size/steps", "prompt", "reason")
    for r in rows:
        table.add_row(
            r["job"], r["account"], r["status"], str(r["attempts"]),
            f"{r['size']}/{r['steps']}", escape(_clip(r["prompt"] or "", 40)),
            escape(r["reason"] or ""),
        )  # fmt: skip
    out.print(table)


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


# -- bench generate ---------------------------------------------------------------------------
def _bench_cache(directory: Path | None) -> Path:
    config = locate_config(directory)
    if config.is_file():
        return settings_for(directory).cache_path
    return Path.home() / ".cache" / "dreamloom"


def _ints(value: str, name: str) -> list[int]:
    try:
        parsed = [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        parsed = []
    if not parsed or any(v < 1 for v in parsed):
        fail(f"{name} must be positive integers separated by commas, got {value!r}")
    return parsed


@bench_app.command("generate")
def bench_generate(
    model: Annotated[str, typer.Option(help="auto, builtin:tiny, a directory or a hub id.")] = (
        "auto"
    ),
    batch_sizes: Annotated[str, typer.Option(help="Comma-separated batch sizes.")] = "1,8,32",
    steps: Annotated[int, typer.Option(help="Denoising steps.")] = 1,
    size: Annotated[
        str | None, typer.Option(help="Square size, e.g. 512x512 (default 512 GPU, 64 CPU).")
    ] = None,
    iterations: Annotated[int, typer.Option(help="Timed runs per batch size.")] = 5,
    guidance: Annotated[float, typer.Option(help="Guidance scale (0: no CFG).")] = 0.0,
    device: Annotated[str | None, typer.Option(help="cpu, cuda, cuda:N (default: auto).")] = None,
    dtype: Annotated[str | None, typer.Option(help="fp16, bf16, fp32 (default: auto).")] = None,
    prompt_embeds: Annotated[
        bool, typer.Option(help="Precompute text embeddings (time denoise + decode only).")
    ] = False,
    compile: Annotated[
        bool | None, typer.Option("--compile/--no-compile", help="torch.compile (CUDA).")
    ] = None,
    tiny_vae: Annotated[str | None, typer.Option(help="An AutoencoderTiny dir or hub id.")] = None,
    directory: DirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Plain diffusers vs Dreamloom's generation path, side by side in one process."""
    square: int | None = None
    if size:
        w, h = parse_size(size) if "x" in size.lower() else (int(size), int(size))
        if w != h:
            fail(f"--size must be square for the benchmark, got {size}")
        square = w
    say = (lambda _m: None) if as_json else (lambda m: err.print(escape(m), highlight=False))
    quiet_hub_progress()
    report = run_bench(
        model, cache_dir=_bench_cache(directory), batch_sizes=_ints(batch_sizes, "--batch-sizes"),
        steps=steps, size=square, iterations=iterations, guidance=guidance, device=device,
        dtype=dtype, prompt_embeds=prompt_embeds, compile=compile, tiny_vae=tiny_vae,
        progress=say,
    )  # fmt: skip
    if as_json:
        print_json(report.to_json())
        return
    _print_bench(report)


def _print_bench(report: Any) -> None:
    out.print(
        f"model {report.model} on {report.device} ({report.dtype}), {report.size}x{report.size}, "
        f"{report.steps} step(s), guidance {report.guidance:g}, {report.iterations} iterations, "
        f"compiled={report.compiled}, prompt_embeds={report.prompt_embeds}",
        highlight=False,
    )
    table = Table("path", "batch-1 latency (median)", "load to 1st image",
                  *(f"img/s @ {b}" for b in report.batch_sizes))  # fmt: skip
    for name, r in report.results.items():
        table.add_row(
            name, f"{r.latency_ms:.1f} ms", f"{r.load_to_first_image_s:.2f} s",
            *(f"{r.throughput[b]:.1f}" for b in report.batch_sizes),
        )  # fmt: skip
    if report.latency_speedup is not None:
        table.add_row(
            "dreamloom / diffusers", f"{report.latency_speedup:.2f}x faster", "",
            *(f"{report.throughput_speedup[b]:.2f}x" for b in report.batch_sizes),
        )  # fmt: skip
    out.print(table)
    for note in report.notes:
        out.print(f"note: {note}", highlight=False)
    out.print(", ".join(f"{k} {v}" for k, v in report.versions.items()), highlight=False)
