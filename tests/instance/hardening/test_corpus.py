"""The forged-activity corpus (corpus.py), each variant against a fresh instance over HTTP.

For every variant: our answer is the expected status; the inbox holds no more rows than it
may (none, for all but the few that send an accepted request first); a variant that must not
make us fetch anything fetched nothing; and afterwards the instance still accepts alice's
honest request, so no attempt poisoned a key, a cache or a limit for the people it imitated.

Two controls keep the corpus honest: the same world accepts an honest request signed either
way, so a 401 below is the variant's doing, not a broken fixture; and `docs/security.md` is
the page `corpus.markdown()` writes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from instance.accounts import NewAccount, create_account
from instance.runtime import open_runtime
from instance.setup import ensure_instance
from instance.storage.models import InboxItem
from tests.instance.fediverse import AS, FakeFediverse, RemoteActor, keypair
from tests.instance.hardening import corpus
from tests.instance.hardening.corpus import CORPUS, Request, Variant, World
from tests.instance.inbox_helpers import count
from tests.instance_fixtures import make_settings, serve_live

DOCS = Path(__file__).resolve().parents[3] / "docs" / "security.md"


@asynccontextmanager
async def world(directory: Path, settings: dict[str, dict[str, Any]]) -> AsyncIterator[
    tuple[World, FakeFediverse, httpx.AsyncClient]
]:  # fmt: skip
    """A fresh instance served on loopback, with the fake fediverse of corpus.py around it."""
    rt = await open_runtime(make_settings(directory, **settings))
    try:
        await ensure_instance(rt)
        async with rt.session() as session:
            bot = await create_account(session, rt.urls, NewAccount("bot", ai=True))
        fedi = FakeFediverse()
        await rt.use_http(fedi.client())
        alice = fedi.actor("alice", key=0)
        mallory = fedi.actor("mallory", key=1)
        eve = fedi.actor("eve", "evil.example", key=2)
        squatter = fedi.actor("squatter", "evil.example", key=3)
        squatter_doc = squatter.document()
        squatter_doc["publicKey"]["id"] = alice.key_id
        fedi.serve(squatter.uri, squatter_doc)
        fedi.serve("https://remote.example/keys/eve", {
            "@context": AS, "id": "https://remote.example/keys/eve", "type": "CryptographicKey",
            "owner": eve.uri, "publicKeyPem": eve.public_pem,
        })  # fmt: skip
        gone = RemoteActor("gone", "evil.example", *keypair(4))
        w = World(rt, alice, mallory, eve, squatter, gone, bot.uri)
        async with serve_live(rt) as base, httpx.AsyncClient(base_url=base) as client:
            yield w, fedi, client
    finally:
        await rt.aclose()


async def send(client: httpx.AsyncClient, request: Request) -> httpx.Response:
    if request.declared is not None:
        return await send_declared(client, request)
    return await client.post(request.path, content=request.body, headers=request.headers)


async def send_declared(client: httpx.AsyncClient, request: Request) -> httpx.Response:
    """POST with a Content-Length that the body does not match (an HTTP client refuses to
    send one), over a raw socket; the answer comes back as an httpx.Response."""
    url = httpx.URL(str(client.base_url))
    reader, writer = await asyncio.open_connection(url.host, url.port)
    try:
        headers = {**request.headers, "Content-Length": str(request.declared)}
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        writer.write(f"POST {request.path} HTTP/1.1\r\n{head}\r\n".encode() + request.body)
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 10)
        return httpx.Response(int(status_line.split()[1]))
    finally:
        writer.close()


@pytest.mark.parametrize("variant", CORPUS, ids=[v.name for v in CORPUS])
async def test_the_inbox_refuses_the_variant_and_keeps_nothing(
    tmp_path: Path, variant: Variant
) -> None:
    async with world(tmp_path / "instance", variant.settings) as (w, fedi, client):
        built = variant.build(w)
        *before, attempt = built if isinstance(built, list) else [built]
        for request in before:
            assert (await send(client, request)).status_code == 202
        fetched = len(fedi.gets())

        answer = await send(client, attempt)

        assert answer.status_code == variant.status, answer.text
        if variant.because:
            assert variant.because in answer.json()["error"]
        if answer.status_code in (429, 503):
            assert int(answer.headers["Retry-After"]) > 0
        assert await count(w.rt, InboxItem) == variant.rows
        if not variant.fetches:
            assert fedi.gets()[fetched:] == []
        if variant.honest_after:
            assert (await send(client, w.sign(w.alice))).status_code == 202
            assert await count(w.rt, InboxItem) == variant.rows + 1


@pytest.mark.parametrize("scheme", ["cavage", "rfc9421"])
async def test_the_same_world_accepts_an_honest_request(tmp_path: Path, scheme: str) -> None:
    async with world(tmp_path / "instance", {}) as (w, _, client):
        for actor in (w.alice, w.mallory, w.eve):
            assert (await send(client, w.sign(actor, scheme=scheme))).status_code == 202
        assert (await send(client, w.sign(w.alice, path="/users/bot/inbox"))).status_code == 202
        assert await count(w.rt, InboxItem) == 4


def test_the_corpus_has_sixty_distinct_variants() -> None:
    names = [v.name for v in CORPUS]
    assert len(names) >= 60 and len(set(names)) == len(names)


def test_docs_security_md_is_generated_from_the_corpus() -> None:
    assert DOCS.read_text() == corpus.markdown(), (
        "docs/security.md is stale: python -m tests.instance.hardening.corpus > docs/security.md"
    )
