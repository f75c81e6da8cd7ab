"""A mention flood through the inbox worker: an asker who mentions an AI account 40 times
in a row gets at most QUOTA_PER_ACCOUNT pictures queued and one refusal reply; the other
asks are dropped without a reply (instance/generation/asks.py), however the worker's steps
cut the flood into batches."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from instance.generation.asks import QUOTA_PER_ACCOUNT
from instance.inbound.worker import InboxWorker
from instance.storage.models import Ask, GenerationJob, InboxItem, OutboundActivity
from tests.instance.generation_fixtures import gen_settings, tiny_cache  # noqa: F401
from tests.instance.inbox_helpers import post

ASKS = 40


@pytest.fixture
def settings(gen_settings):  # noqa: F811
    return gen_settings(max_queue=4 * QUOTA_PER_ACCOUNT)  # the per-asker quota binds first


async def test_forty_mentions_make_five_jobs_one_refusal_and_silence(
    runtime, client, fedi, new_account
) -> None:
    bot = await new_account("painter", ai=True)
    asker = fedi.actor("eager", "eager.example")
    for n in range(ASKS):
        note = asker.note(f"<p>@painter a lighthouse, take {n}</p>", cc=[bot.uri],
                          tag=[{"type": "Mention", "href": bot.uri}])  # fmt: skip
        assert (await post(client, runtime, asker, asker.create(note))).status_code == 202
    worker = InboxWorker(runtime)
    while await worker.run_once():
        pass
    async with runtime.sessions() as s:
        statuses = list(await s.scalars(select(InboxItem.status)))
        outcomes = list(await s.scalars(select(Ask.outcome).order_by(Ask.id)))
        jobs = await s.scalar(select(func.count()).select_from(GenerationJob))
        creates = await s.scalars(
            select(OutboundActivity.body).where(OutboundActivity.kind == "Create")
        )
        replies = [b for b in creates if json.loads(b)["object"].get("inReplyTo")]
    assert statuses == ["done"] * ASKS
    assert outcomes == (["queued"] * QUOTA_PER_ACCOUNT + ["refused"]
                        + ["dropped"] * (ASKS - QUOTA_PER_ACCOUNT - 1))  # fmt: skip
    assert jobs == QUOTA_PER_ACCOUNT
    assert len(replies) == 1  # the refusal; the pictures are replies once they are made
