"""A suspended local account's actor stays suspended on other servers
(instance/content/profiles.py `federate_actor`)."""

from __future__ import annotations

import json

from sqlalchemy import select

from instance.content import suspensions
from instance.content.key_rotation import rotate_key
from instance.storage.models import OutboundActivity
from tests.instance.hardening.test_domain_blocks import create_account_named


async def test_rotating_a_suspended_accounts_key_federates_no_full_actor(runtime) -> None:
    """While an account is suspended, rotating its key (or any other actor change: a new
    avatar from a generation job, `account set`) queues no Update of the full actor, which
    would tell every follower it is no longer suspended; unsuspending sends the full one."""
    me = await create_account_named(runtime, "painter")
    assert await suspensions.suspend(runtime, me)
    await rotate_key(runtime, me)

    async def updates() -> list[dict[str, object]]:
        async with runtime.sessions() as s:
            bodies = await s.scalars(
                select(OutboundActivity.body)
                .where(OutboundActivity.account_id == me.id, OutboundActivity.kind == "Update")
                .order_by(OutboundActivity.id)
            )
            return [json.loads(b)["object"] for b in bodies]

    sent = await updates()
    assert sent and all(actor.get("suspended") is True for actor in sent), sent
    assert await suspensions.unsuspend(runtime, me)
    assert (await updates())[-1].get("suspended") is None
