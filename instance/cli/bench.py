"""`dreamloom bench inbox|overload|fanout|timeline`: the benchmarks of instance/bench/, printed as a
line a person reads or as JSON (`--json`) for BENCHMARKS.md. (`bench generate` is
generate.py's.)"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer

from instance.bench import explore, fanout, inbox, overload, timeline
from instance.cli.common import JsonOption, bench_app, fail
from instance.errors import UserError


def _emit(result: dict[str, Any], as_json: bool, text: str) -> None:
    sys.stdout.write(json.dumps(result, default=str) + "\n" if as_json else text)


@bench_app.command("inbox")
def bench_inbox(
    n: Annotated[int, typer.Option("-n", help="Signed POSTs to send.")] = 1000,
    concurrency: Annotated[int, typer.Option("-c", help="Concurrent connections.")] = 16,
    generator: Annotated[
        str, typer.Option(help="raw: light pre-serialised requests; httpx: one httpx client "
                          "(what most load generators do; costs more CPU than the server).")
    ] = "raw",
    deployment: Annotated[
        str, typer.Option(help="Comma-separated: default (`dreamloom serve`, every role "
                          "running and draining), no-workers (`serve --no-workers`).")
    ] = ",".join(inbox.DEPLOYMENTS),
    load: Annotated[
        str, typer.Option(help="Comma-separated: mention (every Note mentions an AI "
                          "account), plain (the Notes mention nobody).")
    ] = ",".join(inbox.LOADS),
    drain_timeout: Annotated[
        float, typer.Option(help="Seconds after the last 202 to wait for every accepted "
                            "activity to be handled.")
    ] = inbox.DRAIN_TIMEOUT_S,
    database_url: Annotated[
        str, typer.Option(help="An EMPTY PostgreSQL database to run on instead of SQLite "
                          "(postgresql+asyncpg://...); its tables are dropped after each run.")
    ] = "",
    inbox_processes: Annotated[
        int, typer.Option(help="Inbox processes of the default deployment "
                          "(serve --processes inbox=N).")
    ] = 1,
    actors: Annotated[
        int, typer.Option(help="Remote actors (of one server) the Notes come from, in turn; "
                          "one actor's activities are handled in order.")
    ] = 1,
    as_json: JsonOption = False,
) -> None:
    """Signed Create{Note} POSTs/s the inbox verifies and persists, and the time until every
    accepted one is handled, per deployment and load (SQLite or PostgreSQL, loopback)."""
    if generator not in inbox.GENERATORS:
        raise typer.BadParameter(f"--generator must be one of {', '.join(inbox.GENERATORS)}")
    try:
        r = inbox.bench(n, concurrency, generator, _names(deployment), _names(load),
                        drain_timeout, database_url, inbox_processes, actors)  # fmt: skip
    except UserError as exc:
        fail(str(exc))
        return
    _emit(r, as_json, "".join(_inbox_line(run) for run in r["runs"]))


def _names(value: str) -> list[str]:
    return [name.strip() for name in value.split(",") if name.strip()]


def _inbox_line(r: dict[str, Any]) -> str:
    drained = (f"every accepted item handled {r['drain_s']} s after the last 202 "
               f"({r['handled_per_s']}/s overall)" if r["drain_s"] is not None
               else "not drained" if r["deployment"] != "no-workers" else "no workers")
    return (
        f"inbox [{r['deployment']}, {r['load']}]: {r['accepted_per_s']}/s accepted "
        f"({r['codes']}), p50 {r['p50_ms']} ms, p95 {r['p95_ms']} ms, p99 {r['p99_ms']} ms; "
        f"n={r['n']} c={r['concurrency']} ({r['generator']}); {drained}; accepted by status "
        f"{r['accepted_by_status']}, {r['lost']} lost, {r['key_fetches']} key fetch(es); "
        f"server CPU per request {r['server_cpu_ms_per_request']} ms "
        f"({r['server_cpu_ms_per_item_with_drain']} ms with the drain), load generator "
        f"{r['client_cpu_ms_per_request']} ms{_database_cpu(r)}\n"
    )  # fmt: skip


def _database_cpu(r: dict[str, Any]) -> str:
    if r.get("database_cpu_s_with_drain") is None:
        return ""
    return (f"; PostgreSQL on this host {r['database_cpu_s_while_sending']} s CPU while "
            f"sending, {r['database_cpu_s_with_drain']} s with the drain")  # fmt: skip


@bench_app.command("overload")
def bench_overload(
    factor: Annotated[float, typer.Option(help="Send this many times the sustained rate.")] = 10,
    calibrate: Annotated[int, typer.Option(help="Requests measuring the sustained rate.")] = 1000,
    burst: Annotated[int, typer.Option(help="Requests sent at factor x that rate.")] = 10_000,
    actors: Annotated[int, typer.Option(help="Remote actors sending them.")] = 20,
    as_json: JsonOption = False,
) -> None:
    """The default `dreamloom serve` flooded at many times the rate it sustains: only 202, or
    503/429 with Retry-After, and every accepted activity stored and handled."""
    r = overload.bench(factor, calibrate, burst, actors)
    _emit(r, as_json,
        f"overload: sustained {r['sustained_per_s']}/s; burst of {burst} offered at "
        f"{r['offered_per_s']}/s ({r['offered_factor']}x): {r['codes']}; "
        f"{r['refusals_without_retry_after']} refusals without Retry-After, refusals answered "
        f"in p50 {r['refusal_p50_ms']} / p99 {r['refusal_p99_ms']} ms; {r['lost']} accepted "
        f"lost, {r['stored_refused']} refused but stored; accepted handled within "
        f"{r['handled_within_s']} s: {r['accepted_by_status']}\n",
    )  # fmt: skip


@bench_app.command("fanout")
def bench_fanout(
    followers: Annotated[int, typer.Option(help="Remote followers.")] = 10_000,
    inboxes: Annotated[int, typer.Option(help="Remote servers (one shared inbox each).")] = 1000,
    bad: Annotated[float, typer.Option(help="Share of servers slow or failing.")] = 0.1,
    concurrency: Annotated[
        int | None, typer.Option(help="delivery_concurrency (default: the setting's).")
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(help="An EMPTY database to use; its tables are dropped afterwards."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Time until one post reaches every healthy inbox (loopback; SQLite unless
    --database-url)."""
    r = fanout.bench(followers, inboxes, bad, concurrency, database_url)
    _emit(r, as_json,
        f"fan-out ({r['backend']}): {r['followers']} followers on {r['inboxes']} inboxes "
        f"({dict(r['bad_inboxes'])} bad), concurrency {r['concurrency']}, "
        f"per host {r['per_host']}\n"
        f"  enqueue {r['enqueue_s']} s; every healthy inbox reached after "
        f"{r['healthy_delivered_s']} s; worker idle (every due row tried) after "
        f"{r['idle_s']} s\n"
        f"  {r['posts_sent']} POSTs, rows {r['rows']}, "
        f"{r['cpu_ms_per_post']} ms CPU per POST in the sender\n",
    )  # fmt: skip


