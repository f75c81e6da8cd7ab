"""`dreamloom domain ...`, `deliveries ...` and `remote refresh` through the entry point, on
SQLite and PostgreSQL."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from instance.accounts import get_local
from instance.content.posting import Draft, publish
from instance.runtime import Runtime
from instance.storage.models import (
    Account,
    Delivery,
    DomainBlock,
    DomainHealth,
    Follow,
    InboxItem,
    Post,
)
from tests.instance.cli.conftest import CliInstance
from tests.instance.cli.helpers import one_error
from tests.instance.loopback_peer import loopback_peer


async def count(rt: Runtime, model: Any, *where: Any) -> int:
    async with rt.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def remote_with_queues(domain: str) -> Any:
    """A remote account on `domain` following @painter and followed by it, a delivery queued
    to it and an inbox item queued from it."""

    async def go(rt: Runtime) -> None:
        async with rt.session() as s:
            me = await get_local(s, "painter")
            them = Account(username="alice", username_key="alice", domain=domain, local=False,
                           uri=f"https://{domain}/users/alice",
                           inbox_uri=f"https://{domain}/users/alice/inbox")  # fmt: skip
            s.add(them)
            await s.flush()
            s.add_all([
                Follow(follower_id=them.id, followee_id=me.id, accepted=True, uri=f"u:{domain}:1"),
                Follow(follower_id=me.id, followee_id=them.id, accepted=True, uri=f"u:{domain}:2"),
                InboxItem(activity_uri=f"{them.uri}/a/1", actor_uri=them.uri, body="{}"),
            ])  # fmt: skip
            await publish(s, rt, me, Draft("hello"))

    return go


def test_domain_block_list_and_unblock(cli_instance: CliInstance) -> None:
    """`domain block` asks first, then suspends: follows with the domain's accounts and its
    queued deliveries and inbox items go (subdomains included); `list` shows it; `unblock`
    removes it; garbage, our own domain and an unknown block are one error line each."""
    inst = cli_instance
    inst.ok("account", "create", "painter", "--no-pictures")
    inst.db(remote_with_queues("sub.bad.example"))
    assert inst.db(lambda rt: count(rt, Delivery)) == 1

    assert "aborted" in one_error(inst.dl("domain", "block", "bad.example", input=""))
    assert inst.json("domain", "list") == []
    row = inst.json("domain", "block", "HTTPS://Bad.Example/x", "--yes",
                    "--public-comment", "spam")  # fmt: skip
    assert row["domain"] == "bad.example" and row["severity"] == "suspend"
    assert row["public_comment"] == "spam"
    assert inst.db(lambda rt: count(rt, Follow)) == 0
    assert inst.db(lambda rt: count(rt, Delivery)) == 0
    assert inst.db(lambda rt: count(rt, InboxItem)) == 0
    assert "bad.example" in inst.ok("domain", "list").stdout

    inst.ok("domain", "silence", "loud.example")
    inst.ok("domain", "reject-media", "pics.example")
    listed = {r["domain"]: r for r in inst.json("domain", "list")}
    assert listed["loud.example"]["severity"] == "silence"
    assert listed["pics.example"]["severity"] == "noop" and listed["pics.example"]["reject_media"]

    assert "not a domain" in one_error(inst.dl("domain", "block", "not a domain", "--yes"))
    host = inst.domain.split(":")[0]
    assert "own domain" in one_error(inst.dl("domain", "block", host, "--yes"))
    assert "is not blocked" in one_error(inst.dl("domain", "unblock", "never.example"))
    assert inst.json("domain", "unblock", "bad.example") == {
        "domain": "bad.example", "unblocked": True,
    }  # fmt: skip
    assert "bad.example" not in {r["domain"] for r in inst.json("domain", "list")}


def test_domain_export_and_import(cli_instance: CliInstance, tmp_path: Path) -> None:
    """Export writes Mastodon's CSV; import takes it and the one-domain-a-line list; an
    existing block is never weakened without --overwrite, and the weaker ones are listed
    first; 1,000 domains import quickly in one go."""
    inst = cli_instance
    inst.ok("domain", "block", "bad.example", "--yes", "--reject-media")
    inst.ok("domain", "silence", "loud.example")
    exported = tmp_path / "blocks.csv"
    inst.ok("domain", "export", "--output", str(exported))
    lines = exported.read_text().splitlines()
    assert lines[0] == "#domain,#severity,#reject_media,#reject_reports,#public_comment,#obfuscate"
    assert "bad.example,suspend,true,false,,false" in lines

    csv = tmp_path / "in.csv"
    csv.write_text(
        "#domain,#severity,#reject_media,#reject_reports,#public_comment,#obfuscate\n"
        "bad.example,silence,false,false,milder,false\n"
        "loud.example,suspend,false,false,worse,false\n"
        "new.example,silence,true,false,,false\n"
    )
    r = inst.ok("domain", "import", str(csv))
    assert "1 blocks would be weaker; kept" in r.stderr
    assert "bad.example: suspend+reject_media -> silence" in r.stderr
    rows = {row["domain"]: row for row in inst.json("domain", "list")}
    assert rows["bad.example"]["severity"] == "suspend"  # not weakened
    assert rows["loud.example"]["severity"] == "suspend"  # strengthened
    assert rows["new.example"]["reject_media"] is True
    summary = inst.json("domain", "import", str(csv), "--overwrite", "--yes")
    assert summary["downgrades"][0]["domain"] == "bad.example" and summary["written"] == 1
    assert {r["domain"]: r for r in inst.json("domain", "list")}["bad.example"]["severity"] == (
        "silence"
    )

    plain = tmp_path / "list.txt"
    plain.write_text("# a comment\n" + "".join(f"d{n}.example\n" for n in range(1000)))
    started = time.monotonic()
    summary = inst.json("domain", "import", str(plain))
    assert summary["new"] == 1000 and summary["written"] == 1000
    assert time.monotonic() - started < 60
    assert inst.db(lambda rt: count(rt, DomainBlock)) == 1003

    assert "cannot read" in one_error(inst.dl("domain", "import", str(tmp_path / "missing")))
    bad = tmp_path / "bad.txt"
    bad.write_text("ok.example\nnot a domain!\n")
    assert "line 2" in one_error(inst.dl("domain", "import", str(bad)))


def test_deliveries_status_retry_and_purge(cli_instance: CliInstance) -> None:
    """`deliveries status` counts per server what is queued, failing, failed, paused and
    blocked, with the last error; `retry` makes failed and paused rows due now; `purge`
    asks first, then deletes the undelivered rows (of one domain with --domain)."""
    inst = cli_instance
    inst.ok("account", "create", "painter", "--no-pictures")

    async def arrange(rt: Runtime) -> None:
        await remote_with_queues("a.example")(rt)
        await remote_with_queues("b.example")(rt)
        async with rt.session() as s:
            b = await s.scalar(select(Delivery).where(Delivery.host == "b.example"))
            b.status, b.last_error, b.attempts = "failed", "HTTP 500", 17
            a = await s.scalar(select(Delivery).where(Delivery.host == "a.example"))
            a.attempts, a.last_error = 2, "timed out"
            s.add(DomainHealth(host="a.example", failure_days=[], paused=True))

    inst.db(arrange)
    status = {r["host"]: r for r in inst.json("deliveries", "status")}
    # two posts reached a.example (the second one followed by then), one b.example
    assert status["a.example"] == {"host": "a.example", "queued": 2, "failing": 1, "failed": 0,
                                   "paused": True, "blocked": False,
                                   "last_error": "timed out"}  # fmt: skip
    assert status["b.example"]["failed"] == 1 and status["b.example"]["last_error"] == "HTTP 500"
    assert [r["host"] for r in inst.json("deliveries", "status", "--domain", "b.example")] == [
        "b.example"
    ]
    assert "b.example" in inst.ok("deliveries", "status").stdout

    assert inst.json("deliveries", "retry", "--domain", "b.example")["retried"] == 1
    assert inst.json("deliveries", "retry")["retried"] == 2  # a.example's, paused
    status = {r["host"]: r for r in inst.json("deliveries", "status")}
    assert not status["a.example"]["paused"] and status["b.example"]["queued"] == 1

    assert "aborted" in one_error(inst.dl("deliveries", "purge", input=""))
    assert inst.json("deliveries", "purge", "--domain", "a.example", "--yes")["purged"] == 2
    assert [r["host"] for r in inst.json("deliveries", "status")] == ["b.example"]
    assert "deleted" in inst.ok("deliveries", "purge", "--yes").stdout
    assert inst.json("deliveries", "status") == []
    assert "not a domain" in one_error(inst.dl("deliveries", "purge", "--domain", "x y", "--yes"))


def test_remote_refresh(cli_instance: CliInstance) -> None:
    """`remote refresh URL` fetches the actor again over real HTTP and updates its row; an
    unreachable server, a blocked domain and a bad handle are one error line each."""
    inst = cli_instance
    with loopback_peer() as peer:
        alice = peer.actor("alice")
        done = inst.json("remote", "refresh", alice.uri)
        assert done["kind"] == "actor" and done["uri"] == alice.uri
        peer.serve(alice.uri, alice.document(name="Alice Renamed"))
        inst.ok("remote", "refresh", alice.uri)

        async def name(rt: Runtime) -> str | None:
            async with rt.sessions() as s:
                return await s.scalar(select(Account.display_name).where(Account.uri == alice.uri))

        assert inst.db(name) == "Alice Renamed"

        note = alice.note("<p>first words</p>")
        peer.serve(note["id"], note)
        assert inst.json("remote", "refresh", note["id"])["kind"] == "post"
        peer.serve(note["id"], {**note, "content": "<p>edited words</p>",
                                "updated": "2030-01-01T00:00:00Z"})  # fmt: skip
        inst.ok("remote", "refresh", note["id"])

        async def content(rt: Runtime) -> str | None:
            async with rt.sessions() as s:
                return await s.scalar(select(Post.content).where(Post.uri == note["id"]))

        assert "edited words" in (inst.db(content) or "")
        gets = len(peer.gets())
        inst.ok("domain", "block", "localhost", "--yes")
        assert "blocked" in one_error(inst.dl("remote", "refresh", alice.uri))
        assert len(peer.gets()) == gets
    assert "cannot" in one_error(inst.dl("remote", "refresh", "http://127.0.0.1:9/users/x"))
    assert "not a remote handle" in one_error(inst.dl("remote", "refresh", "nobody"))
