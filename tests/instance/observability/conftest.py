"""Observability tests run each database check on SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest

from instance.settings import Settings
from tests.instance_fixtures import make_settings


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def settings(request: pytest.FixtureRequest, tmp_path) -> Settings:
    """An instance on SQLite, and the same on a fresh PostgreSQL database."""
    if request.param == "postgresql":
        url = request.getfixturevalue("pg_database")
        return make_settings(tmp_path / "instance", database={"url": url})
    return make_settings(tmp_path / "instance")
