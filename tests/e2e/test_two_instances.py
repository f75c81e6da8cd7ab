"""Two Dreamloom instances as separate processes on loopback, federating end to end.

Instance A has an AI account, instance B a person. Everything goes through the CLI and real
signed HTTP between the two `dreamloom serve` processes (http, private addresses allowed):
lookup, follow/Accept, post delivery with the image, like, boost, the three kinds of remix
with the FEP-044f approval and lineage, undo, delete, unfollow. Each inbox verifies every
signature (an unsigned or badly signed delivery would leave nothing behind).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.interop.peers import Dreamloom, eventually, free_port

pytestmark = pytest.mark.slow

AP = {"Accept": "application/activity+json"}


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Dreamloom, Dreamloom]]:
    root: Path = tmp_path_factory.mktemp("pair")
    a = Dreamloom(root / "a", free_port())
    b = Dreamloom(root / "b", free_port())
    for inst in (a, b):
        inst.init()
    a.create_account("painter", ai=True)
    b.create_account("bob")
    a.start()
    b.start()
    try:
        yield a, b
    finally:
        a.stop()
        b.stop()


def note(inst: Dreamloom, uri: str) -> dict:
    r = httpx.get(uri, headers=AP, timeout=10)
    return r.json() if r.status_code == 200 else {"status": r.status_code}


def explain(*insts: Dreamloom):
    return lambda: "\n".join(i.work_summary() for i in insts)


def test_federation_end_to_end(pair: tuple[Dreamloom, Dreamloom]) -> None:
    a, b = pair
    why = explain(a, b)

    # lookup + follow -> an Accept that references the Follow
    b.cli_ok("follow", "bob", f"@{a.handle('painter')}")
    eventually(
        lambda: a.get_json(a.actor("painter") + "/followers")["totalItems"] == 1,
        what="A to record B's follow",
        explain=why,
    )
    eventually(
        lambda: b.query("SELECT accepted FROM follows") == [{"accepted": 1}],
        what="B to receive the Accept",
        explain=why,
    )

    # A's AI account posts an image; B receives it with its attachment and alt text
    posted = a.cli_json("post", "painter", "a lighthouse at dawn", "--seed", "7")
    uri = posted["post_uri"]
    assert uri and uri.startswith(a.base)
    rows = eventually(
        lambda: b.query(
            "SELECT p.id, m.remote_url, m.description, m.media_type FROM posts p "
            "JOIN media m ON m.post_id = p.id WHERE p.uri = :u",
            u=uri,
        ),
        what="B to receive the post",
        explain=why,
    )
    assert rows[0]["media_type"] == "image/png"
    assert rows[0]["description"].startswith("AI-generated image: a lighthouse at dawn")
    assert httpx.get(rows[0]["remote_url"], timeout=10).headers["content-type"] == "image/png"
    home = b.cli_json("timeline", "bob")
    assert any(e["uri"] == uri for e in home)

    # like and boost: A counts them
    b.cli_ok("like", "bob", uri)
    b.cli_ok("boost", "bob", uri)
    eventually(
        lambda: note(a, uri).get("likes", {}).get("totalItems") == 1,
        what="A to count the like",
        explain=why,
    )
    eventually(
        lambda: note(a, uri).get("shares", {}).get("totalItems") == 1,
        what="A to count the boost",
        explain=why,
    )

    # three kinds of remix, each approved by A with a stamp, then published
    remixes = [
        b.cli_json("remix", "bob", uri, "--seed", "99"),
        b.cli_json("remix", "bob", uri, "--prompt", "a lighthouse in a snowstorm"),
        b.cli_json("remix", "bob", uri, "--from-image"),
    ]
    for r in remixes:
        assert r["status"] == "done", r
        child = eventually(
            lambda r=r: (n := note(b, r["post_uri"])).get("quoteAuthorization") and n,
            what="B's remix to be approved by A",
            explain=why,
        )
        assert child["quote"] == uri and child["_misskey_quote"] == uri
        assert child["quoteAuthorization"].startswith(a.base)  # stamp on A's host
        assert child["recipe"]["prompt"]  # B's remix shows its recipe
    assert remixes[0]["recipe"]["seed"] == 99
    assert remixes[1]["recipe"]["prompt"] == "a lighthouse in a snowstorm"
    assert remixes[2]["recipe"]["parent"].startswith(a.base + "/media/")

    # A sees the remixes: notifications and the lineage on the post page
    eventually(
        lambda: sum(n["kind"] == "remix" for n in a.cli_json("notifications", "painter")) == 3,
        what="A to be notified of 3 remixes",
        explain=why,
    )
    page = httpx.get(posted["post_url"], timeout=10).text
    assert len(re.findall(r"@bob@", page.split("Remixes", 1)[1])) == 3
    kinds = {n["kind"] for n in a.cli_json("notifications", "painter")}
    assert {"follow", "like", "boost", "remix"} <= kinds

    # undo propagates
    b.cli_ok("unlike", "bob", uri)
    b.cli_ok("unboost", "bob", uri)
    eventually(
        lambda: note(a, uri).get("likes", {}).get("totalItems") == 0,
        what="A to see the like undone",
        explain=why,
    )
    eventually(
        lambda: note(a, uri).get("shares", {}).get("totalItems") == 0,
        what="A to see the boost undone",
        explain=why,
    )

    # delete propagates: 410 at A, a tombstone at B
    a.cli_ok("delete", "painter", uri)
    assert httpx.get(uri, headers=AP, timeout=10).status_code == 410
    eventually(
        lambda: b.query("SELECT deleted_at FROM posts WHERE uri = :u", u=uri)[0]["deleted_at"],
        what="B to tombstone the deleted post",
        explain=why,
    )

    # unfollow
    b.cli_ok("unfollow", "bob", f"@{a.handle('painter')}")
    eventually(
        lambda: a.get_json(a.actor("painter") + "/followers")["totalItems"] == 0,
        what="A to drop the follower",
        explain=why,
    )

    # nothing was refused or lost on either side
    for inst in (a, b):
        failed = inst.query("SELECT last_error FROM inbox_items WHERE status = 'failed'")
        assert failed == [], failed
