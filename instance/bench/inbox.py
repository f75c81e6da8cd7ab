"""`dreamloom bench inbox`: signed POSTs per second the inbox verifies and persists, and how
long the deployment takes to handle them.

For each deployment and load asked for, a fresh instance (SQLite, in a temporary directory,
an AI account `bench` on the builtin:tiny model) runs `dreamloom serve` in a child process on
127.0.0.1, started the way a self-hoster starts it, so the bench measures whatever `serve`
is:

- deployment `default`: plain `dreamloom serve`, every role running and draining;
- deployment `no-workers`: `dreamloom serve --no-workers`, the accept path alone;
- load `mention`: every Note mentions the AI account (each is an ask, asks.py's quotas apply);
- load `plain`: the Notes mention nobody.

This process serves one fake remote actor on another loopback port, pre-signs N
`Create{Note}` activities from it the way Mastodon signs (draft-cavage, rsa-sha256, Digest),
sends one warm-up request (the instance fetches and caches the key; with workers, the bench
first waits until every worker role beats in `role_heartbeats`, the generation role once its
model is loaded, then until the warm-up item is handled), then fires the N requests over C
connections and reports accepted/s and latency percentiles. With workers it then polls the
database until no accepted item is queued or running: the drain time runs from the 202 of the
last request to then. Every accepted activity is looked up by its id: `lost` = accepted, no
row.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from sqlalchemy import inspect, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from activitypub.keys import generate_rsa_keypair
from activitypub.objects import AS_CONTEXT, AS_PUBLIC, build_actor
from activitypub.signatures import sign_request_headers
from generator.locating import BUILTIN_TINY
from instance.accounts import NewAccount, create_account
from instance.errors import UserError
from instance.runtime import open_runtime
from instance.settings import load_settings
from instance.setup import ensure_instance, write_config
from instance.storage.db import make_engine
from instance.storage.models import Base

ACTIVITY_JSON = "application/activity+json"
Signed = tuple[dict[str, str], bytes]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class FakeRemote:
    """Remote actors (`load0`, `load1`, ...) served over loopback HTTP; the instance fetches
    each one's key once, on its first request. Their inboxes take what the instance
    delivers (the AI account's replies) with a 202, as a healthy server does, unread."""

    def __init__(self, port: int, actors: int = 1) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.private_pem, public_pem = generate_rsa_keypair()  # one key, each actor its id
        self.actors = [f"{self.base}/users/load{n}" for n in range(actors)]
        self.documents = {
            f"/users/load{n}": json.dumps(build_actor(
                actor_id=actor, username=f"load{n}", inbox=f"{actor}/inbox",
                outbox=f"{actor}/outbox", followers=f"{actor}/followers",
                following=f"{actor}/following", shared_inbox=f"{self.base}/inbox",
                public_key_pem=public_pem, actor_type="Person",
            ))
            for n, actor in enumerate(self.actors)
        }  # fmt: skip
        self.fetches = self.deliveries = 0
        app = Starlette(routes=[
            Route("/users/{name}", self.serve_actor),
            Route("/users/{name}/inbox", self.take_delivery, methods=["POST"]),
            Route("/inbox", self.take_delivery, methods=["POST"]),
        ])  # fmt: skip
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        self.server = uvicorn.Server(config)

    async def serve_actor(self, request: Request) -> Response:
        self.fetches += 1
        document = self.documents.get(request.url.path)
        if document is None:
            return Response(status_code=404)
        return Response(document, media_type=ACTIVITY_JSON)

    async def take_delivery(self, request: Request) -> Response:
        await request.body()
        self.deliveries += 1
        return Response(status_code=202)

    def signed(self, inbox: str, i: int, mention: str | None = None) -> Signed:
        """Create{Note} number `i`, from actor `i` modulo their number, signed for `inbox`."""
        actor = self.actors[i % len(self.actors)]
        activity_id = f"{actor}/load/{uuid.uuid4()}"
        note = {
            "id": f"{activity_id}/note", "type": "Note", "attributedTo": actor,
            "content": f"<p>load {i}</p>", "published": time.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "to": [AS_PUBLIC], "cc": [mention] if mention else [],
            "tag": [{"type": "Mention", "href": mention}] if mention else [],
        }  # fmt: skip
        body = json.dumps({
            "@context": AS_CONTEXT, "id": activity_id, "type": "Create", "actor": actor,
            "object": note, "to": note["to"], "cc": note["cc"],
        }).encode()  # fmt: skip
        headers = sign_request_headers(
            "POST", inbox, key_id=f"{actor}#main-key", private_pem=self.private_pem,
            body=body, content_type=ACTIVITY_JSON,
        )  # fmt: skip
        return headers, body


def prepare_instance(directory: Path, port: int, database_url: str = "") -> str:
    """config.toml (the builtin:tiny model; `database_url` when given), database and a local
    AI account to mention; returns its actor URL."""

    write_config(directory, f"127.0.0.1:{port}", "http", allow_private_addresses=True,
                 model=BUILTIN_TINY)  # fmt: skip
    if database_url:
        config = directory / "config.toml"
        config.write_text(config.read_text() + f'\n[database]\nurl = "{database_url}"\n')

    async def go() -> str:
        rt = await open_runtime(load_settings(directory / "config.toml"))
        try:
            await ensure_instance(rt)
            async with rt.session() as session:
                account = await create_account(session, rt.urls, NewAccount("bench", ai=True))
                return account.uri
        finally:
            await rt.aclose()

    return asyncio.run(go())


# The load comes from one actor on one server: it gets an allowance far above the load, so the
# benchmark measures the inbox's throughput, not its per-sender limits.
UNLIMITED_SENDER = {
    "DREAMLOOM_FEDERATION_INBOX_ACTOR_PER_MINUTE": str(10**9),
    "DREAMLOOM_FEDERATION_INBOX_ACTOR_MB_PER_MINUTE": str(10**9),
    "DREAMLOOM_FEDERATION_INBOX_DOMAIN_PER_MINUTE": str(10**9),
}


def start_server(
    directory: Path, port: int, *, workers: bool | None = False, limits: bool = False,
    extra: Sequence[str] = (),
) -> subprocess.Popen[bytes]:
    """`dreamloom serve` in a child process, its log in `directory`/server.log. `workers`:
    None starts it as a self-hoster does (no flag: the default deployment), True with
    `--workers`, False with `--no-workers`; `limits`: with the default per-sender
    allowances."""
    flag = [] if workers is None else ["--workers" if workers else "--no-workers"]
    command = [
        sys.executable, "-c", "from instance.cli import main; main()", "serve",
        "--dir", str(directory), "--port", str(port), *flag, *extra,
    ]  # fmt: skip
    env = {**os.environ, **({} if limits else UNLIMITED_SENDER)}
    with (directory / "server.log").open("ab") as log:
        return subprocess.Popen(command, stdout=log, stderr=log, env=env)  # noqa: S603


async def wait_until_up(base: str, process: subprocess.Popen[bytes]) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(600):
            if process.poll() is not None:
                raise RuntimeError("the instance exited during start-up")
            with contextlib.suppress(httpx.HTTPError):
                answer = await client.get(f"{base}/actor", headers={"Accept": ACTIVITY_JSON})
                if answer.is_success:
                    return
            await asyncio.sleep(0.1)
    raise RuntimeError("the instance did not start within 60 s")


class Tally:
    """Latencies and status codes of the requests sent; the ids of the accepted activities
    and when the last of them was answered (perf_counter)."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.codes: dict[str, int] = {}
        self.accepted: set[str] = set()
        self.last_accepted_at = 0.0

    def add(self, code: str, seconds: float, activity: str | None = None) -> None:
        self.latencies.append(seconds)
        self.codes[code] = self.codes.get(code, 0) + 1
        if code.startswith("2"):
            self.last_accepted_at = time.perf_counter()
            if activity is not None:
                self.accepted.add(activity)


def activity_id(request: Signed) -> str:
    return str(json.loads(request[1])["id"])


async def fire_httpx(inbox: str, requests: list[Signed], concurrency: int, tally: Tally) -> None:
    """One httpx client over C connections, the way most load generators send."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:

        async def worker() -> None:
            while requests:
                headers, body = request = requests.pop()
                start = time.perf_counter()
                try:
                    answer = await client.post(inbox, content=body, headers=headers)
                    code = str(answer.status_code)
                except httpx.HTTPError as exc:
                    code = type(exc).__name__
                tally.add(code, time.perf_counter() - start, activity_id(request))

        await asyncio.gather(*(worker() for _ in range(concurrency)))


async def fire_raw(inbox: str, requests: list[Signed], concurrency: int, tally: Tally) -> None:
    """A light generator: each request is serialised to bytes before the clock starts and
    written to one of C keep-alive connections, so the CPU goes to the server, not to us."""
    url = httpx.URL(inbox)
    host, port, path = url.host, url.port or 80, url.raw_path.decode()
    payloads = [(activity_id(request), serialise(path, request)) for request in requests]
    requests.clear()

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while payloads:
                activity, payload = payloads.pop()
                start = time.perf_counter()
                writer.write(payload)
                code = await read_response(reader)
                tally.add(code, time.perf_counter() - start, activity)
                if code == "closed":
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))


