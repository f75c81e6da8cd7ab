"""The inbox worker (instance/inbound/worker.py) refuses suspended actors itself: the inbox
route checks only the signer and the hosts it can read before verification."""

from __future__ import annotations

import pytest

from activitypub.objects import Activity
from instance.errors import Skip
from instance.inbound.worker import dereference
from instance.moderation import domains
from instance.storage.models import Account
from tests.instance.hardening.test_domain_blocks import remote_account
from tests.instance.loopback_peer import HttpActor


async def test_a_forwarded_or_list_actor_activity_of_a_suspended_actor_is_skipped(
    runtime,
) -> None:
    """An activity whose actor is a remote account an admin suspended (it arrived signed by
    another, allowed actor, e.g. forwarded) or an account of a suspended domain (named as a
    list, which the inbox route's host check does not read) is skipped, not handled; the
    same activity of an allowed actor is handled."""
    fine = await remote_account(runtime, HttpActor("fine", "fine.example", "", ""))
    bad = await remote_account(runtime, HttpActor("bad", "fine.example", "", ""))
    gone = await remote_account(runtime, HttpActor("gone", "gone.example", "", ""))
    async with runtime.session() as s:
        (await s.get_one(Account, bad.id)).suspended_at = runtime.now()
    await domains.block_domain(runtime, "gone.example")

    def like(actor: object) -> Activity:
        return Activity({"id": "https://x.example/l", "type": "Like", "actor": actor,
                         "object": "https://elsewhere.example/p/1"})  # fmt: skip

    found, _obj = await dereference(runtime, like(fine.uri))
    assert found.id == fine.id
    for actor in (bad.uri, [gone.uri]):
        with pytest.raises(Skip):
            await dereference(runtime, like(actor))
