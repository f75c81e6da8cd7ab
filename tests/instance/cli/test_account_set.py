"""`dreamloom account set`: profile, AI persona and schedule; one-line errors; actor Update."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import select
from typer.testing import CliRunner

from instance.cli import app
from instance.errors import ProfileError
from instance.generation.personas import ProfileChanges, update_profile
from instance.storage.models import Account, Delivery, OutboundActivity
from tests.instance.delivery_helpers import add_follower

runner = CliRunner()


def dl(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


@pytest.fixture
def inst(tmp_path: Path) -> Path:
    d = tmp_path / "inst"
    for args in (
        ["init", "--domain", "127.0.0.1:8124", "--scheme", "http"],
        ["account", "create", "painter", "--ai", "--persona", "ink"],
        ["account", "create", "alice"],
    ):
        assert dl(*args, "--dir", str(d)).exit_code == 0
    return d


def show(inst: Path, name: str) -> dict:
    return json.loads(dl("account", "show", name, "--dir", str(inst), "--json").stdout)


def test_set_round_trip(inst: Path, tmp_path: Path) -> None:
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a heron\n\n# a comment\na lighthouse\na heron\n", encoding="utf-8")
    r = dl(
        "account", "set", "painter", "--display-name", "The Painter", "--bio", "Ink and paper.",
        "--persona", "sumi-e ink wash", "--steps", "2", "--size", "512x768",
        "--negative", "blurry", "--schedule", "1h30m", "--prompts-file", str(prompts),
        "--locked", "--dir", str(inst), "--json",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    row = json.loads(r.stdout)
    assert row == show(inst, "painter") | {"federated_update": True}  # name, bio, locked
    assert row["display_name"] == "The Painter" and row["bio"] == "Ink and paper."
    assert row["persona"] == {
        "style": "sumi-e ink wash",
        "recipe": {"steps": 2, "width": 512, "height": 768, "negativePrompt": "blurry"},
        "prompts": ["a heron", "a lighthouse"],
    }
    assert row["schedule_minutes"] == 90 and row["next_post_at"]
    assert row["manually_approves_followers"] is True

    r = dl("account", "set", "painter", "--schedule", "off", "--negative", "", "--unlocked",
           "--dir", str(inst))  # fmt: skip
    assert r.exit_code == 0 and "updated @painter@127.0.0.1:8124" in r.stdout
    row = show(inst, "painter")
    assert row["schedule_minutes"] is None and row["next_post_at"] is None
    assert row["persona"]["recipe"] == {"steps": 2, "width": 512, "height": 768}
    assert row["persona"]["style"] == "sumi-e ink wash"  # untouched
    assert row["manually_approves_followers"] is False


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["painter", "--schedule", "5x"], "--schedule: expected a duration like 90m, 2h"),
        (["painter", "--schedule", "2m"], "--schedule: expected a duration"),
        (["painter", "--size", "big"], "--size: size must look like 512x512"),
        (["painter", "--steps", "many"], "--steps: expected a whole number"),
        (["painter", "--steps", "500"], "invalid persona recipe: steps must be between 1 and 100"),
        (["painter", "--size", "30x30"], "invalid persona recipe: width must be a multiple of 8"),
        (["painter", "--prompts-file", "/nonexistent/p.txt"], "--prompts-file: cannot read"),
        (["painter"], "nothing to change"),
        (["alice", "--schedule", "2h"], "alice is not an AI account"),
        (["alice", "--persona", "ink"], "not an AI account"),
        (["nobody", "--bio", "x"], "no local account named 'nobody'"),
        (["instance_actor", "--bio", "x"], "the instance actor cannot be changed"),
        (["painter", "--avatar", "/nonexistent/a.png"], "--avatar: cannot read"),
        (["painter", "--header", __file__], "the header is not an image we can read"),
    ],
)
def test_set_errors_are_one_line(inst: Path, args: list[str], message: str) -> None:
    before = show(inst, "painter")
    r = dl("account", "set", *args, "--dir", str(inst))
    assert r.exit_code == 1
    assert message in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert show(inst, "painter") == before  # nothing half-applied


def test_pictures_from_files_and_generated(inst: Path, tmp_path: Path) -> None:
    """`--avatar FILE` / `--header FILE` set them now (and followers get an Update);
    `--generate-avatar` / `--generate-header` queue their jobs; a new AI account has both
    queued unless --no-pictures."""
    picture = tmp_path / "me.png"
    Image.new("RGB", (64, 64), "teal").save(picture)
    r = dl("account", "set", "alice", "--avatar", str(picture), "--dir", str(inst), "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["federated_update"] is True
    r = dl("account", "set", "alice", "--generate-header", "--dir", str(inst), "--json")
    assert r.exit_code == 0, r.output
    queue = json.loads(dl("queue", "--json", "--all", "--dir", str(inst)).stdout)
    assert sorted(j["account"] for j in queue) == ["alice", "painter", "painter"]
    made = dl("account", "create", "plain", "--ai", "--no-pictures", "--dir", str(inst), "--json")
    assert json.loads(made.stdout)["pictures_queued"] == []


def test_person_profile_can_change(inst: Path) -> None:
    r = dl("account", "set", "alice", "--bio", "Hi.", "--locked", "--dir", str(inst), "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["bio"] == "Hi."


# -- federation ----------------------------------------------------------------------------
async def _updates(rt) -> list[tuple[dict, list[str]]]:
    async with rt.sessions() as s:
        updates = select(OutboundActivity).where(OutboundActivity.kind == "Update")
        rows = list(await s.scalars(updates))
        return [
            (json.loads(r.body),
             list(await s.scalars(select(Delivery.inbox_uri).where(Delivery.activity_id == r.id))))
            for r in rows
        ]  # fmt: skip


async def test_profile_change_sends_actor_update_to_followers(runtime, new_account) -> None:
    painter = await new_account("painter", ai=True, display_name="Painter")
    await add_follower(runtime, painter, "mo", "m.example")

    async def change(**kw) -> bool:
        async with runtime.session() as s:
            account = await s.get(Account, painter.id)
            return await update_profile(s, runtime, account, ProfileChanges(**kw))

    assert await change(display_name="The Painter") is True
    ((update, inboxes),) = await _updates(runtime)
    assert inboxes == ["https://m.example/inbox"]  # the follower's shared inbox
    assert update["type"] == "Update" and update["actor"] == painter.uri
    assert update["object"]["id"] == painter.uri and update["object"]["type"] == "Service"
    assert update["object"]["name"] == "The Painter"
    assert "https://www.w3.org/ns/activitystreams" in update["@context"]
    assert update["id"].startswith(runtime.urls.base)

    assert await change(style="ink", steps=2, schedule_minutes=60) is False  # not in the actor
    assert await change(display_name="The Painter") is False  # nothing changed
    assert await change(locked=True) is True  # manuallyApprovesFollowers
    assert len(await _updates(runtime)) == 2


async def test_invalid_persona_recipe_is_refused(runtime, new_account) -> None:
    painter = await new_account("painter", ai=True)
    async with runtime.session() as s:
        account = await s.get(Account, painter.id)
        with pytest.raises(ProfileError, match="invalid persona recipe: steps"):
            await update_profile(s, runtime, account, ProfileChanges(steps=0))
