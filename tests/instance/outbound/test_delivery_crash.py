"""Crash safety of fan-out: `dreamloom serve` runs as a separate process,
fans one post out to 500 followers on 50 servers, is SIGKILLed after ~200 POSTs, restarted,
and every inbox still gets the activity, with duplicates no more than the concurrency."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
import tomllib
from collections import Counter
from pathlib import Path

import pytest
import tomli_w

from instance.bench.fanout import free_port, loopback_hosts, serve_inboxes
from instance.outbound.delivery import LEASE
from instance.setup import write_config
from tests.instance.delivery_helpers import add_follower, post_to_followers

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


def statuses(directory: Path) -> Counter[str]:
    with sqlite3.connect(directory / "data" / "dreamloom.db", timeout=30) as db:
        return Counter(dict(db.execute("SELECT status, count(*) FROM deliveries GROUP BY status")))


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
    (directory / "config.toml").write_text(tomli_w.dumps(config))

    hosts = loopback_hosts(SERVERS, first=9)
    inbox_port = free_port(hosts[0])
    received: Counter[str] = Counter()
    process: subprocess.Popen[bytes] | None = None

    async def answer(host: str, path: str, body: bytes) -> int:
        received[f"{host}{path}"] += 1
        if sum(received.values()) == KILL_AFTER and process is not None:
            process.send_signal(signal.SIGKILL)  # mid fan-out, with POSTs in flight
        await asyncio.sleep(0.02)  # slow enough for the kill to land mid-way
        return 202

    server = await serve_inboxes(hosts, inbox_port, answer)
    rt = await open_runtime(load_settings(directory / "config.toml", env={}))
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
    assert statuses(directory) == {"queued": FOLLOWERS}

    process = serve(directory, port)
    try:
        deadline = time.monotonic() + 60
        while process.poll() is None:
            assert time.monotonic() < deadline, "the instance never got to 200 POSTs"
            await asyncio.sleep(0.05)
        assert process.returncode == -signal.SIGKILL
        before = statuses(directory)
        assert 0 < before["done"] < FOLLOWERS, before  # killed mid fan-out
        assert before["running"] > 0, before  # with leases left behind by the dead process

        process = serve(directory, port)  # restart: expired leases are taken again
        deadline = time.monotonic() + LEASE.total_seconds() + 60
        while statuses(directory)["done"] < FOLLOWERS:
            assert process.poll() is None, (directory / "serve.log").read_text()
            assert time.monotonic() < deadline, statuses(directory)
            await asyncio.sleep(0.2)
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(10)
        server.close()

    assert len(received) == FOLLOWERS  # every inbox got the activity...
    duplicates = sum(received.values()) - FOLLOWERS
    assert duplicates <= CONCURRENCY, received.most_common(3)  # ...at most once more
