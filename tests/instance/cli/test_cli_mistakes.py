"""A mistake on the command line is one `error:` line and exit code 1, never a traceback
(issue 15); DREAMLOOM_TRACEBACK=1 brings the traceback back for whoever debugs it."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

from instance.cli.common import QUIET_LIBRARIES, quiet_library_warnings
from tests.instance.cli.conftest import CliInstance, make_cli_instance

DREAMLOOM = Path(sys.executable).with_name("dreamloom")


def _dreamloom(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "DREAMLOOM_TRACEBACK"}
    return subprocess.run(
        [str(DREAMLOOM), *args], capture_output=True, text=True, timeout=120,
        env={**environ, **(env or {})},
    )  # fmt: skip


def _unreachable_database(tmp_path: Path) -> Path:
    """An instance whose config names a PostgreSQL nobody listens on: a real admin mistake
    that no command checks for, so it reaches the entry point as an unexpected exception."""
    inst = make_cli_instance(tmp_path / "inst")
    config = inst.directory / "config.toml"
    url = "postgresql+asyncpg://u:p@127.0.0.1:1/nothing"
    config.write_text(f'{config.read_text()}\n[database]\nurl = "{url}"\n')
    return inst.directory


def test_unexpected_exception_is_one_error_line_and_exit_1(tmp_path: Path) -> None:
    """An exception no command expected: stderr is exactly one `error:` line naming it and
    telling how to see the traceback; no traceback; exit code 1."""
    directory = _unreachable_database(tmp_path)
    r = _dreamloom("account", "list", "--dir", str(directory))
    assert r.returncode == 1, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("error: ") and "ConnectionRefusedError" in lines[0]
    assert "DREAMLOOM_TRACEBACK=1" in lines[0]
    assert "Traceback" not in r.stderr + r.stdout


def test_traceback_on_request(tmp_path: Path) -> None:
    """DREAMLOOM_TRACEBACK=1: the same mistake shows the full traceback."""
    directory = _unreachable_database(tmp_path)
    r = _dreamloom("account", "list", "--dir", str(directory), env={"DREAMLOOM_TRACEBACK": "1"})
    assert r.returncode != 0
    assert "Traceback (most recent call last)" in r.stderr
    assert "ConnectionRefusedError" in r.stderr


def test_missing_account_stays_one_line(tmp_path: Path) -> None:
    """A mistake a command does expect (no such account) is still one line, exit 1."""
    inst = make_cli_instance(tmp_path / "inst")
    r = _dreamloom("account", "show", "nobody", "--dir", str(inst.directory))
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [r.stderr.strip()]
    assert r.stderr.startswith("error: ") and "nobody" in r.stderr


def test_library_warnings_are_filtered_in_one_place() -> None:
    """A FutureWarning or UserWarning raised from inside transformers/diffusers/torchvision is
    not shown; our own warnings still are."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.resetwarnings()
        warnings.simplefilter("always")
        quiet_library_warnings()
        for module in ("transformers.utils.generic", "diffusers.models", "torchvision.io"):
            warnings.warn_explicit("noise", FutureWarning, "x.py", 1, module=module)
            warnings.warn_explicit("noise", UserWarning, "x.py", 1, module=module)
        warnings.warn_explicit("ours", UserWarning, "x.py", 1, module="instance.cli")
    assert [str(w.message) for w in caught] == ["ours"]
    assert "diffusers" in QUIET_LIBRARIES


def test_persona_is_shown_as_text(cli_instance: CliInstance) -> None:
    """`account show` prints an AI account's persona as readable text, not a Python dict."""
    cli_instance.ok("account", "create", "painter", "--ai", "--persona", "ink wash")
    r = cli_instance.ok("account", "show", "painter")
    persona_line = next(line for line in r.stdout.splitlines() if line.startswith("persona:"))
    assert "style: ink wash" in persona_line
    assert "{" not in persona_line and "'" not in persona_line
    # --json keeps the structure for scripts
    assert cli_instance.json("account", "show", "painter")["persona"]["style"] == "ink wash"
