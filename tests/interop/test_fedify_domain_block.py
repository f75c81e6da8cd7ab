"""A domain block against an independent peer: the Fedify one (tests/interop/fedify_peer/).

Dreamloom runs here as its own process under the name `localhost:PORT` (bound to 127.0.0.1),
so that blocking Fedify's domain, `127.0.0.1`, is not blocking itself. Before the block the
Fedify actor follows a Dreamloom account and gets the Accept (the path works both ways);
after `dreamloom domain block 127.0.0.1`, the follow is gone, Fedify's Follow and Note are
answered 403 (Fedify's outbox reports it) and leave no row, and nothing Dreamloom does
reaches Fedify any more.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.interop.flows import FLOW_TIMEOUT_S, ident
from tests.interop.peers import Dreamloom, Fedify, PeerError, ensure_fedify, eventually, free_port

pytestmark = pytest.mark.interop


class LocalhostDreamloom(Dreamloom):
    """A Dreamloom process whose domain is `localhost:PORT` (it still binds 127.0.0.1)."""

    @property
    def host(self) -> str:
        return f"localhost:{self.port}"


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalhostDreamloom, Fedify]]:
    try:
        node_modules = ensure_fedify()
    except PeerError as exc:
        pytest.fail(f"could not install the Fedify peer:\n{exc}", pytrace=False)
    home: Path = tmp_path_factory.mktemp("dreamloom-blocks")
    dreamloom = LocalhostDreamloom(home, free_port())
    dreamloom.init()
    dreamloom.create_account("painter")
    dreamloom.start()
    fedify = Fedify(node_modules, tmp_path_factory.mktemp("fedify-blocks"), free_port())
    fedify.start()
    try:
        yield dreamloom, fedify
    finally:
        fedify.stop()
        dreamloom.stop()


def explain(dreamloom: Dreamloom, fedify: Fedify) -> Any:
    return lambda: f"{dreamloom.work_summary()}\n{fedify.summary()}"


def follows_from(dreamloom: Dreamloom, actor: str) -> int:
    rows = dreamloom.query(
        "SELECT count(*) AS n FROM follows f JOIN accounts a ON a.id = f.follower_id "
        "WHERE a.uri = :them", them=actor,
    )  # fmt: skip
    return int(rows[0]["n"])


def test_a_blocked_fedify_peer_gets_403_and_nothing_more(
    pair: tuple[LocalhostDreamloom, Fedify],
) -> None:
    """Fedify's Follow and Note get 403 with no row once its domain is blocked, the follow
    made before is removed, and nothing is delivered to it after the block."""
    dreamloom, fedify = pair
    painter = dreamloom.actor("painter")
    sent = fedify.control("follow", handle=dreamloom.handle("painter"))

    def accepted() -> bool:
        return any(
            r["type"] == "Accept" and r["actor"] == painter and ident(r["json"].get("object"))
            == sent["id"] for r in fedify.received()
        )  # fmt: skip

    eventually(accepted, timeout=FLOW_TIMEOUT_S, what="the Accept of Fedify's Follow",
               explain=explain(dreamloom, fedify))  # fmt: skip
    eventually(
        lambda: follows_from(dreamloom, fedify.actor_id) == 1,
        timeout=FLOW_TIMEOUT_S,
        what="Dreamloom to record the follow",
        explain=explain(dreamloom, fedify),
    )

    dreamloom.cli_ok("domain", "block", "127.0.0.1", "--yes")
    assert follows_from(dreamloom, fedify.actor_id) == 0  # removed by the suspend
    reached_fedify = len(fedify.requests())
    errors_before = len(fedify.errors())
    items_before = dreamloom.query(
        "SELECT count(*) AS n FROM inbox_items WHERE actor_uri = :a", a=fedify.actor_id
    )[0]["n"]

    fedify.control("follow", handle=dreamloom.handle("painter"))
    fedify.control("note", to=[painter], mentions=[painter], html="<p>still there?</p>")

    def refused() -> list[dict[str, Any]]:
        return [e for e in fedify.errors()[errors_before:] if "403" in e["error"]]

    eventually(lambda: len(refused()) >= 2, timeout=FLOW_TIMEOUT_S,
               what="Fedify's outbox to report two 403s (Follow, Note)",
               explain=explain(dreamloom, fedify))  # fmt: skip
    items_after = dreamloom.query(
        "SELECT count(*) AS n FROM inbox_items WHERE actor_uri = :a", a=fedify.actor_id
    )[0]["n"]
    assert items_after == items_before
    assert follows_from(dreamloom, fedify.actor_id) == 0
    posts = dreamloom.query(
        "SELECT count(*) AS n FROM posts p JOIN accounts a ON a.id = p.account_id "
        "WHERE a.uri = :a", a=fedify.actor_id,
    )  # fmt: skip
    assert posts[0]["n"] == 0

    # nothing goes out to it: a follow from our side is refused, and nothing is delivered
    proc = dreamloom.cli("follow", "painter", fedify.actor_id)
    assert proc.returncode == 1 and "blocked" in proc.stderr, proc.stderr
    time.sleep(3)  # the delivery worker polls every second or so
    assert len(fedify.requests()) == reached_fedify
    status = dreamloom.cli_json("deliveries", "status")
    assert all(not row["host"].startswith("127.0.0.1") or row["queued"] == 0 for row in status)