def serialise(path: str, request: Signed) -> bytes:
    """One signed POST as the bytes of an HTTP/1.1 request."""
    headers, body = request
    return (
        f"POST {path} HTTP/1.1\r\n".encode()
        + "".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode()
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )


async def read_response(reader: asyncio.StreamReader) -> str:
    """The status code of one HTTP/1.1 response ("closed" if none came), its body read and
    dropped."""
    return (await read_answer(reader))[0]


async def read_answer(reader: asyncio.StreamReader) -> tuple[str, dict[str, str]]:
    """The status code and the (lowercased) headers of one HTTP/1.1 response."""
    status = await reader.readline()
    if not status:
        return "closed", {}
    headers: dict[str, str] = {}
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    if length:
        await reader.readexactly(length)
    return status.split()[1].decode(), headers


GENERATORS = {"raw": fire_raw, "httpx": fire_httpx}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and of every process below it (the roles a
    supervisor starts), including children it has already waited for (Linux /proc; 0
    elsewhere)."""
    return sum(_stat_cpu(one, waited=True) for one in [pid, *descendants(pid)])


def cpu_by_role(pid: int) -> dict[str, float]:
    """`cpu_seconds` of each live process below the supervisor `pid`, by the role it runs
    (`web`, or the `--role` of a `worker`; several processes of one role add up), and the
    supervisor itself as `supervisor`."""
    found: dict[str, float] = {"supervisor": _stat_cpu(pid)}
    for one in descendants(pid):
        try:
            argv = Path(f"/proc/{one}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        words = [a.decode(errors="replace") for a in argv]
        role = words[words.index("--role") + 1] if "--role" in words[:-1] else (
            "web" if "web" in words else "other")  # fmt: skip
        found[role] = found.get(role, 0.0) + _stat_cpu(one)
    return found


def database_cpu_seconds() -> float | None:
    """User + system CPU time of every process named `postgres` on this host (the database
    server and its backends, with the backends that have already exited); None when there is
    none, as when the database runs elsewhere. On a shared machine the PostgreSQL server's
    CPU comes out of the same cores as the roles', so it belongs beside theirs."""
    found = None
    for pid in _live_pids():
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip() == "postgres":
                found = (found or 0.0) + _stat_cpu(pid, waited=True)
        except OSError:
            continue
    return found


