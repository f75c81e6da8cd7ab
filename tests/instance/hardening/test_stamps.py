"""Review finding 20 (docs/security.md): a quote stamp answers for its own post only.

A QuoteAuthorization issued for one of our posts was handed out again when the same note
asked to quote another one. A note quotes one post: a request naming another post with a
note that already has a stamp is rejected, and no stamp for one post is ever served as
another's.
"""

from __future__ import annotations

import json

from sqlalchemy import select

from instance.content.posting import Draft, publish
from instance.content.quotes import answer_quote_request
from instance.storage.models import Account, OutboundActivity, QuoteAuthorization


async def test_a_stamp_is_never_returned_for_another_post(runtime, client, new_account) -> None:
    bot = await new_account("painter", ai=True)
    async with runtime.session() as s:
        bot = await s.get(Account, bot.id)
        first = await publish(s, runtime, bot, Draft(text="first"))
        second = await publish(s, runtime, bot, Draft(text="second"))
        remote = Account(username="rem", username_key="rem", domain="remote.example",
                         local=False, uri="https://remote.example/users/rem",
                         inbox_uri="https://remote.example/users/rem/inbox")  # fmt: skip
        s.add(remote)
    note = "https://remote.example/notes/1"

    def request(target: str, n: int) -> dict:
        return {"id": f"https://remote.example/qr/{n}", "type": "QuoteRequest",
                "actor": remote.uri, "object": target, "instrument": note}  # fmt: skip

    async with runtime.session() as s:
        assert await answer_quote_request(s, runtime, request(first.uri, 1), remote) == "accepted"
        assert await answer_quote_request(s, runtime, request(second.uri, 2), remote) == "rejected"
    async with runtime.sessions() as s:
        (stamp,) = list(await s.scalars(select(QuoteAuthorization)))
        answers = {json.loads(r.body)["type"]: json.loads(r.body)
                   for r in await s.scalars(select(OutboundActivity))}  # fmt: skip
    assert stamp.post_id == first.id
    assert "result" not in answers["Reject"]
    served = await client.get(answers["Accept"]["result"],
                              headers={"Accept": "application/activity+json"})  # fmt: skip
    assert served.json()["interactionTarget"] == first.uri
