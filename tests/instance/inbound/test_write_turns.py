"""SQLite's one write lock, shared by turns (instance/inbound/write_turns.py): while the web
has a batch of 202s waiting or being written, the inbox worker commits after its current
item and waits before its next transaction, but never for longer than PATIENCE_S; on
PostgreSQL there is nothing to share."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import event, select

from instance.inbound import worker as inbox_worker
from instance.inbound import write_turns
from instance.inbound.worker import InboxWorker
from instance.inbound.write_turns import WriteTurns, turns_path
from instance.storage.models import InboxItem
from tests.instance.inbox_helpers import post

pytestmark = pytest.mark.sqlite_only("SQLite's write lock")


def test_only_an_sqlite_file_has_turns(tmp_path) -> None:
    assert turns_path(f"sqlite+aiosqlite:///{tmp_path}/d.db") == tmp_path / "d.db.turns"
    assert turns_path("sqlite+aiosqlite:///:memory:") is None
    assert turns_path("postgresql+asyncpg://u@127.0.0.1:5432/db") is None


async def test_a_waiting_web_batch_is_seen_by_another_process_and_let_go(runtime) -> None:
    """Two WriteTurns on one database open the file each, as the web and inbox processes do."""
    web, worker = WriteTurns(runtime), WriteTurns(runtime)
    try:
        assert not worker.wanted()
        async with web.writing():
            assert worker.wanted()
            began = time.monotonic()
            await worker.wait_turn()  # the web keeps the turn: the worker goes after patience
            assert write_turns.PATIENCE_S <= time.monotonic() - began < 1.0
        assert not worker.wanted()
        async with web.writing(), WriteTurns(runtime).writing():  # two web processes share it
            assert worker.wanted()
        assert not worker.wanted()
    finally:
        await web.aclose()
        await worker.aclose()


async def test_the_worker_commits_after_each_item_while_the_web_writes(
    runtime, client, fedi, monkeypatch
) -> None:
    """With the web holding its turn the whole time, a step of five Notes still ends (the
    worker's patience), each Note in a transaction of its own instead of one group."""
    monkeypatch.setattr(inbox_worker, "GROUP_HOLD_S", 60.0)
    alice = fedi.actor("alice")
    for n in range(5):
        activity = alice.create(alice.note(f"<p>n{n}</p>"))
        assert (await post(client, runtime, alice, activity)).status_code == 202
    commits: list[int] = []
    event.listen(runtime.engine.sync_engine, "commit", lambda _conn: commits.append(1))
    web = WriteTurns(runtime)
    try:
        async with web.writing():
            handled = await asyncio.wait_for(InboxWorker(runtime).run_once(), 10)
    finally:
        await web.aclose()
    assert handled == 5
    assert len(commits) == 1 + 5  # the claim, then one per item
    async with runtime.sessions() as s:
        assert list(await s.scalars(select(InboxItem.status))) == ["done"] * 5
