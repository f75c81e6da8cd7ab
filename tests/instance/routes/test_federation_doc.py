"""docs/federation.md and our JSON-LD: every property we send is documented, every context
we send is valid JSON-LD 1.0 (a 1.0 processor rejected the whole context for one `@json`),
and each instance serves Dreamloom's terms as a context document at /ns."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from pyld import jsonld as pyld

from activitypub import jsonld
from activitypub.notes import (
    DREAMLOOM_TERMS,
    build_note,
    build_quote_answer,
    build_quote_authorization,
    build_quote_request,
)
from generator.recipe import Recipe
from instance.content.posting import Draft, publish
from instance.storage.models import Account
from tests.instance_fixtures import AP_ACCEPT

DOC = Path(__file__).resolve().parents[3] / "docs" / "federation.md"


def expand_as_json_ld_1_0(document: dict[str, Any]) -> list[Any]:
    options = {"documentLoader": jsonld.offline_document_loader, "processingMode": "json-ld-1.0"}
    result: list[Any] = pyld.expand(document, options)
    return result


@pytest.fixture
async def served(client, runtime, new_account) -> dict[str, dict[str, Any]]:
    """The actor and a post's Note as we serve them, and our quote documents."""
    bot = await new_account("painter", ai=True)
    async with runtime.session() as s:
        me = await s.get_one(Account, bot.id)
        post = await publish(s, runtime, me, Draft(text="a fox #ink", summary="cw"))
    note = (await client.get(post.uri, headers=AP_ACCEPT)).json()
    remix = build_note(
        note_id=f"{post.uri}-remix", author=bot.uri, url=None, published=post.published,
        to=[], cc=[], content="", recipe={"prompt": "a fox", "seed": 1},
        remix_of=post.uri, quote="approved", quote_authorization=f"{bot.uri}/qa/1",
    )  # fmt: skip
    request = build_quote_request(request_id=f"{post.uri}/qr", actor=bot.uri,
                                  quoted=post.uri, instrument=remix, to=bot.uri)  # fmt: skip
    stamp = f"{bot.uri}/qa/1"
    accept = build_quote_answer(answer="Accept", activity_id=f"{post.uri}/a", actor=bot.uri,
                                request=request, to=bot.uri, authorization=stamp)  # fmt: skip
    authorization = build_quote_authorization(authorization_id=stamp, author=bot.uri,
                                              quoting=remix["id"], quoted=post.uri)  # fmt: skip
    return {
        "actor": (await client.get(bot.uri, headers=AP_ACCEPT)).json(),
        "note": note,
        "remix": remix,
        "quote_request": request,
        "accept": accept,
        "stamp": authorization,
    }


async def test_every_context_we_send_is_json_ld_1_0(served) -> None:
    for name, document in served.items():
        expanded = expand_as_json_ld_1_0(document)
        assert expanded and expanded[0]["@id"] == document["id"], name


async def test_the_namespace_is_served_as_a_context_document(client) -> None:
    r = await client.get("/ns")
    assert r.status_code == 200 and r.headers["content-type"] == "application/ld+json"
    assert r.json() == {"@context": DREAMLOOM_TERMS}
    context = ["https://www.w3.org/ns/activitystreams", r.json()["@context"]]
    doc = {"@context": context, "id": "https://a.example/1", "type": "Note",
           "remixOf": "https://b.example/2"}  # fmt: skip
    (node,) = expand_as_json_ld_1_0(doc)
    assert node["https://dreamloom.dev/ns#remixOf"] == [{"@id": "https://b.example/2"}]


async def test_every_property_we_send_is_documented(served) -> None:
    text = DOC.read_text(encoding="utf-8")
    documented = set(re.findall(r"`([A-Za-z_@][\w.@]*)`", text))
    documented |= {w.split(".")[0] for w in documented}
    sent = set()
    for document in served.values():
        sent |= {k for k in document if not k.startswith("@")}
        for key in ("object", "instrument"):
            if isinstance(document.get(key), dict):
                sent |= {k for k in document[key] if not k.startswith("@")}
    image_remix = Recipe(prompt="x", seed=1, steps=4, parent="https://p.example/i.png",
                         strength=0.5)  # fmt: skip
    sent |= set(image_remix.to_json())
    assert sent - documented == set()
