"""The dreamloom CLI: init, accounts, and the errors a person can fix (foundation issue)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from instance.cli import app
from instance.content.posting import Draft, publish
from instance.content.quotes import answer_quote_request
from instance.runtime import open_runtime
from instance.settings import load_settings
from instance.setup import ensure_instance
from instance.storage.models import Account, OutboundActivity

runner = CliRunner()


def dl(*args: str, env: dict[str, str] | None = None):
    return runner.invoke(app, list(args), env=env, catch_exceptions=False)


@pytest.fixture
def inst(tmp_path: Path) -> Path:
    d = tmp_path / "inst"
    r = dl("init", "--domain", "127.0.0.1:8123", "--scheme", "http", "--dir", str(d))
    assert r.exit_code == 0, r.output
    return d


def test_init_creates_everything(inst: Path) -> None:
    assert (inst / "config.toml").is_file()
    assert (inst / "data" / "dreamloom.db").is_file()
    assert (inst / "data" / "media").is_dir()
    # the instance's own C2PA credentials, which sign every generated image; the key private
    key = inst / "data" / "c2pa" / "c2pa-key.pem"
    assert key.is_file() and (key.stat().st_mode & 0o777) == 0o600
    assert (inst / "data" / "c2pa" / "c2pa-chain.pem").is_file()
    shown = dl("account", "list", "--dir", str(inst), "--json")
    assert json.loads(shown.stdout) == []  # the instance actor is not a user account


def test_init_twice_changes_nothing(inst: Path) -> None:
    config = (inst / "config.toml").read_text()
    dl("account", "create", "bot", "--ai", "--dir", str(inst))
    before = json.loads(dl("account", "show", "bot", "--dir", str(inst), "--json").stdout)
    r = dl("init", "--domain", "other.example", "--dir", str(inst))
    assert r.exit_code == 0
    assert "kept existing" in r.stdout
    assert (inst / "config.toml").read_text() == config
    after = json.loads(dl("account", "show", "bot", "--dir", str(inst), "--json").stdout)
    assert after == before


def test_account_create_list_show(inst: Path) -> None:
    r = dl(
        "account",
        "create",
        "painter",
        "--ai",
        "--display-name",
        "The Painter",
        "--bio",
        "Oils.",
        "--persona",
        "impressionist oil painting",
        "--dir",
        str(inst),
    )
    assert r.exit_code == 0, r.output
    assert "@painter@127.0.0.1:8123" in r.stdout
    dl("account", "create", "alice", "--dir", str(inst))
    rows = json.loads(dl("account", "list", "--dir", str(inst), "--json").stdout)
    assert [(r["username"], r["type"]) for r in rows] == [
        ("painter", "Service"),
        ("alice", "Person"),
    ]
    shown = json.loads(dl("account", "show", "painter", "--dir", str(inst), "--json").stdout)
    assert shown["actor"] == "http://127.0.0.1:8123/users/painter"
    assert shown["persona"] == {"style": "impressionist oil painting"}
    assert shown["display_name"] == "The Painter"


def test_password_file(inst: Path, tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_text("correct horse battery\n")
    assert (
        dl("account", "create", "bob", "--password-file", str(pw), "--dir", str(inst)).exit_code
        == 0
    )
    short = tmp_path / "short"
    short.write_text("x\n")
    r = dl("account", "create", "carol", "--password-file", str(short), "--dir", str(inst))
    assert r.exit_code == 1 and "password too short" in r.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["account", "create", "Bad-Name"], "invalid account name 'Bad-Name'"),
        (["account", "create", "instance_actor"], "is reserved"),
        (["account", "create", "x" * 31], "invalid account name"),
        (["account", "show", "ghost"], "no local account named 'ghost'"),
    ],
)
def test_account_errors_are_one_line(inst: Path, args: list[str], message: str) -> None:
    r = dl(*args, "--dir", str(inst))
    assert r.exit_code == 1
    assert message in r.stderr
    assert "Traceback" not in r.output


def test_taken_name(inst: Path) -> None:
    assert dl("account", "create", "bot", "--dir", str(inst)).exit_code == 0
    r = dl("account", "create", "bot", "--ai", "--dir", str(inst))
    assert r.exit_code == 1
    assert "already taken" in r.stderr


def test_missing_config_is_a_clear_error(tmp_path: Path) -> None:
    r = dl("account", "list", "--dir", str(tmp_path / "nowhere"))
    assert r.exit_code == 1
    assert "no configuration at" in r.stderr and "dreamloom init" in r.stderr


def test_broken_config_key_named(inst: Path) -> None:
    with (inst / "config.toml").open("a") as f:
        f.write("\n[server]\nprot = 80\n")
    r = dl("account", "list", "--dir", str(inst))
    assert r.exit_code == 1
    assert "unknown key [server] prot" in r.stderr and str(inst / "config.toml") in r.stderr


def test_dreamloom_config_env(inst: Path) -> None:
    dl("account", "create", "bot", "--dir", str(inst))
    r = dl("account", "list", "--json", env={"DREAMLOOM_CONFIG": str(inst / "config.toml")})
    assert [row["username"] for row in json.loads(r.stdout)] == ["bot"]


def test_console_script_help_and_error_exit(tmp_path: Path) -> None:
    exe = shutil.which("dreamloom") or os.path.join(os.path.dirname(sys.executable), "dreamloom")
    for sub in ([], ["init"], ["serve"], ["account", "create"], ["db", "upgrade"]):
        r = subprocess.run([exe, *sub, "--help"], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, (sub, r.stderr)
        assert "Usage" in r.stdout
    r = subprocess.run(
        [exe, "account", "list", "--dir", str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 1
    assert r.stderr.strip().count("\n") == 0  # one line


def test_revoke_remix_takes_an_approval_back(inst: Path) -> None:
    """`dreamloom revoke-remix NAME URL`: the stamp we issued for a remote remix of NAME's post
    answers 404 from then on and a Delete of it is queued; saying it twice is harmless, and
    a remix NAME never approved is a clear error."""
    dl("account", "create", "painter", "--ai", "--dir", str(inst))
    remix = "https://remote.example/users/rem/statuses/1"

    async def approve() -> None:
        rt = await open_runtime(load_settings(inst / "config.toml"))
        try:
            await ensure_instance(rt)
            async with rt.session() as s:
                painter = await s.scalar(select(Account).where(Account.username == "painter"))
                assert painter is not None
                ours = await publish(s, rt, painter, Draft(text="sea"))
                rem = Account(username="rem", username_key="rem", domain="remote.example",
                              local=False, uri="https://remote.example/users/rem",
                              inbox_uri="https://remote.example/users/rem/inbox")  # fmt: skip
                s.add(rem)
                await s.flush()
                request = {"id": f"{rem.uri}/qr/1", "type": "QuoteRequest", "actor": rem.uri,
                           "object": ours.uri, "instrument": remix}  # fmt: skip
                assert await answer_quote_request(s, rt, request, rem) == "accepted"
        finally:
            await rt.aclose()

    async def deletes() -> list[str]:
        rt = await open_runtime(load_settings(inst / "config.toml"))
        try:
            async with rt.sessions() as s:
                rows = await s.scalars(
                    select(OutboundActivity).where(OutboundActivity.kind == "Delete"))  # fmt: skip
                return [json.loads(r.body)["object"] for r in rows]
        finally:
            await rt.aclose()

    asyncio.run(approve())
    r = dl("revoke-remix", "painter", remix, "--dir", str(inst), "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["state"] == "revoked"
    (stamp,) = asyncio.run(deletes())
    assert "/quote_authorizations/" in stamp
    again = dl("revoke-remix", "painter", remix, "--dir", str(inst), "--json")
    assert json.loads(again.stdout)["state"] == "already revoked"
    assert len(asyncio.run(deletes())) == 1
    unknown = runner.invoke(app, ["revoke-remix", "painter", "https://x.example/1",
                                  "--dir", str(inst)])  # fmt: skip
    assert unknown.exit_code != 0 and "has not approved a remix" in unknown.output


def test_an_unknown_timeline_is_one_line_naming_every_kind(inst: Path) -> None:
    """`timeline --kind bogus` printed a 59-line traceback, and its message left out `own`."""
    dl("account", "create", "alice", "--dir", str(inst))
    r = runner.invoke(app, ["timeline", "alice", "--kind", "bogus", "--dir", str(inst)])
    assert r.exit_code == 1 and "Traceback" not in r.output
    (line,) = [x for x in r.stderr.splitlines() if x.strip()]
    assert "unknown timeline 'bogus'" in line and "own" in line
