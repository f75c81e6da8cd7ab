"""The inbox's domain gate (instance/routes/inbox.py `claimed_hosts`) reads the actor in
every form the rest of the inbox accepts."""

from __future__ import annotations

from instance.moderation import domains
from tests.instance.hardening.test_domain_blocks import (
    create_account_named,
    signed_post,
)
from tests.instance.loopback_peer import HttpActor, loopback_peer


async def test_an_actor_given_as_a_list_is_gated_like_a_string(runtime, live) -> None:
    """An activity whose `actor` is a list naming an account of a suspended domain (admit()
    takes the first id of a list), signed with a key on another host, gets the 403 before
    any key fetch, as it does with the actor as a string or object."""
    with loopback_peer() as peer:
        await create_account_named(runtime, "painter")
        bob = peer.actor("bob")
        await domains.block_domain(runtime, "localhost")
        other = HttpActor("eve", "127.0.0.1:1", bob.private_pem, bob.public_pem)
        for form in ([bob.uri], {"id": bob.uri}, bob.uri):
            activity = other.activity("Follow", f"{live}/users/painter")
            activity["actor"] = form
            answer = await signed_post(live, other, activity)
            assert answer.status_code == 403, (form, answer.text)
        assert peer.gets() == []
