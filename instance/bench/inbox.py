"""`dreamloom bench inbox`: signed POSTs per second that the inbox verifies and persists.

A real instance (`dreamloom serve --no-workers`, SQLite, in a temporary directory) runs in a
child process on 127.0.0.1. This process serves one fake remote actor on another loopback
port, pre-signs N `Create{Note}` activities from it the way Mastodon signs (draft-cavage,
rsa-sha256, Digest), sends one warm-up request
(the instance fetches and caches the key), then fires the N requests over C connections and
reports accepted/s and latency percentiles. Afterwards it counts the stored inbox rows: an
accepted request whose row is missing would be a lost activity.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from activitypub.keys import generate_rsa_keypair
from activitypub.objects import AS_CONTEXT, AS_PUBLIC, build_actor
from activitypub.signatures import sign_request_headers
from instance.accounts import NewAccount, create_account
from instance.runtime import open_runtime
from instance.settings import load_settings
from instance.setup import ensure_instance, write_config

ACTIVITY_JSON = "application/activity+json"
Signed = tuple[dict[str, str], bytes]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class FakeRemote:
    """Remote actors (`load0`, `load1`, ...) served over loopback HTTP; the instance fetches
    each one's key once, on its first request."""

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
        self.fetches = 0
        app = Starlette(routes=[Route("/users/{name}", self.serve_actor)])
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        self.server = uvicorn.Server(config)

    async def serve_actor(self, request: Request) -> Response:
        self.fetches += 1
        document = self.documents.get(request.url.path)
        if document is None:
            return Response(status_code=404)
        return Response(document, media_type=ACTIVITY_JSON)

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


def prepare_instance(directory: Path, port: int) -> str:
    """config.toml, database and a local account to mention; returns its actor URL."""

    write_config(directory, f"127.0.0.1:{port}", "http", allow_private_addresses=True)

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
    directory: Path, port: int, *, workers: bool = False, limits: bool = False
) -> subprocess.Popen[bytes]:
    """`dreamloom serve` in a child process; `workers`: with the background workers in it
    (the default deployment); `limits`: with the default per-sender allowances."""
    command = [
        sys.executable, "-c", "from instance.cli import main; main()", "serve",
        "--dir", str(directory), "--port", str(port),
        "--workers" if workers else "--no-workers",
    ]  # fmt: skip
    env = {**os.environ, **({} if limits else UNLIMITED_SENDER)}
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, env=env)  # noqa: S603


async def wait_until_up(base: str, process: subprocess.Popen[bytes]) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(300):
            if process.poll() is not None:
                raise RuntimeError("the instance exited during start-up")
            with contextlib.suppress(httpx.HTTPError):
                answer = await client.get(f"{base}/actor", headers={"Accept": ACTIVITY_JSON})
                if answer.is_success:
                    return
            await asyncio.sleep(0.1)
    raise RuntimeError("the instance did not start within 30 s")


class Tally:
    """Latencies and status codes of the requests sent."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.codes: dict[str, int] = {}

    def add(self, code: str, seconds: float) -> None:
        self.latencies.append(seconds)
        self.codes[code] = self.codes.get(code, 0) + 1


async def fire_httpx(inbox: str, requests: list[Signed], concurrency: int, tally: Tally) -> None:
    """One httpx client over C connections, the way most load generators send."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:

        async def worker() -> None:
            while requests:
                headers, body = requests.pop()
                start = time.perf_counter()
                try:
                    answer = await client.post(inbox, content=body, headers=headers)
                    code = str(answer.status_code)
                except httpx.HTTPError as exc:
                    code = type(exc).__name__
                tally.add(code, time.perf_counter() - start)

        await asyncio.gather(*(worker() for _ in range(concurrency)))


async def fire_raw(inbox: str, requests: list[Signed], concurrency: int, tally: Tally) -> None:
    """A light generator: each request is serialised to bytes before the clock starts and
    written to one of C keep-alive connections, so the CPU goes to the server, not to us."""
    url = httpx.URL(inbox)
    host, port, path = url.host, url.port or 80, url.raw_path.decode()
    payloads = [serialise(path, request) for request in requests]
    requests.clear()

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while payloads:
                payload = payloads.pop()
                start = time.perf_counter()
                writer.write(payload)
                code = await read_response(reader)
                tally.add(code, time.perf_counter() - start)
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
    """User + system CPU time of a process (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(sorted_values: list[float], fraction: float) -> float:
    index = min(len(sorted_values) - 1, int(len(sorted_values) * fraction))
    return round(1000 * sorted_values[index], 1)


async def run_load(
    directory: Path, n: int, concurrency: int, port: int, generator: str
) -> dict[str, Any]:
    remote = FakeRemote(free_port())
    remote_task = asyncio.create_task(remote.server.serve())
    base = f"http://127.0.0.1:{port}"
    process = start_server(directory, port)
    try:
        await wait_until_up(base, process)
        inbox = f"{base}/inbox"
        mention = f"{base}/users/bench"
        requests = [remote.signed(inbox, i, mention) for i in range(n + 1)]
        async with httpx.AsyncClient() as client:
            headers, body = requests.pop()
            warm = await client.post(inbox, content=body, headers=headers)
        if warm.status_code != 202:
            raise RuntimeError(f"warm-up answered {warm.status_code}: {warm.text}")
        server_cpu, client_cpu = cpu_seconds(process.pid), time.process_time()
        tally = Tally()
        started = time.perf_counter()
        await GENERATORS[generator](inbox, requests, concurrency, tally)
        elapsed = time.perf_counter() - started
        server_cpu = cpu_seconds(process.pid) - server_cpu
        client_cpu = time.process_time() - client_cpu
    finally:
        process.terminate()
        await asyncio.to_thread(process.wait, 30)
        remote.server.should_exit = True
        await remote_task
    latencies, codes = sorted(tally.latencies), tally.codes
    accepted = sum(v for k, v in codes.items() if k.startswith("2"))
    with contextlib.closing(sqlite3.connect(directory / "data" / "dreamloom.db")) as db:
        (stored,) = db.execute("SELECT count(*) FROM inbox_items").fetchone()
    return {
        "n": n, "concurrency": concurrency, "generator": generator, "seconds": round(elapsed, 2),
        "accepted_per_s": round(accepted / elapsed, 1), "codes": codes,
        "p50_ms": percentile(latencies, 0.50), "p95_ms": percentile(latencies, 0.95),
        "p99_ms": percentile(latencies, 0.99), "key_fetches": remote.fetches,
        "stored_rows": stored - 1, "lost": max(0, accepted - (stored - 1)),
        "server_cpu_ms_per_request": round(1000 * server_cpu / n, 3),
        "client_cpu_ms_per_request": round(1000 * client_cpu / n, 3),
    }  # fmt: skip


def bench(n: int, concurrency: int, generator: str = "raw") -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="dreamloom-bench-") as tmp:
        directory = Path(tmp)
        port = free_port()
        prepare_instance(directory, port)
        with asyncio.Runner(loop_factory=loop_factory()) as runner:
            return runner.run(run_load(directory, n, concurrency, port, generator))


def loop_factory() -> Any:
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop
