"""Review finding 3 (docs/security.md): no actor can claim another server's key id.

Mastodon key ids are predictable (`https://victim/users/carol#main-key`), so an attacker's
actor document could list one as its own; if that listing were stored, Carol's real
signatures would fail for good, across restarts. A key belongs to an actor only when its id
lives on the actor's own server; a stored row that breaks that rule is treated as absent and
the key fetched again from its server, which then takes the row back.
"""

from __future__ import annotations

from sqlalchemy import select

from instance.inbound.keyring import KeyRing
from instance.storage.models import Account, RemoteKey
from tests.instance.fediverse import keypair
from tests.instance.inbox_helpers import post


async def test_a_squatted_key_id_is_not_stored_and_its_real_owner_still_verifies(
    client, runtime, fedi
) -> None:
    carol = fedi.actor("carol", "victim.example", key=1)
    mallory = fedi.actor("mallory", "evil.example", key=2)
    squat = {"id": carol.key_id, "owner": mallory.uri, "publicKeyPem": keypair(2)[1]}
    own = {"id": mallory.key_id, "owner": mallory.uri, "publicKeyPem": mallory.public_pem}
    fedi.serve(mallory.uri, mallory.document(publicKey=[squat, own]))
    assert (await post(client, runtime, mallory, mallory.create())).status_code == 202
    async with runtime.sessions() as s:
        assert await s.get(RemoteKey, carol.key_id) is None
        stored = await s.scalar(select(Account).where(Account.uri == mallory.uri))
        assert stored.key_id == mallory.key_id
    for _ in range(2):  # before and after a restart of the key cache
        assert (await post(client, runtime, carol, carol.create())).status_code == 202
        runtime.forget_service(KeyRing)


async def test_a_poisoned_row_from_before_is_ignored_and_taken_back(client, runtime, fedi) -> None:
    carol = fedi.actor("carol", "victim.example", key=1)
    async with runtime.session() as s:
        s.add(Account(username="mallory", username_key="mallory", domain="evil.example",
                      local=False, uri="https://evil.example/users/mallory", key_id=carol.key_id,
                      public_key_pem=keypair(2)[1]))  # fmt: skip
        s.add(RemoteKey(key_id=carol.key_id, owner_uri="https://evil.example/users/mallory",
                        public_key_pem=keypair(2)[1]))  # fmt: skip
    assert (await post(client, runtime, carol, carol.create())).status_code == 202
    async with runtime.sessions() as s:
        row = await s.get(RemoteKey, carol.key_id)
        assert (row.owner_uri, row.public_key_pem) == (carol.uri, carol.public_pem)
        holders = list(await s.scalars(select(Account.uri).where(Account.key_id == carol.key_id)))
    assert holders == [carol.uri]
