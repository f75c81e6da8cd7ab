"""Closing the inbox writer while it writes a batch.

The writer keeps one connection of its own (SQLite). Closing it while a batch is being
written must first finish that batch (its activities were accepted: their 202s wait for the
commit) and only then close the connection; disposing of the pool under a batch left the
connection to the garbage collector, unclosed (a ResourceWarning, which the suite treats as
an error, wherever the collector happened to run).
"""

from __future__ import annotations

import asyncio
import gc
import json

from sqlalchemy import func, select

from instance.inbound.writer import InboxWriter
from instance.storage.models import InboxItem


async def test_closing_mid_batch_writes_the_batch_and_closes_the_connection(runtime):
    writer = InboxWriter(runtime)
    now = runtime.now()
    rows = [{
        "activity_uri": f"https://a.example/activities/{i}", "actor_uri": "https://a.example/u",
        "body": json.dumps({"type": "Like"}), "signer_key_id": "https://a.example/u#key",
        "status": "queued", "attempts": 0, "run_at": now, "created_at": now,
    } for i in range(20)]  # fmt: skip
    writes = [asyncio.create_task(writer.write(row)) for row in rows]
    await asyncio.sleep(0)  # the drain has begun its batch
    await writer.aclose()
    await asyncio.gather(*writes)  # every accepted row was written, none refused
    gc.collect()  # an unclosed connection would warn here
    async with runtime.session() as session:
        assert await session.scalar(select(func.count()).select_from(InboxItem)) == 20
