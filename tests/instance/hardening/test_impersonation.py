"""Review finding 18 (docs/security.md): remote names cannot pass for ours; the future waits.

A remote `preferredUsername` could make a remote account read as one of our local handles
on our pages, and a post dated years ahead stayed on top of /federated until then. Remote
usernames must look like usernames (else the actor is refused), display names lose control
and bidi characters, and a remote post is never dated later than when it arrived.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from instance.content.sanitize import plain_label
from instance.inbound.worker import InboxWorker
from instance.storage.models import Account, InboxItem, Post
from tests.instance.inbox_helpers import post


@pytest.mark.parametrize(
    "username", ["painter@127.0.0.1:8000", "painter\u200b", "pain ter", "\u202epainter", ""]
)
async def test_an_actor_whose_username_could_pass_for_another_is_refused(
    client, runtime, fedi, username
) -> None:
    mallory = fedi.actor("mallory", "evil.example", preferredUsername=username)
    assert (await post(client, runtime, mallory, mallory.create())).status_code == 401
    async with runtime.sessions() as s:
        assert await s.scalar(select(Account).where(Account.uri == mallory.uri)) is None
        assert await s.scalar(select(InboxItem)) is None


def test_display_names_are_plain_text_without_invisible_tricks() -> None:
    assert plain_label("The\u202e Painter\u200b\x00 \n bot", 100) == "The Painter bot"
    assert plain_label("x" * 500, 255) == "x" * 255


async def test_a_post_from_the_future_is_dated_when_it_arrived(client, runtime, fedi) -> None:
    alice = fedi.actor("alice")
    early = alice.note("<p>from the future</p>", published="2099-01-01T00:00:00Z")
    assert (await post(client, runtime, alice, alice.create(early))).status_code == 202
    await InboxWorker(runtime).run_once()
    later = alice.note("<p>from now</p>", published=datetime.now(UTC).isoformat())
    assert (await post(client, runtime, alice, alice.create(later))).status_code == 202
    await InboxWorker(runtime).run_once()
    async with runtime.sessions() as s:
        stored = await s.scalar(select(Post).where(Post.uri == early["id"]))
    assert stored.published <= datetime.now(UTC)
    page = (await client.get("/federated")).text
    assert page.index("from now") < page.index("from the future")
