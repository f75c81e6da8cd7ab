"""Helpers for the delivery tests: a fake clock, remote inboxes faked at the httpx transport
, remote followers seeded straight into the database, and a post to send."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select

from instance.outbound.fanout import enqueue
from instance.runtime import Runtime
from instance.storage.models import Account, Follow, OutboundActivity

START = datetime(2026, 7, 7, 10, 0, tzinfo=UTC)


class FakeClock:
    def __init__(self, start: datetime = START) -> None:
        self.moment = start

    def __call__(self) -> datetime:
        return self.moment

    def advance(self, **delta: float) -> datetime:
        self.moment += timedelta(**delta)
        return self.moment

    def set(self, moment: datetime) -> None:
        self.moment = moment


@dataclass
class Received:
    url: str
    headers: httpx.Headers
    body: bytes
    at: float  # time.monotonic() when it arrived


@dataclass
class FakeInboxes:
    """Remote servers faked at the transport. `script(key, *answers)` sets what a URL (or a
    whole host) answers, one answer per request, the last one repeating. An answer is a
    status, `(status, headers)`, "hang" (never answers) or "reset" (connection error)."""

    scripts: dict[str, list[Any]] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    hang_ended: dict[str, float] = field(default_factory=dict)  # host -> when a hang was cut

    def script(self, key: str, *answers: Any) -> None:
        self.scripts[key] = list(answers)

    def to(self, url_or_host: str) -> list[Received]:
        return [r for r in self.received if url_or_host in (r.url, httpx.URL(r.url).host)]

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.received.append(
            Received(str(request.url), request.headers, request.content, time.monotonic())
        )
        answers = self.scripts.get(str(request.url)) or self.scripts.get(request.url.host) or [202]
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        if answer == "hang":
            try:
                await asyncio.sleep(3600)
            finally:  # cancelled by the sender's timeout: remember when, for ordering checks
                self.hang_ended.setdefault(request.url.host, time.monotonic())
        if answer == "reset":
            raise httpx.ConnectError("connection reset by peer", request=request)
        status, headers = answer if isinstance(answer, tuple) else (answer, {})
        return httpx.Response(status, headers=headers)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self))


async def add_follower(
    rt: Runtime,
    followee: Account,
    name: str,
    host: str,
    *,
    shared: bool = True,
    scheme: str = "https",
) -> Account:
    """A remote account following `followee`, with a personal and (maybe) a shared inbox."""
    async with rt.session() as session:
        actor = f"{scheme}://{host}/users/{name}"
        account = Account(
            username=name, username_key=name, domain=host, local=False, uri=actor,
            inbox_uri=f"{actor}/inbox",
            shared_inbox_uri=f"{scheme}://{host}/inbox" if shared else None,
        )  # fmt: skip
        session.add(account)
        await session.flush()
        follow_id = f"{actor}#follow-{followee.id}"
        session.add(
            Follow(follower_id=account.id, followee_id=followee.id, uri=follow_id, accepted=True)
        )
        return account


async def post_to_followers(rt: Runtime, author: Account, n: int = 1) -> OutboundActivity:
    """Enqueue a Create to `author`'s followers, due now on `rt`'s clock."""
    uri = rt.urls.activity(author.username, f"create-{n}-{time.monotonic_ns()}")
    activity = {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": uri,
        "type": "Create",
        "actor": author.uri,
        "object": {"id": f"{uri}/note", "type": "Note", "content": f"<p>post {n}</p>"},
    }
    async with rt.session() as session:
        account = await session.scalar(select(Account).where(Account.id == author.id))
        assert account is not None
        return await enqueue(session, rt, account, activity, to_followers=True)
