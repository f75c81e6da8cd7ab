"""Deleting a local account (instance/content/account_delete.py) while a domain is suspended:
the Delete is queued for every known server except the suspended ones, so its deliveries
can all end and the key is dropped."""

from __future__ import annotations

from sqlalchemy import select, update

from instance.content.account_delete import delete_account, forget_spent_keys
from instance.moderation import domains
from instance.storage.models import Account, Delivery
from tests.instance.hardening.test_domain_blocks import create_account_named, remote_account
from tests.instance.loopback_peer import HttpActor


async def test_a_deleted_accounts_key_is_dropped_although_a_known_domain_is_suspended(
    runtime,
) -> None:
    """With accounts known on an allowed and on a suspended domain, deleting a local
    account queues its Delete to the allowed server only (no row for the suspended one, which
    would wait forever); once that delivery ends, the private key is dropped."""
    me = await create_account_named(runtime, "painter")
    await remote_account(runtime, HttpActor("ok", "allowed.example", "", ""))
    await remote_account(runtime, HttpActor("bad", "blocked.example", "", ""))
    await domains.block_domain(runtime, "blocked.example")
    done = await delete_account(runtime, me)
    async with runtime.sessions() as s:
        hosts = set(
            await s.scalars(select(Delivery.host).where(Delivery.activity_id == done.activity_id))
        )
    assert hosts == {"allowed.example"}
    async with runtime.session() as s:
        await s.execute(update(Delivery).values(status="done"))
    assert await forget_spent_keys(runtime) == 1
    async with runtime.sessions() as s:
        row = await s.get_one(Account, me.id)
        assert row.private_key_pem is None and row.public_key_pem