def _live_pids() -> list[int]:
    """The pid of every process /proc lists now."""
    return [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]


def _stat_cpu(pid: int, waited: bool = False) -> float:
    """User + system CPU seconds of one process (with `waited`: and of its children it has
    waited for), from /proc; 0 for a process that is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return sum(int(f) for f in fields[11 : 15 if waited else 13]) / os.sysconf("SC_CLK_TCK")


def descendants(pid: int) -> list[int]:
    """Every live process below `pid`."""
    parents: dict[int, list[int]] = {}
    for one in _live_pids():
        try:
            ppid = int(Path(f"/proc/{one}/stat").read_text().rpartition(")")[2].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        parents.setdefault(ppid, []).append(one)
    found, todo = [], [pid]
    while todo:
        children = parents.get(todo.pop(), [])
        found += children
        todo += children
    return found


def percentile(sorted_values: list[float], fraction: float) -> float:
    index = min(len(sorted_values) - 1, int(len(sorted_values) * fraction))
    return round(1000 * sorted_values[index], 1)


DEPLOYMENTS: dict[str, bool | None] = {"default": None, "no-workers": False}
"""Deployment -> `start_server`'s `workers` (None: `dreamloom serve` with no flag)."""
LOADS = ("mention", "plain")
DRAIN_TIMEOUT_S = 120.0
POLL_S = 0.05  # how often the database is asked whether the accepted items are handled
READY_TIMEOUT_S = 60.0
WORKER_ROLES = frozenset({"inbox", "delivery", "generation"})
UNSETTLED = ("queued", "running")


