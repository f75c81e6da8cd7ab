"""scripts/start.sh says what it does (issue 15): its header names the default instance
directory it really uses, which is the quick-start directory the settings loader falls back
to from the repository root."""

from __future__ import annotations

import re
from pathlib import Path

from instance.settings import QUICK_START_DIR

START = Path(__file__).resolve().parents[2] / "scripts" / "start.sh"


def test_the_header_names_the_default_directory() -> None:
    text = START.read_text()
    header = "\n".join(line for line in text.splitlines() if line.startswith("#"))
    (default,) = re.findall(r'^DIR=\$\{DIR:-([^}]+)\}$', text, re.MULTILINE)
    assert default == f"./{QUICK_START_DIR}"
    assert f"DIR (default {default})" in header, header
