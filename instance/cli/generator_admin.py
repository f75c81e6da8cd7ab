"""`dreamloom queue cancel ID` and `dreamloom generator pause|resume|status`: the admin's
controls over the generation worker (the rules are in instance/generation/control.py)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from instance.cli.common import (
    DirOption,
    JsonOption,
    YesOption,
    app,
    confirm_or_abort,
    out,
    print_json,
    run,
    settings_for,
    with_runtime,
)
from instance.cli.generate import queue_app
from instance.generation import control
from instance.generation.control import Cancelled, GeneratorStatus
from instance.runtime import Runtime

generator_app = typer.Typer(
    help="Pause, resume and inspect the generation worker.", no_args_is_help=True
)
app.add_typer(generator_app, name="generator")


@queue_app.command("cancel")
def cancel(
    job: Annotated[str, typer.Argument(help="The job's id, as `dreamloom queue` shows it.")],
    yes: YesOption = False,
    directory: DirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Cancel a queued or running generation job: no image kept, no post, no reply."""
    settings = settings_for(directory)
    confirm_or_abort(f"Cancel generation job {job}?", yes)

    async def go(rt: Runtime) -> Cancelled:
        return await control.cancel(rt, job)

    done = run(with_runtime(settings, go))
    if as_json:
        print_json({"job": done.job, "was": done.was, "status": "cancelled"})
        return
    note = " (the worker drops its image when it finishes)" if done.was == "running" else ""
    out.print(f"job {escape(done.job)}: cancelled, was {done.was}{note}", highlight=False)


def _switch(paused: bool, directory: DirOption, as_json: bool) -> None:
    settings = settings_for(directory)

    async def go(rt: Runtime) -> tuple[bool, GeneratorStatus]:
        changed = await control.set_paused(rt, paused)
        return changed, await control.status(rt)

    changed, state = run(with_runtime(settings, go))
    if as_json:
        print_json({**state.to_json(), "changed": changed})
        return
    word = "paused" if paused else "running"
    if not changed:
        out.print(f"generator: already {word}")
    elif paused:
        out.print(f"generator: paused; {state.queued} queued jobs wait (requests still queue)")
    else:
        out.print(f"generator: running again; {state.queued} queued jobs to take")


@generator_app.command("pause")
def pause(directory: DirOption = None, as_json: JsonOption = False) -> None:
    """Stop the worker from starting jobs; requests still queue."""
    _switch(True, directory, as_json)


@generator_app.command("resume")
def resume(directory: DirOption = None, as_json: JsonOption = False) -> None:
    """Let the worker take queued jobs again, oldest first."""
    _switch(False, directory, as_json)


@generator_app.command("status")
def status(directory: DirOption = None, as_json: JsonOption = False) -> None:
    """Paused or running, queue depth and the oldest queued job's age."""
    settings = settings_for(directory)

    async def go(rt: Runtime) -> GeneratorStatus:
        return await control.status(rt)

    state = run(with_runtime(settings, go))
    if as_json:
        print_json(state.to_json())
        return
    word = "paused" if state.paused else "running"
    age = (
        f"; oldest waiting {_age(state.oldest_queued_age_s)}"
        if state.oldest_queued_age_s is not None
        else ""
    )
    out.print(
        f"generator: {word}; {state.queued} queued, {state.running} running"
        f" (at most {settings.generator.max_queue}){age}"
    )


def _age(seconds: float) -> str:
    s = int(seconds)
    if s < 120:
        return f"{s} s"
    if s < 7200:
        return f"{s // 60} min"
    return f"{s // 3600} h {s % 3600 // 60} min"
