"""The repository's config.toml is the example, marked `example = true` (issue 15): a command
run in the repository root without --dir acts on the quick-start instance in ./instance-data,
never on an empty instance of the example's own; with no quick-start instance yet, one line
says how to make it. Run as a person would: the `dreamloom` command, from a copy of the
repository's layout."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from instance.settings import load_settings, locate_config
from tests.instance_fixtures import free_port

ROOT = Path(__file__).resolve().parents[3]
DREAMLOOM = Path(sys.executable).with_name("dreamloom")


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A directory laid out like the repository root: its example config.toml."""
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copy(ROOT / "config.toml", repo / "config.toml")
    return repo


def dreamloom(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DREAMLOOM_")}
    return subprocess.run(
        [str(DREAMLOOM), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_the_root_config_is_marked_as_the_example() -> None:
    """The marker is there, and loading the example on purpose still works."""
    assert "\nexample = true\n" in (ROOT / "config.toml").read_text()
    assert load_settings(ROOT / "config.toml", env={}).instance.domain == "localhost:8000"


def test_without_a_quick_start_instance_one_line_says_how_to_make_it(checkout: Path) -> None:
    """No ./instance-data yet: exit 1, one `error:` line naming start.sh and init; and the
    example's own data directory is not created behind the admin's back."""
    r = dreamloom(checkout, "account", "list")
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: no quick-start instance at"), r.stderr
    assert "bash scripts/start.sh" in lines[0] and "dreamloom init" in lines[0]
    assert not (checkout / "data").exists() and not (checkout / "instance-data").exists()


def test_commands_in_the_root_act_on_the_quick_start_instance(checkout: Path) -> None:
    """`init` and later commands run in the root without --dir all use ./instance-data: the
    account made there is the one `account show` finds, with --dir or without."""
    domain = f"127.0.0.1:{free_port()}"
    r = dreamloom(checkout, "init", "--domain", domain, "--scheme", "http")
    assert r.returncode == 0, r.stderr
    assert (checkout / "instance-data" / "config.toml").is_file()
    r = dreamloom(checkout, "account", "create", "painter", "--ai", "--no-pictures")
    assert r.returncode == 0, r.stderr
    r = dreamloom(checkout, "account", "show", "painter", "--json")
    assert r.returncode == 0, r.stderr
    assert f'"handle": "@painter@{domain}"' in r.stdout
    r = dreamloom(checkout, "account", "show", "painter", "--dir", "instance-data")
    assert r.returncode == 0, r.stderr
    assert not (checkout / "data").exists()  # the example's data_dir was never used


def test_an_instance_config_in_the_directory_is_used_as_before(
    tmp_path: Path, checkout: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A config.toml without the marker is the instance itself, as always; the example's
    directory points at its instance-data."""
    (tmp_path / "config.toml").write_text('[instance]\ndomain = "a.example"\n')
    monkeypatch.chdir(tmp_path)
    assert locate_config(None, env={}) == tmp_path / "config.toml"
    monkeypatch.chdir(checkout)
    assert locate_config(None, env={}) == checkout / "instance-data" / "config.toml"
