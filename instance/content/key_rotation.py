"""Rotating a local account's RSA key: a new key pair under the same keyId, and an actor
`Update` to the followers signed with the new key.

Receivers that cached the old key fail to verify the new signature, fetch the actor again
(as Mastodon and Dreamloom do on a signature failure) and find the new key there; follows
keep working because nothing but the key changed.
"""

from __future__ import annotations

import asyncio

from activitypub.keys import generate_rsa_keypair
from instance.content.profiles import federate_actor
from instance.errors import UserError
from instance.runtime import Runtime
from instance.storage.models import Account
from instance.urls import INSTANCE_ACTOR_USERNAME


async def rotate_key(rt: Runtime, account: Account) -> str:
    """Give `account` a fresh key pair (same keyId) and federate the actor; the keyId."""
    if not account.local or account.username == INSTANCE_ACTOR_USERNAME:
        raise UserError("only a local account's key can be rotated here")
    private_pem, public_pem = await asyncio.to_thread(generate_rsa_keypair)
    async with rt.session() as session:
        row = await session.get(Account, account.id)
        if row is None or row.deleted_at is not None:
            raise UserError(f"the account {account.username!r} is deleted")
        row.private_key_pem, row.public_key_pem = private_pem, public_pem
        await federate_actor(session, rt, row)
        return row.key_id or ""
