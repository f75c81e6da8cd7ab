"""CLI fixtures: a real instance directory made by `dreamloom init`, on SQLite and on the real
PostgreSQL that scripts/test.sh starts, driven through the `dreamloom` entry point.

    def test_something(cli_instance: CliInstance) -> None:
        r = cli_instance.dl("account", "create", "bot", "--ai")
        assert r.exit_code == 0, r.output

`cli_instance` is on the suite's database (SQLite, or PostgreSQL when
DREAMLOOM_TEST_DATABASE=postgresql); `sqlite_instance` is on SQLite in either run (for commands
that touch no database, or that are about files on one host).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from click.testing import Result
from typer.testing import CliRunner

from instance.cli import app
from instance.runtime import Runtime, open_runtime
from instance.settings import Settings, load_settings
from instance.setup import write_config
from tests.instance_fixtures import free_port, on_postgres, suite_database_url

T = TypeVar("T")
runner = CliRunner()


@dataclass
class CliInstance:
    directory: Path
    domain: str
    database: str  # "sqlite" or "postgres"

    @property
    def base_url(self) -> str:
        return f"http://{self.domain}"

    def dl(self, *args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
        """Run `dreamloom ARGS --dir <this instance>` in-process, as a person would."""
        return runner.invoke(
            app, [*args, "--dir", str(self.directory)], input=input, env=env,
            catch_exceptions=False,
        )  # fmt: skip

    def ok(self, *args: str, input: str | None = None) -> Result:
        """`dl`, asserting exit 0."""
        r = self.dl(*args, input=input)
        assert r.exit_code == 0, r.output
        return r

    def json(self, *args: str) -> Any:
        """`dl ARGS --json`, parsed."""
        return json.loads(self.ok(*args, "--json").stdout)

    def settings(self) -> Settings:
        return load_settings(self.directory / "config.toml", env={})

    def db(self, fn: Callable[[Runtime], Awaitable[T]]) -> T:
        """Run `fn(runtime)` against this instance's database (to arrange or inspect rows)."""

        async def go() -> T:
            rt = await open_runtime(self.settings())
            try:
                return await fn(rt)
            finally:
                await rt.aclose()

        return asyncio.run(go())


def make_cli_instance(directory: Path, database_url: str = "") -> CliInstance:
    domain = f"127.0.0.1:{free_port()}"
    if database_url:
        # the config init would write, pointed at PostgreSQL first: init keeps an existing
        # config.toml, then migrates that database and makes the instance actor there
        write_config(directory, domain, "http", allow_private_addresses=True, model="builtin:tiny")
        config = directory / "config.toml"
        config.write_text(f'{config.read_text()}\n[database]\nurl = "{database_url}"\n')
    r = runner.invoke(
        app,
        ["init", "--domain", domain, "--scheme", "http", "--allow-private-addresses",
         "--model", "builtin:tiny", "--dir", str(directory)],
        catch_exceptions=False,
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    return CliInstance(directory, domain, "postgres" if database_url else "sqlite")


@pytest.fixture
def sqlite_instance(tmp_path: Path) -> CliInstance:
    return make_cli_instance(tmp_path / "inst")


@pytest.fixture(params=["postgres" if on_postgres() else "sqlite"])
def cli_instance(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CliInstance]:
    yield make_cli_instance(tmp_path / "inst", suite_database_url())