async def _rows(database: AsyncEngine, sql: str) -> list[Any]:
    async with database.connect() as conn:
        return list((await conn.execute(text(sql))).all())


async def inbox_statuses(database: AsyncEngine) -> dict[str, str]:
    """activity id -> status of every inbox row."""
    found = await _rows(database, "SELECT activity_uri, status FROM inbox_items")
    return {str(activity): str(status) for activity, status in found}


async def unsettled(database: AsyncEngine) -> int:
    [(left,)] = await _rows(
        database, "SELECT count(*) FROM inbox_items WHERE status IN ('queued', 'running')"
    )
    return int(left)


async def generation_statuses(database: AsyncEngine) -> dict[str, int]:
    rows = await _rows(database, "SELECT status, count(*) FROM generation_jobs GROUP BY status")
    return {str(status): int(count) for status, count in rows}


async def beating_roles(database: AsyncEngine) -> set[str] | None:
    """The roles with a heartbeat row; None when the schema has no heartbeats (a `serve`
    that runs its workers in the web process)."""
    try:
        found = await _rows(database, "SELECT DISTINCT role FROM role_heartbeats")
        return {str(r) for (r,) in found}
    except DBAPIError:  # no such table
        return None


async def wait_roles(database: AsyncEngine, timeout_s: float) -> float:
    """Seconds until every worker role beats (the generation role beats once its model is
    loaded and warmed), so the load meets the deployment as it runs, not as it starts."""
    started = time.perf_counter()
    while (roles := await beating_roles(database)) is not None:
        if roles >= WORKER_ROLES:
            break
        if time.perf_counter() - started > timeout_s:
            raise RuntimeError(f"only {sorted(roles)} beat after {timeout_s} s")
        await asyncio.sleep(POLL_S)
    return time.perf_counter() - started


