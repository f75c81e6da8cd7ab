"""FEP-044f: answering QuoteRequests for our posts, stamps, revocation."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from instance.content.posting import Draft, publish
from instance.content.quotes import answer_quote_request, revoke
from instance.storage.models import Account, OutboundActivity, QuoteAuthorization
from tests.instance_fixtures import AP_ACCEPT


@pytest.fixture
async def setup(runtime, new_account):
    bot = await new_account("painter", ai=True)
    async with runtime.session() as s:
        bot = await s.get(Account, bot.id)
        post = await publish(s, runtime, bot, Draft(text="harbour"))
        private = await publish(s, runtime, bot, Draft(text="mine", visibility="followers"))
        remote = Account(username="rem", username_key="rem", domain="remote.example", local=False,
                         uri="https://remote.example/users/rem",
                         inbox_uri="https://remote.example/users/rem/inbox")  # fmt: skip
        s.add(remote)
    return bot, post, private, remote


def request_for(target: str, instrument: str = "https://remote.example/notes/1") -> dict:
    return {"id": "https://remote.example/qr/1", "type": "QuoteRequest",
            "actor": "https://remote.example/users/rem", "object": target,
            "instrument": instrument}  # fmt: skip


async def sent(runtime, kind):
    async with runtime.sessions() as s:
        rows = await s.scalars(select(OutboundActivity).where(OutboundActivity.kind == kind))
        return [json.loads(r.body) for r in rows]


async def test_public_post_quote_is_accepted_with_a_stamp(runtime, client, setup) -> None:
    bot, post, _, remote = setup
    async with runtime.session() as s:
        assert (
            await answer_quote_request(s, runtime, request_for(post.uri), remote) == "accepted"
        )
    (accept,) = await sent(runtime, "Accept")
    assert accept["actor"] == bot.uri
    assert accept["object"]["id"] == "https://remote.example/qr/1"
    stamp_url = accept["result"]
    assert stamp_url.startswith(bot.uri + "/quote_authorizations/")  # on our host
    stamp = (await client.get(stamp_url, headers=AP_ACCEPT)).json()
    assert stamp["type"] == "QuoteAuthorization"
    assert stamp["attributedTo"] == bot.uri
    assert stamp["interactingObject"] == "https://remote.example/notes/1"  # named, not embedded
    assert stamp["interactionTarget"] == post.uri


async def test_duplicate_request_reuses_the_stamp(runtime, setup) -> None:
    _, post, _, remote = setup
    for _ in range(2):
        async with runtime.session() as s:
            await answer_quote_request(s, runtime, request_for(post.uri), remote)
    async with runtime.sessions() as s:
        assert len(list(await s.scalars(select(QuoteAuthorization)))) == 1


@pytest.mark.parametrize("case", ["private", "foreign_instrument"])
async def test_refused_requests_get_reject(runtime, setup, case) -> None:
    _, post, private, remote = setup
    request = (
        request_for(private.uri) if case == "private"
        else request_for(post.uri, instrument="https://elsewhere.example/notes/9")
    )  # fmt: skip
    async with runtime.session() as s:
        assert await answer_quote_request(s, runtime, request, remote) == "rejected"
    assert [r["type"] for r in await sent(runtime, "Reject")] == ["Reject"]


async def test_revoke_deletes_the_stamp(runtime, client, setup) -> None:
    _, post, _, remote = setup
    async with runtime.session() as s:
        await answer_quote_request(s, runtime, request_for(post.uri), remote)
    async with runtime.session() as s:
        stamp = await s.scalar(select(QuoteAuthorization))
        await revoke(s, runtime, stamp)
    (accept,) = await sent(runtime, "Accept")
    assert (await client.get(accept["result"], headers=AP_ACCEPT)).status_code == 404
    deletes = await sent(runtime, "Delete")
    assert deletes[-1]["object"] == accept["result"]
