"""`dreamloom reports` (list, --resolve, --forward, act, forward) and `dreamloom report`,
through the CLI on SQLite and PostgreSQL. Forwarding is checked against a second Dreamloom
instance served on loopback: it verifies the Flag's signature like any inbox POST and
stores the report with its own Flag handler."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from instance.accounts import NewAccount, create_account, get_local
from instance.content.posting import Draft, publish
from instance.inbound.worker import InboxWorker
from instance.outbound.delivery import DeliveryWorker
from instance.runtime import Runtime
from instance.storage.models import (
    Account,
    Delivery,
    DomainBlock,
    OutboundActivity,
    Post,
    Report,
)
from instance.urls import INSTANCE_ACTOR_USERNAME
from tests.instance.cli.conftest import CliInstance
from tests.instance.cli.helpers import one_error, other_server
from tests.instance_fixtures import serve_live


async def poster(rt: Runtime, name: str, text: str) -> tuple[Account, Post]:
    async with rt.session() as s:
        who = await create_account(s, rt.urls, NewAccount(name))
        post = await publish(s, rt, who, Draft(text))
    return who, post


async def in_thread(inst: CliInstance, *args: str) -> Any:
    """The CLI in a thread (it runs its own event loop) while this loop serves HTTP."""
    return await asyncio.to_thread(inst.dl, *args)


def test_report_is_forwarded_once_as_a_signed_flag(
    cli_instance: CliInstance, tmp_path: Path
) -> None:
    """`report @user@host POST --comment` files an outgoing report from the instance actor;
    forwarding queues Mastodon's Flag to that server's shared inbox, signed by the instance
    actor: the other server accepts it (its inbox verifies the signature) and files it about
    its account and post. A second forward is refused and sends nothing."""
    inst = cli_instance

    async def scenario(rt: Runtime) -> None:
        async with other_server(tmp_path / "far") as far, serve_live(rt):
            mallory, post = await poster(far, "mallory", "buy my pills")
            handle = f"mallory@{far.settings.host}"
            r = await in_thread(inst, "report", handle, post.uri, "--comment", "spam", "--json")
            assert r.exit_code == 0, r.output
            filed = json.loads(r.stdout)
            assert filed["outgoing"] is True and filed["about"] == handle
            assert filed["posts"] == [post.uri] and filed["comment"] == "spam"
            assert filed["from"] == rt.urls.actor(INSTANCE_ACTOR_USERNAME)
            assert filed["forwarded_at"] is None

            r = await in_thread(inst, "reports", "forward", str(filed["id"]))
            assert r.exit_code == 0, r.output
            assert f"Flag queued to {far.settings.base_url}/inbox" in r.stdout  # shared inbox

            async with rt.sessions() as s:
                (body,) = await s.scalars(
                    select(OutboundActivity.body).where(OutboundActivity.kind == "Flag")
                )
            flag = json.loads(body)
            assert flag == {
                "@context": "https://www.w3.org/ns/activitystreams",
                "id": flag["id"], "type": "Flag", "actor": filed["from"],
                "object": [mallory.uri, post.uri], "content": "spam",
            }  # fmt: skip
            assert flag["id"].startswith(rt.settings.base_url)

            assert await DeliveryWorker(rt).run_once() >= 0
            async with rt.sessions() as s:
                statuses = list(await s.scalars(select(Delivery.status)))
            assert statuses == ["done"], statuses  # 2xx from the other server's inbox
            assert await InboxWorker(far).run_once() == 1
            async with far.sessions() as s:
                (theirs,) = await s.scalars(select(Report))
                reporter = await s.get_one(Account, theirs.reporter_id)
            assert reporter.uri == filed["from"]  # the key that signed it is the actor's
            assert theirs.target_id == mallory.id and theirs.post_uris == [post.uri]
            assert theirs.comment == "spam" and theirs.outgoing is False

            again = await in_thread(inst, "reports", "--forward", str(filed["id"]))
            assert "already forwarded" in one_error(again)
            async with rt.sessions() as s:
                assert await s.scalar(select(func.count()).select_from(Delivery)) == 1

            listed = json.loads((await in_thread(inst, "reports", "--json")).stdout)
            assert [x["id"] for x in listed] == [filed["id"]] and listed[0]["forwarded_at"]

            # `report --forward` files and forwards in one go; a second one for the same
            # account is its own report
            r = await in_thread(inst, "report", handle, "--comment", "again", "--forward")
            assert r.exit_code == 0, r.output
            assert "Flag queued to" in r.stdout

    inst.db(scenario)


def test_report_refuses_our_own_accounts_and_unknown_targets(cli_instance: CliInstance) -> None:
    """A report is about a remote account: one of ours, or a handle that does not resolve,
    is one error line."""
    cli_instance.ok("account", "create", "painter", "--no-pictures")
    r = cli_instance.dl("report", "painter", "--comment", "x")
    assert "account on this instance" in one_error(r)
    r = cli_instance.dl("report", "nobody", "--comment", "x")
    assert "no local account named 'nobody'" in one_error(r)


async def incoming_report(rt: Runtime, about: str, text: str) -> tuple[int, str]:
    """A Flag from another server about our account `about` and its post, as the inbox
    handler stores it; (report id, post uri)."""
    async with rt.session() as s:
        me = await get_local(s, about)
        post = await publish(s, rt, me, Draft(text))
        uri = "https://elsewhere.example/actor"
        reporter = await s.scalar(select(Account).where(Account.uri == uri))
        if reporter is None:
            reporter = Account(
                username="mod", username_key="mod", domain="elsewhere.example", local=False,
                uri=uri, kind="Application",
            )  # fmt: skip
            s.add(reporter)
            await s.flush()
        report = Report(uri=f"https://elsewhere.example/reports/{post.public_id}",
                        reporter_id=reporter.id,
                        target_id=me.id, post_uris=[post.uri], comment="rude",
                        created_at=rt.now())  # fmt: skip
        s.add(report)
        await s.flush()
        return report.id, post.uri


def test_reports_lists_resolves_and_acts(cli_instance: CliInstance) -> None:
    """`reports` still lists on its own, `--resolve` handles one, `--all` shows handled ones;
    `reports act --delete-posts` deletes our reported post with a federated Delete and
    resolves the report, recording what was done."""
    inst = cli_instance
    inst.ok("account", "create", "painter", "--no-pictures")
    assert "no reports" in inst.ok("reports").stdout
    rid, post_uri = inst.db(lambda rt: incoming_report(rt, "painter", "a rude post"))

    text = inst.ok("reports").stdout
    assert f"#{rid} [open] about @painter from https://elsewhere.example/actor: rude" in text
    (row,) = inst.json("reports")
    assert row["outgoing"] is False and row["posts"] == [post_uri] and row["action_taken"] == []

    # refusals: unknown report, nothing chosen, no confirmation, forwarding an incoming one
    assert "no report 999" in one_error(inst.dl("reports", "act", "999", "--suspend", "--yes"))
    assert "say what to do" in one_error(inst.dl("reports", "act", str(rid), "--yes"))
    assert "aborted" in one_error(inst.dl("reports", "act", str(rid), "--delete-posts", input=""))
    r = inst.dl("reports", "forward", str(rid))
    assert "only reports about remote accounts" in one_error(r)
    assert "cannot be blocked" in one_error(
        inst.dl("reports", "act", str(rid), "--block-domain", "--yes")
    )

    r = inst.ok("reports", "act", str(rid), "--delete-posts", "--yes")
    assert f"report {rid}: delete-posts (1 posts deleted); resolved" in r.stdout

    async def after(rt: Runtime) -> tuple[Any, list[str], Report]:
        async with rt.sessions() as s:
            post = await s.scalar(select(Post).where(Post.uri == post_uri))
            kinds = list(await s.scalars(select(OutboundActivity.kind)))
            report = await s.get_one(Report, rid)
        return post.deleted_at if post else None, kinds, report

    deleted_at, kinds, report = inst.db(after)
    assert deleted_at is not None and "Delete" in kinds  # the usual federated delete
    assert report.resolved_at is not None and report.action_taken == ["delete-posts"]
    assert inst.json("reports") == []  # handled: off the default list
    (row,) = inst.json("reports", "--all")
    assert row["resolved"] is True and row["action_taken"] == ["delete-posts"]

    rid2, _ = inst.db(lambda rt: incoming_report(rt, "painter", "another"))
    text = inst.ok("reports", "--resolve", str(rid2), "--all").stdout
    assert f"#{rid2} [handled]" in text and f"#{rid} [handled]" in text
    assert "no report 77" in one_error(inst.dl("reports", "--resolve", "77"))


def test_act_suspends_and_blocks_the_reported_domain(cli_instance: CliInstance) -> None:
    """On a report about a remote account, `act --suspend --block-domain --delete-posts`
    suspends the account, blocks its domain and tombstones its reported post here."""
    inst = cli_instance

    async def arrange(rt: Runtime) -> int:
        async with rt.session() as s:
            spammer = Account(username="spam", username_key="spam", domain="spam.example",
                              local=False, uri="https://spam.example/users/spam", kind="Person",
                              inbox_uri="https://spam.example/users/spam/inbox")  # fmt: skip
            s.add(spammer)
            await s.flush()
            post = Post(uri="https://spam.example/statuses/1", account_id=spammer.id,
                        local=False, content="<p>buy</p>", visibility="public")  # fmt: skip
            s.add(post)
            await s.flush()
            return spammer.id

    spammer_id = inst.db(arrange)
    # the account is known here, so `report` resolves it without the network
    filed = inst.json("report", "https://spam.example/users/spam",
                      "https://spam.example/statuses/1", "--comment", "spam")  # fmt: skip
    r = inst.ok("reports", "act", str(filed["id"]), "--suspend", "--block-domain",
                "--delete-posts", "--yes", "--json")  # fmt: skip
    done = json.loads(r.stdout)
    assert done["action_taken"] == ["delete-posts", "suspend", "block-domain"]
    assert done["deleted_posts"] == 1 and done["account"] == "spam@spam.example"

    async def after(rt: Runtime) -> tuple[Any, Any, Any]:
        async with rt.sessions() as s:
            spammer = await s.get_one(Account, spammer_id)
            post = await s.scalar(select(Post).where(Post.uri == "https://spam.example/statuses/1"))
            block = await s.get(DomainBlock, "spam.example")
        return spammer.suspended_at, post.deleted_at if post else None, block

    suspended_at, deleted_at, block = inst.db(after)
    assert suspended_at is not None and deleted_at is not None
    assert block is not None and block.severity == "suspend"
    assert block.private_comment == f"report {filed['id']}"
    (row,) = inst.json("reports", "--all")
    assert row["resolved"] and row["action_taken"] == ["delete-posts", "suspend", "block-domain"]
