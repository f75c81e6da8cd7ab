"""Shared test setup: offline model hub, one torch thread, instances on loopback.

INSTANCE fixtures build a real instance directory (config.toml, SQLite database, instance
actor) under tmp_path; `client` talks to its ASGI app in-process, `live` serves it over real
HTTP on 127.0.0.1. Background workers never run on their own in tests: a test advances them.
"""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ.setdefault("OMP_NUM_THREADS", "1")
# The test command's own switches, read before the instance settings are scrubbed below.
TEST_POSTGRES_URL = os.environ.get("DREAMLOOM_TEST_POSTGRES_URL", "")
for _name in list(os.environ):
    if _name.startswith("DREAMLOOM_"):
        del os.environ[_name]  # a developer's own instance must not leak into tests

pytest_plugins = ["tests.instance_fixtures"]
