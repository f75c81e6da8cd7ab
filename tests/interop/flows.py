"""What the ordered flow modules (test_herd_flows.py, test_fedify_flows.py) share: timeouts,
small readers of ActivityStreams values, the Dreamloom CLI, and the state one test leaves for
the next."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest

from tests.interop.peers import Dreamloom

POST_TIMEOUT_S = 240.0  # generation on CPU with the builtin test model, then delivery
FLOW_TIMEOUT_S = 45.0


class Steps(dict[str, Any]):
    """What earlier tests of a module made, for the tests after it."""

    def need(self, key: str, why: str) -> Any:
        if key not in self:
            pytest.fail(f"needs {why} (an earlier test of this module failed)", pytrace=False)
        return self[key]


def ident(value: Any) -> Any:
    return value.get("id") if isinstance(value, dict) else value


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def dreamloom_cli(dreamloom: Dreamloom, *args: str) -> subprocess.CompletedProcess[str]:
    """Run a Dreamloom CLI command; a missing command fails with the feature it needs."""
    proc = dreamloom.cli(*args)
    if proc.returncode != 0:
        missing = "No such command" in proc.stderr or "No such command" in proc.stdout
        hint = f"the `dreamloom {args[0]}` command does not exist yet; " if missing else ""
        pytest.fail(
            f"{hint}`dreamloom {' '.join(args)}` exited {proc.returncode}\n"
            f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}",
            pytrace=False,
        )
    return proc


def collection_total(dreamloom: Dreamloom, url: str) -> int:
    return int(dreamloom.get_json(url).get("totalItems", -1))