async def wait_handled(database: AsyncEngine, timeout_s: float) -> float | None:
    """Seconds until no inbox item is queued or running (polled every POLL_S), or None past
    `timeout_s`."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout_s:
        if await unsettled(database) == 0:
            return time.perf_counter() - started
        await asyncio.sleep(POLL_S)
    return None


async def run_load(
    directory: Path, n: int, concurrency: int, port: int, generator: str,
    deployment: str = "no-workers", load: str = "mention",
    drain_timeout_s: float = DRAIN_TIMEOUT_S, database_url: str = "", inbox_processes: int = 1,
    actors: int = 1,
) -> dict[str, Any]:  # fmt: skip
    workers = DEPLOYMENTS[deployment]
    remote = FakeRemote(free_port(), actors)
    remote_task = asyncio.create_task(remote.server.serve())
    base = f"http://127.0.0.1:{port}"
    database = make_engine(database_url or f"sqlite+aiosqlite:///{directory}/data/dreamloom.db")
    extra = ["--processes", f"inbox={inbox_processes}"] if inbox_processes > 1 else []
    process = start_server(directory, port, workers=workers, extra=extra)
    ready_s = drained_s = roles_s = None
    try:
        await wait_until_up(base, process)
        if workers is not False:
            roles_s = await wait_roles(database, READY_TIMEOUT_S)
        inbox = f"{base}/inbox"
        mention = f"{base}/users/bench" if load == "mention" else None
        requests = [remote.signed(inbox, i, mention) for i in range(n + actors)]
        async with httpx.AsyncClient() as client:  # one warm-up per actor: its key is fetched
            for _ in range(actors):
                headers, body = requests.pop()
                warm = await client.post(inbox, content=body, headers=headers)
                if warm.status_code != 202:
                    raise RuntimeError(f"warm-up answered {warm.status_code}: {warm.text}")
        if workers is not False:  # the inbox role is up once it has handled the warm-up
            ready_s = await wait_handled(database, READY_TIMEOUT_S)
            if ready_s is None:
                raise RuntimeError(f"the warm-up was not handled within {READY_TIMEOUT_S} s")
        server_cpu, client_cpu = cpu_seconds(process.pid), time.process_time()
        roles_before = cpu_by_role(process.pid)
        database_before = database_cpu_seconds() if database_url else None
        tally = Tally()
        started = time.perf_counter()
        await GENERATORS[generator](inbox, requests, concurrency, tally)
        elapsed = time.perf_counter() - started
        sending_cpu = cpu_seconds(process.pid) - server_cpu
        roles_sending = _minus(cpu_by_role(process.pid), roles_before)
        database_sending = _since(database_before)
        client_cpu = time.process_time() - client_cpu
        if workers is not False:
            left = drain_timeout_s - (time.perf_counter() - tally.last_accepted_at)
            if await wait_handled(database, max(0.0, left)) is not None:
                drained_s = time.perf_counter() - tally.last_accepted_at
        server_cpu = cpu_seconds(process.pid) - server_cpu
        roles_all = _minus(cpu_by_role(process.pid), roles_before)
        database_all = _since(database_before)
    finally:
        process.terminate()
        await asyncio.to_thread(process.wait, 30)
        remote.server.should_exit = True
        await remote_task
    latencies, codes = sorted(tally.latencies), tally.codes
    accepted = sum(v for k, v in codes.items() if k.startswith("2"))
    rows = await inbox_statuses(database)
    jobs = await generation_statuses(database)
    await database.dispose()
    by_status = Counter(rows.get(a, "lost") for a in tally.accepted)
    return {
        "deployment": deployment, "load": load, "n": n, "concurrency": concurrency,
        "generator": generator, "seconds": round(elapsed, 2),
        "accepted_per_s": round(accepted / elapsed, 1), "codes": codes,
        "p50_ms": percentile(latencies, 0.50), "p95_ms": percentile(latencies, 0.95),
        "p99_ms": percentile(latencies, 0.99), "key_fetches": remote.fetches,
        "deliveries_received": remote.deliveries,
        "stored_rows": len(rows) - actors, "lost": by_status.pop("lost", 0),
        "accepted_by_status": dict(by_status),
        "roles_ready_s": None if roles_s is None else round(roles_s, 2),
        "warm_up_handled_s": None if ready_s is None else round(ready_s, 2),
        "drain_s": None if drained_s is None else round(drained_s, 2),
        "handled_per_s": (round(accepted / (elapsed + drained_s), 1)
                          if drained_s is not None else None),
        "generation_jobs": jobs, "database": "postgresql" if database_url else "sqlite",
        "inbox_processes": inbox_processes if workers is not False else 0, "actors": actors,
        "server_cpu_ms_per_request": round(1000 * sending_cpu / n, 3),
        "server_cpu_ms_per_item_with_drain": round(1000 * server_cpu / n, 3),
        "client_cpu_ms_per_request": round(1000 * client_cpu / n, 3),
        "server_cpu_s_by_role_while_sending": roles_sending,
        "server_cpu_s_by_role_with_drain": roles_all,
        "database_cpu_s_while_sending": database_sending,
        "database_cpu_s_with_drain": database_all,
    }  # fmt: skip


def _since(before: float | None) -> float | None:
    """The database server's CPU seconds since `before` (None: not on this host)."""
    now = None if before is None else database_cpu_seconds()
    return None if now is None or before is None else round(now - before, 3)


