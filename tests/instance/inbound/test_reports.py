"""Flag: reports from other servers about our accounts and posts, for the admin."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from instance.cli import app
from instance.content.posting import Draft, publish
from instance.inbound.worker import InboxWorker
from instance.storage.models import Account, InboxItem, Report
from tests.instance.inbox_helpers import post


@pytest.fixture
async def bot(new_account):
    return await new_account("painter", ai=True)


async def flag(client, runtime, actor, objects, content="spam"):
    activity = actor.activity("Flag", objects, content=content)
    assert (await post(client, runtime, actor, activity)).status_code == 202
    await InboxWorker(runtime).run_once()
    return activity


async def test_flag_of_our_post_makes_one_report(client, runtime, fedi, bot) -> None:
    mod = fedi.actor("mod", "mastodon.example")
    async with runtime.session() as s:
        mine = await publish(s, runtime, await s.get(Account, bot.id), Draft(text="hi"))
    activity = await flag(client, runtime, mod, [bot.uri, mine.uri], "<p>spam <b>bot</b></p>")
    # the same Flag again changes nothing
    assert (await post(client, runtime, mod, activity)).status_code == 202
    await InboxWorker(runtime).run_once()
    async with runtime.sessions() as s:
        (report,) = list(await s.scalars(select(Report)))
    assert report.target_id == bot.id and report.post_uris == [mine.uri]
    assert report.comment == "<p>spam <b>bot</b></p>"


def test_reports_command_lists_and_resolves(tmp_path) -> None:
    import asyncio

    from instance.runtime import open_runtime
    from instance.settings import load_settings

    runner = CliRunner()
    d = tmp_path / "inst"
    assert runner.invoke(app, ["init", "--domain", "127.0.0.1:8125", "--scheme", "http",
                               "--dir", str(d)]).exit_code == 0  # fmt: skip
    assert (
        runner.invoke(app, ["account", "create", "painter", "--ai", "--dir", str(d)]).exit_code == 0
    )

    async def seed() -> None:
        rt = await open_runtime(load_settings(d / "config.toml", env={}))
        try:
            async with rt.session() as s:
                bot = await s.scalar(select(Account).where(Account.username == "painter"))
                mod = Account(username="mod", username_key="mod", domain="m.example",
                              uri="https://m.example/users/mod")  # fmt: skip
                s.add(mod)
                await s.flush()
                s.add(Report(uri="https://m.example/flags/1", reporter_id=mod.id,
                             target_id=bot.id, comment="spam"))  # fmt: skip
        finally:
            await rt.aclose()

    asyncio.run(seed())
    (row,) = json.loads(runner.invoke(app, ["reports", "--json", "--dir", str(d)]).stdout)
    assert (row["about"], row["from"], row["comment"]) == (
        "painter",
        "https://m.example/users/mod",
        "spam",
    )
    runner.invoke(app, ["reports", "--resolve", str(row["id"]), "--dir", str(d)])
    assert json.loads(runner.invoke(app, ["reports", "--json", "--dir", str(d)]).stdout) == []
    assert (
        len(json.loads(runner.invoke(app, ["reports", "--all", "--json", "--dir", str(d)]).stdout))
        == 1
    )


async def test_flag_about_nothing_of_ours_is_skipped_with_a_reason(client, runtime, fedi, bot):
    mod = fedi.actor("mod", "mastodon.example")
    await flag(client, runtime, mod, ["https://elsewhere.example/users/x"])
    async with runtime.sessions() as s:
        assert list(await s.scalars(select(Report))) == []
        (item,) = list(await s.scalars(select(InboxItem)))
    assert item.last_error == "skipped: Flag about nothing on this instance"