@bench_app.command("timeline")
def bench_timeline(
    posts: Annotated[int, typer.Option(help="Posts to store.")] = 1_000_000,
    accounts: Annotated[int, typer.Option(help="Accounts, local and remote.")] = 5000,
    reads: Annotated[int, typer.Option(help="Timed reads per timeline and page.")] = 200,
    database_url: Annotated[
        str | None,
        typer.Option(help="An EMPTY database to use; its tables are dropped afterwards."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """p50/p95/p99 of timeline reads (home/local/federated/account) with N posts stored."""
    try:
        r = timeline.bench(posts, accounts, reads, database_url)
    except UserError as exc:
        fail(str(exc))
        return
    _emit(r, as_json, timeline.table(r))


@bench_app.command("explore")
def bench_explore(
    posts: Annotated[int, typer.Option(help="Posts to store (over the last 10 days).")] = 100_000,
    repeats: Annotated[int, typer.Option(help="Timed rankings.")] = 100,
    database_url: Annotated[
        str | None,
        typer.Option(help="An EMPTY database to use; its tables are dropped afterwards."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """p50/p95/p99 of the Explore ranking query (candidates and counts) with N posts stored."""
    try:
        r = explore.bench(posts, repeats, database_url)
    except UserError as exc:
        fail(str(exc))
        return
    _emit(r, as_json, explore.table(r))
