"""`dreamloom account suspend|unsuspend|delete|password|rotate-key|avatar` through the CLI
entry point, on SQLite and PostgreSQL. The federated effects are checked against a second
Dreamloom instance served on loopback HTTP (its inbox verifies every signature and its own
handlers store what arrives), and our own pages over real HTTP."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import httpx
from PIL import Image
from sqlalchemy import func, select

from instance.accounts import NewAccount, create_account, get_local, verify_password
from instance.content import actions, timelines
from instance.content.posting import Draft, publish
from instance.inbound import resolve
from instance.inbound.retention import RetentionWorker
from instance.inbound.worker import InboxWorker
from instance.moderation.suspension import HiddenMedia
from instance.outbound.delivery import DeliveryWorker
from instance.runtime import Runtime
from instance.storage.models import (
    Account,
    Delivery,
    DomainHealth,
    Follow,
    InboxItem,
    OutboundActivity,
    Post,
    RemoteKey,
)
from instance.urls import INSTANCE_ACTOR_USERNAME
from tests.instance.cli.conftest import CliInstance
from tests.instance.cli.helpers import (
    far_view,
    follow_ours,
    in_thread,
    one_error,
    other_server,
    settle,
)
from tests.instance.web_helpers import PASSWORD, login
from tests.instance_fixtures import serve_live

AJ = {"Accept": "application/activity+json"}


def test_suspend_federates_holds_and_unsuspend_releases(
    cli_instance: CliInstance, tmp_path: Path
) -> None:
    """Suspending a local account sends its followers Mastodon's actor Update with
    `suspended: true` (the follower instance stores it), its pages answer 403 while the
    actor and WebFinger still answer, a post queued before stays held (not lost, not
    sent); unsuspending sends the full actor and the held post then arrives. Follows stay."""
    inst = cli_instance
    inst.ok("account", "create", "painter", "--bio", "I paint", "--display-name", "Pat P",
            "--no-pictures")  # fmt: skip

    async def scenario(rt: Runtime) -> None:
        async with other_server(tmp_path / "far") as far, serve_live(rt) as base:
            theirs = await follow_ours(far, rt, "fan", "painter")
            async with rt.session() as s:
                painter = await get_local(s, "painter")
                post = await publish(s, rt, painter, Draft("before the suspension"))

            r = await in_thread(inst, "account", "suspend", "painter", "--json")
            assert r.exit_code == 0, r.output
            row = json.loads(r.stdout)
            assert row["changed"] is True and row["local"] is True and row["suspended_at"]

            await settle(rt, far)
            seen = await far_view(far, theirs.uri)
            assert seen.raw is not None and seen.raw.get("suspended") is True
            assert seen.display_name == "painter" and "I paint" not in seen.summary
            assert seen.discoverable is False
            async with far.sessions() as s:  # the Create stayed held here
                assert await s.scalar(select(Post).where(Post.uri == post.uri)) is None
            async with rt.sessions() as s:
                held = await s.scalar(
                    select(Delivery.status)
                    .join(OutboundActivity, OutboundActivity.id == Delivery.activity_id)
                    .where(OutboundActivity.kind == "Create")
                )
                assert held == "queued"
                assert await s.scalar(select(func.count()).select_from(Follow)) == 1

            async with httpx.AsyncClient(base_url=base) as web:
                home = (await web.get("/")).text  # neither listed nor its posts shown
                assert f"@painter@{rt.settings.host}" not in home and "before the" not in home
                actor = await web.get("/users/painter", headers=AJ)
                assert actor.status_code == 200 and actor.json()["suspended"] is True
                assert actor.json()["publicKey"]["publicKeyPem"]  # its Deletes still verify
                for path in ("/@painter", "/users/painter/outbox?page=1",
                             "/users/painter/followers", f"/users/painter/posts/{post.public_id}",
                             f"/@painter/{post.public_id}"):  # fmt: skip
                    got = await web.get(path, headers=AJ if "/users/" in path else {})
                    assert got.status_code == 403, (path, got.status_code)
                finger = await web.get(
                    "/.well-known/webfinger",
                    params={"resource": f"acct:painter@{rt.settings.host}"},
                )
                assert finger.status_code == 200

            again = await in_thread(inst, "account", "suspend", "painter")
            assert again.exit_code == 0 and "already suspended" in again.stdout

            r = await in_thread(inst, "account", "unsuspend", "painter")
            assert r.exit_code == 0 and "unsuspended @painter" in r.stdout, r.output
            await settle(rt, far)
            seen = await far_view(far, theirs.uri)
            assert seen.raw is not None and "suspended" not in seen.raw
            assert "I paint" in seen.summary and seen.display_name == "Pat P"
            async with far.sessions() as s:  # the held Create went out at last
                assert await s.scalar(select(Post.id).where(Post.uri == post.uri)) is not None
            async with httpx.AsyncClient(base_url=base) as web:
                assert (await web.get("/@painter")).status_code == 200
                assert f"@painter@{rt.settings.host}" in (await web.get("/")).text

    inst.db(scenario)


def test_suspended_remote_account_is_refused_at_the_inbox_and_hidden(
    cli_instance: CliInstance, tmp_path: Path
) -> None:
    """A suspended remote account (named by @user@host): its activities get 403 at our
    inbox and no inbox row is stored; its posts leave the federated timeline and the
    replies collection of our post it answered. Unsuspended, they show again."""
    inst = cli_instance
    inst.ok("account", "create", "painter", "--no-pictures")

    async def scenario(rt: Runtime) -> None:
        async with other_server(tmp_path / "far") as far, serve_live(rt) as base:
            async with rt.session() as s:
                ours = await publish(s, rt, await get_local(s, "painter"), Draft("a painting"))
            theirs = await resolve.post(far, ours.uri)
            async with far.session() as s:
                troll = await create_account(s, far.urls, NewAccount("troll"))
                post = await publish(s, far, troll, Draft("ugly", in_reply_to=theirs))
            # we know its reply (fetched): on our federated timeline and in our replies
            await resolve.post(rt, post.uri)
            handle = f"troll@{far.settings.host}"
            replies = f"/users/painter/posts/{ours.public_id}/replies?page=1"

            async def shown_here() -> tuple[bool, bool]:
                async with rt.sessions() as s:
                    listed = await timelines.read(s, "federated", now=rt.now())
                async with httpx.AsyncClient(base_url=base) as web:
                    items = (await web.get(replies, headers=AJ)).json()["orderedItems"]
                return post.uri in [e.post.uri for e in listed], post.uri in items

            assert await shown_here() == (True, True)

            r = await in_thread(inst, "account", "suspend", handle, "--json")
            assert r.exit_code == 0, r.output
            assert json.loads(r.stdout)["local"] is False

            assert await shown_here() == (False, False)
            target = await resolve.account(far, f"painter@{rt.settings.host}")
            async with far.session() as s:
                await actions.follow(s, far, await s.get_one(Account, troll.id), target)
            await DeliveryWorker(far).run_once()
            async with far.sessions() as s:
                statuses = set(await s.scalars(select(Delivery.last_status)))
            assert statuses == {403}, statuses  # the Follow (and the reply's Create)
            async with rt.sessions() as s:
                assert await s.scalar(select(func.count()).select_from(InboxItem)) == 0

            r = await in_thread(inst, "account", "unsuspend", f"@{handle}")
            assert r.exit_code == 0, r.output
            assert await shown_here() == (True, True)

    inst.db(scenario)


def test_delete_reaches_every_known_inbox_and_leaves_a_tombstone(
    cli_instance: CliInstance, tmp_path: Path
) -> None:
    """`account delete --wait --yes` sends one signed Delete of the actor to every server we
    know (a follower's and one that merely sent us its actor), once per shared inbox; the
    follower's server marks the actor deleted. Our actor, posts and WebFinger then answer
    410, the name stays taken, the posts are purged and the key is dropped after the
    deliveries. Without --yes nothing happens."""
    inst = cli_instance
    inst.ok("account", "create", "painter", "--no-pictures")

    async def scenario(rt: Runtime) -> None:
        async with (
            other_server(tmp_path / "far") as far,
            other_server(tmp_path / "near") as near,
            serve_live(rt) as base,
        ):
            theirs = await follow_ours(far, rt, "fan", "painter")
            await follow_ours(far, rt, "fan2", "painter")  # same server: one shared inbox
            async with near.session() as s:
                stranger = await create_account(s, near.urls, NewAccount("stranger"))
            await resolve.account(rt, stranger.uri)  # known, not a follower
            async with rt.session() as s:
                painter = await get_local(s, "painter")
                post = await publish(s, rt, painter, Draft("soon gone"))
            await settle(rt, far)

            r = await in_thread(inst, "account", "delete", "painter", input="")
            assert "aborted" in one_error(r)

            r = await in_thread(inst, "account", "delete", "painter", "--wait", "--yes", "--json")
            assert r.exit_code == 0, r.output
            done = json.loads(r.stdout)
            assert done["inboxes"] == 2 and done["deliveries_ended"] == 2, done
            assert done["posts_deleted"] == 1 and done["key_dropped"] is True

            async with rt.sessions() as s:
                rows = list(
                    await s.execute(
                        select(Delivery.inbox_uri, Delivery.status, Delivery.last_status)
                        .join(OutboundActivity, OutboundActivity.id == Delivery.activity_id)
                        .where(OutboundActivity.kind == "Delete")
                    )
                )
                assert sorted(i for i, _, _ in rows) == sorted(
                    [far.urls.shared_inbox(), near.urls.shared_inbox()]
                )
                assert {(st, code) for _, st, code in rows} == {("done", 202)}
                tomb = await s.get_one(Account, painter.id)
                assert tomb.deleted_at is not None and tomb.private_key_pem is None
                assert await s.scalar(select(func.count()).select_from(Post)) == 0
                assert await s.scalar(select(func.count()).select_from(Follow)) == 0
            await InboxWorker(far).run_once()
            assert (await far_view(far, theirs.uri)).deleted_at is not None

            async with httpx.AsyncClient(base_url=base) as web:
                assert (await web.get("/users/painter", headers=AJ)).status_code == 410
                got = await web.get(f"/users/painter/posts/{post.public_id}", headers=AJ)
                assert got.status_code == 410
                assert (await web.get("/@painter")).status_code == 410
                finger = await web.get(
                    "/.well-known/webfinger",
                    params={"resource": f"acct:painter@{rt.settings.host}"},
                )
                assert finger.status_code == 410

            r = await in_thread(inst, "account", "create", "painter", "--no-pictures")
            assert "already taken" in one_error(r)
            r = await in_thread(inst, "account", "delete", "painter", "--yes")
            assert "no local account named 'painter'" in one_error(r)

    inst.db(scenario)


def test_rotate_key_is_verified_by_a_peer_that_cached_the_old_key(
    cli_instance: CliInstance, tmp_path: Path
) -> None:
    """After `rotate-key --yes`, a follower instance that cached the old key fails to
    verify, fetches the actor again and takes the Update and later posts signed with the
    new key; the keyId stays the same and the follow keeps working."""
    inst = cli_instance
    inst.ok("account", "create", "painter", "--no-pictures")

    async def scenario(rt: Runtime) -> None:
        async with other_server(tmp_path / "far") as far, serve_live(rt):
            theirs = await follow_ours(far, rt, "fan", "painter")
            async with far.sessions() as s:
                cached = await s.get_one(RemoteKey, theirs.key_id)
            old_pem = cached.public_key_pem

            assert "aborted" in one_error(
                await in_thread(inst, "account", "rotate-key", "painter", input="")
            )
            r = await in_thread(inst, "account", "rotate-key", "painter", "--yes", "--json")
            assert r.exit_code == 0, r.output
            assert json.loads(r.stdout)["key_id"] == theirs.key_id
            async with rt.session() as s:
                painter = await get_local(s, "painter")
                assert painter.public_key_pem != old_pem
                post = await publish(s, rt, painter, Draft("signed with the new key"))
            await settle(rt, far)
            async with rt.sessions() as s:
                statuses = set(await s.scalars(select(Delivery.last_status)))
            assert statuses == {202}, statuses  # the Update and the Create were taken
            async with far.sessions() as s:
                cached = await s.get_one(RemoteKey, theirs.key_id)
                assert cached.public_key_pem == painter.public_key_pem
                assert await s.scalar(select(Post.id).where(Post.uri == post.uri)) is not None

    inst.db(scenario)


def test_password_sets_the_hash_and_ends_sessions(cli_instance: CliInstance) -> None:
    """`account password` reads standard input (or --generate prints a random one); the
    new password verifies, the old one does not. A missing account is one error line, a
    short password is refused."""
    inst = cli_instance
    inst.ok("account", "create", "painter", "--no-pictures")
    r = inst.ok("account", "password", "painter", input="first password\n")
    assert "password of @painter changed" in r.stdout and "sessions have ended" in r.stdout

    async def check(rt: Runtime, password: str) -> bool:
        async with rt.sessions() as s:
            return verify_password(await get_local(s, "painter"), password)

    assert inst.db(lambda rt: check(rt, "first password"))
    made = inst.json("account", "password", "painter", "--generate")
    assert made["sessions_ended"] is True and len(made["password"]) >= 16
    assert inst.db(lambda rt: check(rt, made["password"]))
    assert not inst.db(lambda rt: check(rt, "first password"))

    assert "too short" in one_error(inst.dl("account", "password", "painter", input="short\n"))
    assert "no local account named 'ghost'" in one_error(
        inst.dl("account", "password", "ghost", input="whatever long\n")
    )
    assert "no password" in one_error(inst.dl("account", "password", "painter", input=""))


def test_missing_accounts_are_one_error_line(cli_instance: CliInstance) -> None:
    """Every command names a missing account in one error line and exits 1."""
    for args in (("suspend", "ghost"), ("unsuspend", "ghost"), ("delete", "ghost", "--yes"),
                 ("rotate-key", "ghost", "--yes"), ("avatar", "ghost", "--generate")):  # fmt: skip
        assert "ghost" in one_error(cli_instance.dl("account", *args))
    r = cli_instance.dl("account", "suspend", INSTANCE_ACTOR_USERNAME)
    assert "the instance actor cannot be suspended" in one_error(r)


def test_avatar_from_a_file(cli_instance: CliInstance, tmp_path: Path) -> None:
    """`account avatar NAME FILE` stores the picture like `account set --avatar` (its URL
    on the account); neither FILE nor --generate, or an unreadable file, is one error."""
    inst = cli_instance
    inst.ok("account", "create", "painter", "--no-pictures")
    png = tmp_path / "me.png"
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 10, 10)).save(buf, "PNG")
    png.write_bytes(buf.getvalue())
    row = inst.json("account", "avatar", "painter", str(png))
    assert row["avatar"] and row["avatar"].endswith(".png")
    assert inst.json("account", "show", "painter")["avatar"] == row["avatar"]
    assert "FILE or --generate" in one_error(inst.dl("account", "avatar", "painter"))
    assert "cannot read" in one_error(
        inst.dl("account", "avatar", "painter", str(tmp_path / "missing.png"))
    )


def test_suspension_ends_web_sessions_and_hides_media(
    cli_instance: CliInstance, tmp_path: Path, monkeypatch: Any
) -> None:
    """While an account is suspended its open web session no longer counts, logging in is
    refused like a wrong password, and its media files answer 403; unsuspended, it can log
    in again and the files are served."""
    monkeypatch.setattr(HiddenMedia, "REFRESH_S", 0.0)  # read the suspensions at every file
    inst = cli_instance
    (tmp_path / "pw").write_text(PASSWORD + "\n")
    inst.ok("account", "create", "painter", "--no-pictures", "--password-file",
            str(tmp_path / "pw"))  # fmt: skip
    png = tmp_path / "me.png"
    Image.new("RGB", (32, 32), (10, 200, 10)).save(png, "PNG")
    avatar = inst.json("account", "avatar", "painter", str(png))["avatar"]

    async def scenario(rt: Runtime) -> None:
        async with serve_live(rt) as base, httpx.AsyncClient(base_url=base) as web:
            assert (await login(web, "painter")).status_code == 303
            assert (await web.get("/compose")).status_code == 200  # logged in
            assert (await web.get(avatar)).status_code == 200

            assert (await in_thread(inst, "account", "suspend", "painter")).exit_code == 0
            assert (await web.get("/compose")).status_code == 303  # back to the login page
            assert (await web.get(avatar)).status_code == 403
            async with httpx.AsyncClient(base_url=base) as other:
                assert (await login(other, "painter")).status_code == 401

            assert (await in_thread(inst, "account", "unsuspend", "painter")).exit_code == 0
            assert (await web.get(avatar)).status_code == 200
            async with httpx.AsyncClient(base_url=base) as other:
                assert (await login(other, "painter")).status_code == 303

    inst.db(scenario)


def test_delete_keeps_the_key_while_a_delivery_waits(cli_instance: CliInstance) -> None:
    """`delete --wait` does not wait for a server whose deliveries are paused: it returns,
    the Delete stays queued there and the private key is kept (the receiver still has to
    verify it); once that delivery has ended, the running server's hourly retention pass
    drops the key."""
    inst = cli_instance
    inst.ok("account", "create", "painter", "--no-pictures")

    async def arrange(rt: Runtime) -> None:
        async with rt.session() as s:
            s.add(Account(username="far", username_key="far", domain="paused.example",
                          local=False, uri="https://paused.example/users/far",
                          inbox_uri="https://paused.example/users/far/inbox",
                          shared_inbox_uri="https://paused.example/inbox"))  # fmt: skip
            s.add(DomainHealth(host="paused.example", paused=True))

    inst.db(arrange)
    done = inst.json("account", "delete", "painter", "--wait", "--yes", "--timeout", "60")
    assert done["inboxes"] == 1 and done["deliveries_ended"] == 0
    assert done["key_dropped"] is False

    async def end_it(rt: Runtime) -> tuple[bool, bool]:
        async with rt.session() as s:
            (row,) = await s.scalars(select(Delivery))
            painter = await s.scalar(select(Account).where(Account.username == "painter"))
            assert painter is not None
            had_key = painter.private_key_pem is not None
            assert row.status == "queued" and row.inbox_uri == "https://paused.example/inbox"
            row.status = "done"
        await RetentionWorker(rt).run_once()
        async with rt.sessions() as s:
            painter = await s.scalar(select(Account).where(Account.username == "painter"))
            assert painter is not None
            return had_key, painter.private_key_pem is None

    assert inst.db(end_it) == (True, True)


def test_account_list_and_show_say_who_is_suspended(cli_instance: CliInstance) -> None:
    """An admin sees a suspension where accounts are listed and shown, not only in its own
    command: `account list` has a state column, `show` and `--json` the time."""
    inst = cli_instance
    inst.ok("account", "create", "painter", "--no-pictures")
    inst.ok("account", "create", "poet", "--no-pictures")
    inst.ok("account", "suspend", "painter")
    rows = {r["username"]: r for r in inst.json("account", "list")}
    assert rows["painter"]["suspended_at"] is not None
    assert rows["poet"]["suspended_at"] is None
    table = inst.ok("account", "list").stdout
    assert "suspended" in table and "active" in table
    assert inst.json("account", "show", "painter")["suspended_at"] is not None
    inst.ok("account", "unsuspend", "painter")
    assert inst.json("account", "show", "painter")["suspended_at"] is None