def _minus(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {role: round(cpu - before.get(role, 0.0), 2) for role, cpu in sorted(after.items())}


def bench(
    n: int, concurrency: int, generator: str = "raw",
    deployments: Sequence[str] = tuple(DEPLOYMENTS), loads: Sequence[str] = LOADS,
    drain_timeout_s: float = DRAIN_TIMEOUT_S, database_url: str = "", inbox_processes: int = 1,
    actors: int = 1,
) -> dict[str, Any]:  # fmt: skip
    """One run per (deployment, load), each on a fresh instance (with `database_url`: on
    that empty PostgreSQL database, whose tables are dropped after each run). The Notes come
    from `actors` remote actors of one server, in turn (one, as ../shared/bench/inbox_load.py
    sends them: the inbox handles one actor's activities in order, so only several actors
    let more inbox processes or lanes work at once)."""
    for name in deployments:
        if name not in DEPLOYMENTS:
            raise UserError(f"unknown deployment {name!r}: use {', '.join(DEPLOYMENTS)}")
    for name in loads:
        if name not in LOADS:
            raise UserError(f"unknown load {name!r}: use {', '.join(LOADS)}")
    if inbox_processes < 1:
        raise UserError(f"--inbox-processes must be at least 1, not {inbox_processes}")
    if actors < 1:
        raise UserError(f"--actors must be at least 1, not {actors}")
    if database_url:
        asyncio.run(_require_empty(database_url))
    runs = [one_run(n, concurrency, generator, d, load, drain_timeout_s, database_url,
                    inbox_processes, actors) for d in deployments for load in loads]  # fmt: skip
    return {"n": n, "concurrency": concurrency, "generator": generator,
            "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
            "runs": runs}  # fmt: skip


def one_run(
    n: int, concurrency: int, generator: str, deployment: str, load: str, drain_timeout_s: float,
    database_url: str = "", inbox_processes: int = 1, actors: int = 1,
) -> dict[str, Any]:  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="dreamloom-bench-") as tmp:
        directory = Path(tmp)
        port = free_port()
        try:
            prepare_instance(directory, port, database_url)
            load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
            with asyncio.Runner(loop_factory=loop_factory()) as runner:
                result = runner.run(run_load(directory, n, concurrency, port, generator,
                                             deployment, load, drain_timeout_s, database_url,
                                             inbox_processes, actors))  # fmt: skip
        finally:
            if database_url:
                asyncio.run(_drop_all(database_url))
        return {**result, "load_average_before": load_before}


async def _require_empty(url: str) -> None:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda c: inspect(c).get_table_names())
    finally:
        await engine.dispose()
    if tables:
        raise UserError(f"--database-url must be an empty database; it has {tables[:5]}")


async def _drop_all(url: str) -> None:
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.drop_all)
            await conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    finally:
        await engine.dispose()


def loop_factory() -> Any:
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop
