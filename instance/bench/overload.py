"""`dreamloom bench overload`: the inbox at many times the rate it sustains.

The default deployment (`dreamloom serve`: the web process and every worker role, the
default per-sender allowances, SQLite) runs in a child process on 127.0.0.1; this process
serves several fake remote actors on another loopback port (inbox.py's `FakeRemote`). After
one warm-up request per actor (each key is fetched once), a calibration run over
CALIBRATION_CONCURRENCY keep-alive connections (enough for the writer to batch fully, fewer
than the inbox's in-flight bound) measures the rate the inbox sustains, R. Then the burst:
requests sent open loop, on a schedule of `factor` x R whatever the answers, over PREOPEN
connections opened before the first request and as many more as it takes (at most
MAX_CONNECTIONS). Opening them beforehand is what lets one Python sender on the server's
cores keep to 10 x R: connecting inside the schedule held it near 5 x R, where a fast
server could absorb the whole burst without ever being overloaded.

What must hold, and what the result reports: every answer is 202, or 503/429 with a
Retry-After; every accepted activity has its inbox row; no refused activity has one; and,
given time, the workers handle every accepted activity (none stays queued).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import httpx

from instance.bench.inbox import (
    FakeRemote,
    Signed,
    Tally,
    fire_raw,
    free_port,
    loop_factory,
    percentile,
    prepare_instance,
    serialise,
    start_server,
    wait_until_up,
)

MAX_CONNECTIONS = 2000
PREOPEN = 512
CALIBRATION_CONCURRENCY = 128
DRAIN_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Outcome:
    activity_id: str
    code: str
    retry_after: str | None
    seconds: float


def activity_id(request: Signed) -> str:
    return str(json.loads(request[1])["id"])


class Connection(asyncio.Protocol):
    """One keep-alive connection with at most one request out, parsing answers as bytes
    arrive (a Protocol, not streams: the sender must cost far less than the server)."""

    def __init__(self, done: Callable[[Connection, Outcome | None], None]) -> None:
        self.done = done
        self.transport: asyncio.WriteTransport | None = None
        self.buffer = b""
        self.out: tuple[str, float] | None = None  # activity id, when it was written

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.WriteTransport, transport)  # TCP: it writes

    def send(self, activity: str, payload: bytes) -> None:
        if self.transport is None:  # closed by the server before we wrote
            self.done(self, Outcome(activity, "closed", None, 0.0))
            return
        self.out = (activity, time.perf_counter())
        self.transport.write(payload)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0 or self.out is None:
            return
        head = self.buffer[:end].decode("latin-1").split("\r\n")
        headers = dict(line.lower().partition(":")[::2] for line in head[1:])
        length = int(headers.get("content-length", "0"))
        if len(self.buffer) < end + 4 + length:
            return
        self.buffer = self.buffer[end + 4 + length:]
        activity, at = self.out
        self.out = None
        retry_after = headers.get("retry-after")
        code = head[0].split()[1]
        self.done(self, Outcome(activity, code, retry_after and retry_after.strip(),
                                time.perf_counter() - at))  # fmt: skip
        if headers.get("connection", "").strip() == "close" and self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self.out is not None:
            activity, at = self.out
            self.out = None
            self.done(self, Outcome(activity, "closed", None, time.perf_counter() - at))
        self.done(self, None)


async def open_loop(
    inbox: str, requests: list[Signed], rate: float, preopen: int = 0
) -> tuple[list[Outcome], float]:
    """Send request i at `i / rate` s from the start, on an idle connection or a new one;
    returns the outcomes and the rate at which the requests were actually written (below
    `rate` when this process cannot keep up, or when MAX_CONNECTIONS are all waiting)."""
    url = httpx.URL(inbox)
    host, port = url.host, url.port or 80
    payloads = [(activity_id(r), serialise(url.raw_path.decode(), r)) for r in requests]
    loop = asyncio.get_running_loop()
    idle: list[Connection] = []
    alive: set[Connection] = set()
    outcomes: list[Outcome] = []
    written: list[float] = []
    finished, freed = asyncio.Event(), asyncio.Event()
    connecting = 0

    def done(connection: Connection, outcome: Outcome | None) -> None:
        if outcome is None:  # the connection closed
            alive.discard(connection)
            with contextlib.suppress(ValueError):
                idle.remove(connection)
        else:
            outcomes.append(outcome)
            if connection.transport is not None:
                idle.append(connection)
        freed.set()
        if len(outcomes) == len(payloads):
            finished.set()

    async def send_on_new_connection(activity: str, payload: bytes) -> None:
        nonlocal connecting
        try:
            _, connection = await loop.create_connection(lambda: Connection(done), host, port)
        except OSError as exc:
            done(Connection(done), Outcome(activity, type(exc).__name__, None, 0.0))
            return
        finally:
            connecting -= 1
        alive.add(connection)
        connection.send(activity, payload)

    async def open_idle() -> None:
        with contextlib.suppress(OSError):
            _, connection = await loop.create_connection(lambda: Connection(done), host, port)
            alive.add(connection)
            idle.append(connection)

    await asyncio.gather(*(open_idle() for _ in range(min(preopen, len(payloads)))))
    tasks: set[asyncio.Task[None]] = set()
    started = time.perf_counter()
    for i, (activity, payload) in enumerate(payloads):
        delay = started + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        while not idle and len(alive) + connecting >= MAX_CONNECTIONS:
            freed.clear()
            await freed.wait()
        written.append(time.perf_counter())
        if idle:
            idle.pop().send(activity, payload)
        else:
            connecting += 1
            task = asyncio.create_task(send_on_new_connection(activity, payload))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
    await finished.wait()
    for connection in list(alive):
        if connection.transport is not None:
            connection.transport.close()
    return outcomes, len(written) / max(written[-1] - written[0], 1e-9)


def inbox_rows(database: Path) -> dict[str, str]:
    """activity id -> status of every inbox row."""
    with contextlib.closing(sqlite3.connect(database)) as db:
        return dict(db.execute("SELECT activity_uri, status FROM inbox_items").fetchall())


async def drain(database: Path, accepted: set[str], timeout_s: float) -> float | None:
    """Seconds until no accepted activity is still queued or running; None past timeout_s."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout_s:
        rows = await asyncio.to_thread(inbox_rows, database)
        if not any(rows.get(a) in ("queued", "running") for a in accepted):
            return round(time.perf_counter() - started, 1)
        await asyncio.sleep(0.5)
    return None


