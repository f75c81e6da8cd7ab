"""Crash safety of fan-out: `dreamloom serve` runs as a separate process and fans one post
out to 500 followers on 50 servers; its delivery process is SIGKILLed after ~200 POSTs, the
supervisor starts it again, and every inbox still gets the activity, with duplicates no more
than the concurrency. The
instance is on the suite's database (an SQLite file, or its own PostgreSQL database)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import tomllib
from collections import Counter
from pathlib import Path

import pytest
import tomli_w
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from instance.bench.fanout import free_port, loopback_hosts, serve_inboxes
from instance.outbound.delivery import LEASE
from instance.setup import write_config
from instance.storage.db import make_engine
from tests.instance.delivery_helpers import add_follower, post_to_followers
from tests.instance_fixtures import suite_database_url

pytestmark = pytest.mark.slow

FOLLOWERS, SERVERS, KILL_AFTER, CONCURRENCY = 500, 50, 200, 8


def serve(directory: Path, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DREAMLOOM_")}
    with (directory / "serve.log").open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-c", "from instance.cli import main; main()", "serve",
             "--dir", str(directory), "--port", str(port), "--workers"],
            env=env, stdout=subprocess.DEVNULL, stderr=log,
        )  # fmt: skip


def delivery_pids(supervisor: int) -> list[int]:
    """The supervisor's delivery processes: its children whose command line is
    `... worker --role delivery ...` (found in /proc, whatever the database)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            ppid = int((proc / "stat").read_text().rpartition(")")[2].split()[1])
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        if ppid == supervisor and b"worker" in argv and b"delivery" in argv:
            pids.append(int(proc.name))
    return pids


def wake_up_pids(directory: Path) -> list[int]:
    """The processes with a wake-up port registered (instance/wakeups.py; SQLite only: on
    PostgreSQL wake-ups are LISTEN/NOTIFY and there are no files)."""
    wake = directory / "data" / "run" / "wake"
    return [int(p.name.split(".")[1]) for p in wake.glob("delivery.*")]


async def statuses(engine: AsyncEngine) -> Counter[str]:
    """The deliveries by status, read from outside the serving process."""
    async with engine.connect() as conn:
        rows = await conn.execute(text("SELECT status, count(*) FROM deliveries GROUP BY status"))
        return Counter({status: n for status, n in rows.all()})


async def test_sigkill_mid_fan_out_loses_nothing(tmp_path: Path) -> None:
    from instance.accounts import NewAccount, create_account
    from instance.runtime import open_runtime
    from instance.settings import load_settings
    from instance.setup import ensure_instance

    directory = tmp_path / "instance"
    port = free_port("127.0.0.1")
    write_config(directory, f"127.0.0.1:{port}", "http", allow_private_addresses=True)
    config = tomllib.loads((directory / "config.toml").read_text())
    config["federation"]["delivery_concurrency"] = CONCURRENCY
    if database_url := suite_database_url():
        config["database"] = {"url": database_url}
    (directory / "config.toml").write_text(tomli_w.dumps(config))

    hosts = loopback_hosts(SERVERS, first=9)
    inbox_port = free_port(hosts[0])
    received: Counter[str] = Counter()
    process: subprocess.Popen[bytes] | None = None

    killed: list[int] = []

    async def answer(host: str, path: str, body: bytes) -> int:
        received[f"{host}{path}"] += 1
        if sum(received.values()) == KILL_AFTER and process is not None:
            killed.extend(delivery_pids(process.pid))
            for pid in killed:  # mid fan-out, with POSTs in flight
                os.kill(pid, signal.SIGKILL)
        await asyncio.sleep(0.02)  # slow enough for the kill to land mid-way
        return 202

    server = await serve_inboxes(hosts, inbox_port, answer)
    settings = load_settings(directory / "config.toml", env={})
    rt = await open_runtime(settings)
    engine = make_engine(settings.database_url)
    try:
        await ensure_instance(rt)
        async with rt.session() as session:
            bot = await create_account(session, rt.urls, NewAccount("painter", ai=True))
        for n in range(FOLLOWERS):
            host = f"{hosts[n % SERVERS]}:{inbox_port}"
            await add_follower(rt, bot, f"u{n}", host, shared=False, scheme="http")
        await post_to_followers(rt, bot)
    finally:
        await rt.aclose()
    assert await statuses(engine) == {"queued": FOLLOWERS}

    process = serve(directory, port)
    try:
        deadline = time.monotonic() + 60
        while not killed:
            assert process.poll() is None, (directory / "serve.log").read_text()
            assert time.monotonic() < deadline, "the instance never got to 200 POSTs"
            await asyncio.sleep(0.05)
        before = await statuses(engine)
        assert 0 < before["done"] < FOLLOWERS, before  # killed mid fan-out
        assert before["running"] > 0, before  # with leases left behind by the dead process

        # the supervisor starts the delivery role again; expired leases are taken again
        deadline = time.monotonic() + LEASE.total_seconds() + 60
        while (now := await statuses(engine))["done"] < FOLLOWERS:
            assert process.poll() is None, (directory / "serve.log").read_text()
            assert time.monotonic() < deadline, now
            await asyncio.sleep(0.2)
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(40)
        server.close()
        await engine.dispose()

    log = (directory / "serve.log").read_text()
    assert f"delivery (pid {killed[0]}) exited with code -9" in log, log
    assert set(wake_up_pids(directory)).isdisjoint(killed)  # its wake-up file went with it

    assert len(received) == FOLLOWERS  # every inbox got the activity...
    duplicates = sum(received.values()) - FOLLOWERS
    assert duplicates <= CONCURRENCY, received.most_common(3)  # ...at most once more
