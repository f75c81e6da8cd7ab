"""Wake-ups between processes (instance/wakeups.py): a process that queues work tells the
processes draining that queue, on SQLite through UDP on 127.0.0.1, on PostgreSQL through
LISTEN/NOTIFY. A wake-up only shortens a worker's sleep; these tests check that it arrives,
from another process, and that nothing is left behind."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from instance.settings import Settings
from instance.wakeups import LocalWakeups, PostgresWakeups, wakeups_for
from tests.instance_fixtures import make_settings

NOTIFY_FROM_CHILD = """
import asyncio, sys
from instance.wakeups import LocalWakeups, PostgresWakeups
from pathlib import Path

async def main():
    kind, where, queue = sys.argv[1:4]
    w = LocalWakeups(Path(where)) if kind == "local" else PostgresWakeups(where)
    w.notify(queue)
    w.notify(queue)  # the same turn: sent once
    await asyncio.sleep(0.5)
    await w.aclose()

asyncio.run(main())
"""


def notify_from_another_process(kind: str, where: str, queue: str) -> None:
    subprocess.run([sys.executable, "-c", NOTIFY_FROM_CHILD, kind, where, queue],
                   check=True, timeout=60)  # fmt: skip


async def heard_within(heard: list[str], queue: str, seconds: float = 10.0) -> bool:
    for _ in range(int(seconds / 0.05)):
        if queue in heard:
            return True
        await asyncio.sleep(0.05)
    return False


async def test_sqlite_wake_up_reaches_the_listening_process(tmp_path: Path) -> None:
    """One host, SQLite: a notify from another process reaches the listener of that queue,
    and only that queue's listener."""
    directory = tmp_path / "wake"
    listener = LocalWakeups(directory)
    heard: list[str] = []
    await listener.listen(["inbox"], heard.append)
    try:
        assert (directory / f"inbox.{os.getpid()}").read_text().isdigit()
        await asyncio.to_thread(notify_from_another_process, "local", str(directory), "delivery")
        notify_from_another_process("local", str(directory), "inbox")
        assert await heard_within(heard, "inbox")
        assert "delivery" not in heard  # not a queue this process drains
    finally:
        await listener.aclose()
    assert not list(directory.iterdir())  # a clean stop leaves no registration behind


async def test_sqlite_registrations_of_dead_processes_are_removed(tmp_path: Path) -> None:
    """A process that died (SIGKILL) leaves its port file; the next listener removes it, so
    notifiers do not keep sending to a port someone else may own now."""
    directory = tmp_path / "wake"
    directory.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    (directory / f"inbox.{dead}").write_text("9")
    listener = LocalWakeups(directory)
    await listener.listen(["inbox"], lambda _q: None)
    try:
        assert not (directory / f"inbox.{dead}").exists()
        assert (directory / f"inbox.{os.getpid()}").exists()
    finally:
        await listener.aclose()


async def test_notify_without_listeners_or_loop_is_harmless(tmp_path: Path) -> None:
    """Nobody listening (a web-only instance, tests) or no running loop: notify does nothing
    and raises nothing."""
    wake = LocalWakeups(tmp_path / "nowhere")
    wake.notify("inbox")
    await asyncio.sleep(0)
    await wake.aclose()
    LocalWakeups(tmp_path / "nowhere").notify("inbox")  # no loop: sent at once, to nobody


def test_the_database_picks_the_mechanism(tmp_path: Path) -> None:
    """SQLite instances wake through their data directory; PostgreSQL ones through the
    database, so processes on other hosts hear them too."""
    local = wakeups_for(make_settings(tmp_path / "a", database={"url": ""}))  # its SQLite file
    assert isinstance(local, LocalWakeups)
    pg: Settings = make_settings(
        tmp_path / "b", database={"url": "postgresql+asyncpg://u:secret@127.0.0.1:5/db"}
    )
    remote = wakeups_for(pg)
    assert isinstance(remote, PostgresWakeups)
    assert remote.dsn == "postgresql://u:secret@127.0.0.1:5/db"


@pytest.mark.postgres
async def test_postgres_wake_up_reaches_a_listener_in_another_process(pg_database: str) -> None:
    """PostgreSQL: LISTEN/NOTIFY carries the queue's name from one process to another."""
    dsn = pg_database.replace("postgresql+asyncpg://", "postgresql://")
    listener = PostgresWakeups(dsn)
    heard: list[str] = []
    await listener.listen(["generation"], heard.append)
    try:
        heard.clear()  # listen() wakes its own queues once, for rows queued before it
        await asyncio.to_thread(notify_from_another_process, "pg", dsn, "generation")
        assert await heard_within(heard, "generation")
        assert heard.count("generation") == 1  # two notifies in one turn: one wake-up
    finally:
        await listener.aclose()