async def run_overload(
    directory: Path, port: int, factor: float, calibrate: int, burst: int, actors: int
) -> dict[str, Any]:
    remote = FakeRemote(free_port(), actors)
    remote_task = asyncio.create_task(remote.server.serve())
    base = f"http://127.0.0.1:{port}"
    database = directory / "data" / "dreamloom.db"
    process = start_server(directory, port, workers=True, limits=True)
    try:
        await wait_until_up(base, process)
        inbox = f"{base}/inbox"
        requests = [remote.signed(inbox, i) for i in range(actors + calibrate + burst)]
        warm, calibration, flood = (requests[:actors], requests[actors:actors + calibrate],
                                    requests[actors + calibrate:])  # fmt: skip
        async with httpx.AsyncClient() as client:
            for headers, body in warm:
                answer = await client.post(inbox, content=body, headers=headers)
                if answer.status_code != 202:
                    raise RuntimeError(f"warm-up answered {answer.status_code}: {answer.text}")
        tally = Tally()
        started = time.perf_counter()
        await fire_raw(inbox, list(calibration), CALIBRATION_CONCURRENCY, tally)
        sustained = tally.codes.get("202", 0) / (time.perf_counter() - started)
        outcomes, offered = await open_loop(inbox, flood, factor * sustained, PREOPEN)
        accepted = {o.activity_id for o in outcomes if o.code == "202"}
        drained = await drain(database, accepted, DRAIN_TIMEOUT_S)
    finally:
        process.terminate()
        await asyncio.to_thread(process.wait, 30)
        remote.server.should_exit = True
        await remote_task
    rows = inbox_rows(database)
    refused = [o for o in outcomes if o.code in ("429", "503")]
    codes = dict(Counter(o.code for o in outcomes))
    refusal_times = sorted(o.seconds for o in refused)
    return {
        "actors": actors, "factor": factor, "calibration": dict(tally.codes),
        "sustained_per_s": round(sustained, 1), "offered_per_s": round(offered, 1),
        "offered_factor": round(offered / sustained, 1), "burst": burst, "codes": codes,
        "accepted": len(accepted),
        "refusals_without_retry_after": sum(1 for o in refused if not o.retry_after),
        "other_answers": sum(v for k, v in codes.items() if k not in ("202", "429", "503")),
        "lost": len(accepted - rows.keys()),
        "stored_refused": sum(1 for o in refused if o.activity_id in rows),
        "refusal_p50_ms": percentile(refusal_times, 0.5) if refused else None,
        "refusal_p99_ms": percentile(refusal_times, 0.99) if refused else None,
        "handled_within_s": drained,
        "accepted_by_status": dict(Counter(rows.get(a, "lost") for a in accepted)),
    }  # fmt: skip


def bench(factor: float = 10, calibrate: int = 1000, burst: int = 10_000,
          actors: int = 20) -> dict[str, Any]:  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="dreamloom-overload-") as tmp:
        directory = Path(tmp)
        port = free_port()
        prepare_instance(directory, port)
        with asyncio.Runner(loop_factory=loop_factory()) as runner:
            return runner.run(run_overload(directory, port, factor, calibrate, burst, actors))
