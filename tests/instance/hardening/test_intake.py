"""Review findings 4 and 9 (docs/security.md): what one request can do to others' activities.

- Finding 4: an activity id with an unpaired surrogate, a NUL or more characters than the
  column holds passed admission and made the grouped INSERT fail, so every honest request
  written in the same batch got a 500. Such ids are refused with 400 before any write, and
  a row the database still refuses fails alone: the rest of its batch is written.
- Finding 9: an activity id is bound to its actor's server, and accepted once per (signer,
  id): nobody can take a victim's predictable future id (Mastodon's `<actor>#delete`) so
  that the victim's real activity would be dropped as a duplicate; not a neighbour on the
  victim's server, and not a third server "forwarding" a Create in the victim's name with
  that id (found by the red-team pass after the fix).
"""

from __future__ import annotations

import asyncio
import json

import pytest
from sqlalchemy import select

from instance.inbound.intake import Intake
from instance.inbound.worker import InboxWorker
from instance.storage.models import Account, InboxItem
from tests.instance.inbox_helpers import count, inbox_rows, post


@pytest.fixture
def alice(fedi):
    return fedi.actor("alice")


@pytest.mark.parametrize(
    "bad_id",
    ["https://remote.example/users/alice/activities/\ud800", "https://remote.example/a\x00b",
     "https://remote.example/" + "x" * 2100],
    ids=["lone-surrogate", "nul", "too-long"],
)
async def test_an_unstorable_id_is_refused_and_honest_neighbours_are_written(
    client, runtime, alice, bad_id
) -> None:
    honest = [alice.create() for _ in range(20)]
    bad = {**alice.create(), "id": bad_id}
    body = json.dumps(bad).encode()  # json escapes the surrogate: the request is valid JSON

    answers = await asyncio.gather(
        *(post(client, runtime, alice, a) for a in honest[:10]),
        post(client, runtime, alice, bad, body=body),
        *(post(client, runtime, alice, a) for a in honest[10:]),
    )
    codes = [a.status_code for a in answers]
    assert codes[10] == 400 and codes[:10] + codes[11:] == [202] * 20
    assert sorted(r.activity_uri for r in await inbox_rows(runtime)) == sorted(
        a["id"] for a in honest
    )


async def test_a_row_the_database_refuses_fails_alone(runtime) -> None:
    writer = runtime.service(Intake).writer
    now = runtime.now()

    def row(n: int, **over):
        return {"activity_uri": f"https://r.example/a/{n}", "actor_uri": "https://r.example/u",
                "signer_key_id": None, "body": "{}", "status": "queued", "attempts": 0,
                "run_at": now, "created_at": now, **over}  # fmt: skip

    results = await asyncio.gather(
        *(writer.write(row(n)) for n in range(5)),
        writer.write(row(99, body=None)),  # NOT NULL: the database refuses this one
        *(writer.write(row(n)) for n in range(5, 10)),
        return_exceptions=True,
    )
    assert [type(r).__name__ for r in results] == ["NoneType"] * 5 + ["Refused"] + ["NoneType"] * 5
    assert await count(runtime, InboxItem) == 10


async def test_an_id_on_another_server_than_the_actor_is_refused(client, runtime, fedi) -> None:
    mallory = fedi.actor("mallory", "evil.example", key=1)
    stolen = mallory.activity("Like", "https://victim.example/users/carol/statuses/1",
                              id="https://victim.example/users/carol#likes/7")  # fmt: skip
    r = await post(client, runtime, mallory, stolen)
    assert r.status_code == 403 and "not on the actor's server" in r.json()["error"]
    assert await count(runtime, InboxItem) == 0


async def test_a_neighbour_cannot_take_an_id_from_the_actor_it_names(client, runtime, fedi) -> None:
    """Mallory, on Carol's own server, sends first with Carol's next Like id; Carol's real Like
    with that id is still accepted and handled (ids are unique per actor, not globally)."""
    carol = fedi.actor("carol", "victim.example", key=1)
    mallory = fedi.actor("mallory", "victim.example", key=2)
    async with runtime.session() as s:
        bot = Account(username="bot", username_key="bot", domain="", local=True,
                      uri=runtime.urls.actor("bot"))  # fmt: skip
        s.add(bot)
    taken = f"{carol.uri}#likes/1"
    assert (await post(client, runtime, mallory,
                       mallory.activity("Like", bot.uri, id=taken))).status_code == 202  # fmt: skip
    assert (await post(client, runtime, carol,
                       carol.activity("Like", bot.uri, id=taken))).status_code == 202  # fmt: skip
    rows = await inbox_rows(runtime)
    assert sorted(r.actor_uri for r in rows) == sorted([carol.uri, mallory.uri])
    await InboxWorker(runtime).run_once()


async def test_a_redelivered_activity_is_accepted_once(client, runtime, alice) -> None:
    activity = alice.create()
    for _ in range(3):
        assert (await post(client, runtime, alice, activity)).status_code == 202
    assert await count(runtime, InboxItem) == 1


async def test_a_forwarded_create_cannot_take_the_actors_future_delete_id(
    client, runtime, fedi
) -> None:
    carol = fedi.actor("carol", "victim.example", key=0)
    mallory = fedi.actor("mallory", "evil.example", key=1)
    assert (await post(client, runtime, carol, carol.create())).status_code == 202
    await InboxWorker(runtime).run_once()  # carol is known to us
    forged = {"id": f"{carol.uri}#delete", "type": "Create", "actor": carol.uri,
              "object": f"{carol.uri}/statuses/1"}  # fmt: skip
    assert (await post(client, runtime, mallory, forged)).status_code == 202  # a "forward"

    erase = carol.activity("Delete", carol.uri, id=f"{carol.uri}#delete")
    assert (await post(client, runtime, carol, erase)).status_code == 202
    for _ in range(3):
        await InboxWorker(runtime).run_once()

    assert await count(runtime, InboxItem, InboxItem.body.contains('"Delete"')) == 1
    async with runtime.sessions() as s:
        gone = await s.scalar(select(Account.deleted_at).where(Account.uri == carol.uri))
    assert gone is not None


async def test_a_forwarded_create_cannot_take_the_actors_future_like_id(
    client, runtime, fedi
) -> None:
    carol = fedi.actor("carol", "victim.example", key=0)
    mallory = fedi.actor("mallory", "evil.example", key=1)
    like_id = f"{carol.uri}#likes/1234"
    forged = {"id": like_id, "type": "Create", "actor": carol.uri,
              "object": f"{carol.uri}/statuses/1"}  # fmt: skip
    assert (await post(client, runtime, mallory, forged)).status_code == 202
    like = carol.activity("Like", runtime.urls.actor("bot") + "/posts/1", id=like_id)
    assert (await post(client, runtime, carol, like)).status_code == 202
    assert await count(runtime, InboxItem, InboxItem.body.contains('"Like"')) == 1
