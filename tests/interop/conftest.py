"""Session fixtures for the interop suite, and the results table in docs/interop.md.

Fixtures (all session-scoped, all on 127.0.0.1):

- `peer_tools`: the peer venvs and npm JSON-LD contexts under `.interop-cache/` (peers.py);
- `dreamloom`: a real `dreamloom serve --workers` process with the accounts below;
- `herd`: a bovine-herd server; `herd.register(name)` makes a user driven by herd_client.py;
- `verify_actor`, `one_actor`: fediverse-pasture servers.

Every interop test carries `@pytest.mark.interop` and `@pytest.mark.capability(PEER, WHAT)`.
After a session that ran every interop module in full, `docs/interop.md` is rewritten from the
outcomes (one row per capability, one column per peer) when the results changed; the same
results on another day leave the file, and a checkout, as they were.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.instance_fixtures import on_postgres
from tests.interop.peers import (
    Dreamloom,
    Herd,
    Pasture,
    PeerError,
    PeerTools,
    free_port,
    install_peers,
)

AI_ACCOUNT = "painter"  # Service
PERSON_ACCOUNT = "wren"  # Person
INPUTS_ACCOUNT = "inputs_target"  # Service, receives every fediverse-pasture-inputs variant
FOLLOWER_ACCOUNT = "sketcher"  # Service, follows the bovine user

INTEROP_DIR = Path(__file__).resolve().parent
DOC = INTEROP_DIR.parents[1] / "docs" / "interop.md"
PEER_COLUMNS = [
    "bovine-herd",
    "fediverse-pasture verify_actor",
    "fediverse-pasture one_actor + inputs",
    "Mastodon",
    "GoToSocial",
    "Misskey",
    "Pixelfed",
    "Fedify",
]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "capability(peer, what): an interop result row for docs/interop.md"
    )


# -- peers -----------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def peer_tools() -> PeerTools:
    try:
        return install_peers()
    except PeerError as exc:
        pytest.fail(f"could not install the interop peers:\n{exc}", pytrace=False)


@pytest.fixture(scope="session")
def dreamloom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dreamloom]:
    instance = Dreamloom(tmp_path_factory.mktemp("dreamloom"), free_port())
    instance.init()
    instance.create_account(AI_ACCOUNT, ai=True)
    instance.create_account(PERSON_ACCOUNT)
    instance.create_account(INPUTS_ACCOUNT, ai=True)
    instance.create_account(FOLLOWER_ACCOUNT, ai=True)
    instance.start()
    try:
        yield instance
    finally:
        instance.stop()


@pytest.fixture(scope="session")
def herd(peer_tools: PeerTools, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Herd]:
    server = Herd(
        peer_tools.herd, tmp_path_factory.mktemp("herd"), free_port(), peer_tools.node_modules
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _pasture(kind: str, tools: PeerTools, factory: pytest.TempPathFactory) -> Pasture:
    return Pasture(kind, tools.pasture, factory.mktemp(kind), free_port(), tools.node_modules)


@pytest.fixture(scope="session")
def verify_actor(
    peer_tools: PeerTools, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pasture]:
    server = _pasture("verify_actor", peer_tools, tmp_path_factory)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def one_actor(peer_tools: PeerTools, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pasture]:
    server = _pasture("one_actor", peer_tools, tmp_path_factory)
    server.start()
    try:
        yield server
    finally:
        server.stop()


# -- the results table ----------------------------------------------------------------------
_outcomes: dict[str, dict[str, Any]] = {}
_collected_modules: set[str] = set()
_partial = False


def _capability(item: pytest.Item) -> tuple[str, str] | None:
    mark = item.get_closest_marker("capability")
    if mark is None:
        return None
    peer, what = mark.args
    return str(peer), str(what)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.path)).parent == INTEROP_DIR:
            _collected_modules.add(Path(str(item.path)).name)


def pytest_deselected(items: list[pytest.Item]) -> None:
    global _partial
    if any(_capability(i) for i in items):
        _partial = True


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    cap = _capability(item)
    if cap is None:
        return
    entry = _outcomes.setdefault(
        item.nodeid,
        {"peer": cap[0], "what": cap[1], "outcome": "passed", "reason": "", "test": item.name},
    )
    if report.failed:
        entry["outcome"] = "failed"
        if not entry["reason"]:
            entry["reason"] = _first_line(report)
    elif report.skipped and entry["outcome"] != "failed":
        entry["outcome"] = "xfailed" if hasattr(report, "wasxfail") else "skipped"


def _first_line(report: pytest.TestReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    text = str(getattr(crash, "message", "") or report.longreprtext or "")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return (lines[0] if lines else report.outcome)[:200]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    modules = {p.name for p in INTEROP_DIR.glob("test_*.py")}
    if _partial or not _outcomes or not modules <= _collected_modules:
        return  # a partial run: keep the table from the last full run
    if on_postgres():
        return  # the table is the SQLite run's (the default deployment); failures here fail
    if exitstatus in (pytest.ExitCode.INTERRUPTED, pytest.ExitCode.INTERNAL_ERROR):
        return
    table = render_table(_outcomes)
    if DOC.is_file() and undated(DOC.read_text(encoding="utf-8")) == undated(table):
        return  # the same results: the tracked file (and a CI checkout) stays unchanged
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(table, encoding="utf-8")


def undated(text: str) -> str:
    """The table without its run date: only a change of results rewrites docs/interop.md."""
    return re.sub(r"Last full run: \d{4}-\d{2}-\d{2}", "Last full run:", text)


SYMBOL = {"passed": "✅ pass", "failed": "❌ FAIL", "skipped": "⏭ skipped", "xfailed": "⚠ xfail"}


def render_table(outcomes: dict[str, dict[str, Any]]) -> str:
    cells: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    rows: list[str] = []
    peers = list(PEER_COLUMNS)
    for entry in outcomes.values():
        if entry["what"] not in rows:
            rows.append(entry["what"])
        if entry["peer"] not in peers:
            peers.append(entry["peer"])
        cells[entry["what"]][entry["peer"]].append(entry["outcome"])
    used = [p for p in peers if any(p in cells[r] for r in rows)]

    def cell(results: list[str]) -> str:
        if not results:
            return ""
        passed = results.count("passed")
        worst = next((st for st in ("failed", "skipped", "xfailed") if st in results), "passed")
        if len(results) == 1:
            return SYMBOL[worst]
        return f"{SYMBOL[worst]} ({passed}/{len(results)})"

    total = len(outcomes)
    passed = sum(1 for e in outcomes.values() if e["outcome"] == "passed")
    lines = [
        "# Interoperability results",
        "",
        "<!-- Generated by tests/interop/conftest.py after a full run of the interop suite"
        " (`bash .ci/run` or `pytest tests/interop`). Do not edit by hand. -->",
        "",
        f"Last full run: {dt.date.today().isoformat()} — {passed} of {total} capability checks "
        "pass. Peers run from PyPI on 127.0.0.1 (tests/interop/requirements/*.txt pins them); "
        "the Mastodon, GoToSocial, Misskey, Pixelfed and Other columns replay payloads those "
        "servers send (tests/interop/fixtures/) against an in-process Dreamloom inbox. "
        "(n/m): n of m checks (actor kinds, input sets) pass.",
        "",
        "| capability | " + " | ".join(used) + " |",
        "|---|" + "---|" * len(used),
    ]
    for row in rows:
        lines.append(f"| {row} | " + " | ".join(cell(cells[row][p]) for p in used) + " |")
    failures = [e for e in outcomes.values() if e["outcome"] != "passed"]
    if failures:
        lines += ["", "## Not passing yet", ""]
        for e in failures:
            reason = e["reason"].replace("|", "\\|") or e["outcome"]
            lines.append(f"- **{e['peer']}** — {e['what']} (`{e['test']}`): {reason}")
    return "\n".join(lines) + "\n"
