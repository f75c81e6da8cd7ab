"""What the CLI tests share: the one-error-line check, and a second Dreamloom served on
loopback HTTP with the helpers that move activities between the two."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import select

from instance.accounts import NewAccount, create_account
from instance.content import actions
from instance.inbound import resolve
from instance.inbound.worker import InboxWorker
from instance.outbound.delivery import DeliveryWorker
from instance.runtime import Runtime, open_runtime
from instance.setup import ensure_instance
from instance.storage.models import Account, Follow
from tests.instance.cli.conftest import CliInstance
from tests.instance_fixtures import make_settings, serve_live


def one_error(r: Any) -> str:
    assert r.exit_code == 1, r.output
    lines = [x for x in r.stderr.splitlines() if x.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in r.output, r.output
    return lines[0]


@asynccontextmanager
async def other_server(directory: Path) -> AsyncIterator[Runtime]:
    """Another Dreamloom on loopback (SQLite), serving HTTP; its workers are driven by hand."""
    rt = await open_runtime(make_settings(directory))
    await ensure_instance(rt)
    try:
        async with serve_live(rt):
            yield rt
    finally:
        await rt.aclose()


async def in_thread(inst: CliInstance, *args: str, input: str | None = None) -> Any:
    """The CLI in a thread (it runs its own event loop) while this loop serves HTTP."""
    return await asyncio.to_thread(inst.dl, *args, input=input)


async def settle(*rts: Runtime) -> None:
    """Drive deliveries and inbox items on every instance until nothing moves."""
    for _ in range(6):
        moved = 0
        for rt in rts:
            moved += await DeliveryWorker(rt).run_once()
            moved += await InboxWorker(rt).run_once()
        if not moved:
            return


async def follow_ours(far: Runtime, rt: Runtime, fan: str, ours: str) -> Account:
    """`fan` on the other server follows our `ours` (WebFinger, Follow, Accept over HTTP);
    the far side's row for our account."""
    async with far.session() as s:
        me = await create_account(s, far.urls, NewAccount(fan))
    target = await resolve.account(far, f"{ours}@{rt.settings.host}")
    async with far.session() as s:
        await actions.follow(s, far, await s.get_one(Account, me.id), target)
    await settle(far, rt)
    async with far.sessions() as s:
        follow = await s.scalar(select(Follow).where(Follow.followee_id == target.id))
        assert follow is not None and follow.accepted, "the follow was not accepted"
        return await s.get_one(Account, target.id)


async def far_view(far: Runtime, uri: str) -> Account:
    async with far.sessions() as s:
        found = await s.scalar(select(Account).where(Account.uri == uri))
    assert found is not None
    return found
