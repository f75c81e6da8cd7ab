"""Shared test setup: offline model hub, one torch thread, instances on loopback.

INSTANCE fixtures build a real instance directory (config.toml, database, instance actor)
under tmp_path; `client` talks to its ASGI app in-process, `live` serves it over real HTTP on
127.0.0.1. Background workers never run on their own in tests: a test advances them.

The database under every instance is the suite's choice: SQLite files by default, or with
DREAMLOOM_TEST_DATABASE=postgresql a fresh database per instance on the PostgreSQL server
named by DREAMLOOM_TEST_POSTGRES_URL (scripts/test.sh starts one and runs the suite both
ways). Tests about SQLite itself are marked `sqlite_only` and skipped on PostgreSQL.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ.setdefault("OMP_NUM_THREADS", "1")
# The test command's own switches, read before the instance settings are scrubbed below.
TEST_POSTGRES_URL = os.environ.get("DREAMLOOM_TEST_POSTGRES_URL", "")
TEST_DATABASES = ("sqlite", "postgresql")
TEST_DATABASE = os.environ.get("DREAMLOOM_TEST_DATABASE", "") or "sqlite"
for _name in list(os.environ):
    if _name.startswith("DREAMLOOM_"):
        del os.environ[_name]  # a developer's own instance must not leak into tests

pytest_plugins = ["tests.instance_fixtures"]


def pytest_configure(config: pytest.Config) -> None:
    if TEST_DATABASE not in TEST_DATABASES:
        raise pytest.UsageError(
            f"DREAMLOOM_TEST_DATABASE={TEST_DATABASE!r}: "
            f"expected one of {', '.join(TEST_DATABASES)}"
        )
    if TEST_DATABASE == "postgresql" and not TEST_POSTGRES_URL:
        raise pytest.UsageError(
            "DREAMLOOM_TEST_DATABASE=postgresql needs DREAMLOOM_TEST_POSTGRES_URL (a PostgreSQL "
            "server the tests may create databases on; scripts/test.sh starts one)"
        )


def pytest_report_header(config: pytest.Config) -> str:
    where = f" on {TEST_POSTGRES_URL}" if TEST_DATABASE == "postgresql" else ""
    return f"dreamloom test database: {TEST_DATABASE}{where}"


# Test packages the database switch cannot reach: the protocol, WebFinger and image-generation
# libraries build no instance, and scripts/start.sh makes the self-hoster's SQLite instance by
# design. The PostgreSQL run leaves them to the SQLite run.
NOT_ON_THE_SUITE_DATABASE = {
    Path(__file__).parent / "activitypub": "no database involved",
    Path(__file__).parent / "webfinger": "no database involved",
    Path(__file__).parent / "generator": "no database involved",
    Path(__file__).parent / "scripts": "the scripts' instance is SQLite by design",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if TEST_DATABASE != "postgresql":
        return
    for item in items:
        here = NOT_ON_THE_SUITE_DATABASE.items()
        elsewhere = [why for package, why in here if item.path.is_relative_to(package)]
        if elsewhere:
            item.add_marker(pytest.mark.skip(reason=f"{elsewhere[0]}: runs on SQLite"))
            continue
        marker = item.get_closest_marker("sqlite_only")
        if marker is not None:
            why = marker.args[0] if marker.args else "checks SQLite itself"
            item.add_marker(pytest.mark.skip(reason=f"sqlite_only ({why}): runs on SQLite"))
        elif "sqlite" in _string_params(item):
            # parametrised over both databases: the SQLite case is the SQLite run's
            item.add_marker(pytest.mark.skip(reason="the SQLite case: runs on SQLite"))
        elif "sqlite_instance" in getattr(item, "fixturenames", ()):
            # an SQLite instance by design (no database involved, or files on one host): the
            # SQLite run covers it, and a second run here would test nothing new
            why = "on an SQLite instance by design: runs on SQLite"
            item.add_marker(pytest.mark.skip(reason=why))


def _string_params(item: pytest.Item) -> set[str]:
    callspec = getattr(item, "callspec", None)
    values = callspec.params.values() if callspec is not None else ()
    return {value for value in values if isinstance(value, str)}
