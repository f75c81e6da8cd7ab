"""SafeFetcher against real HTTP servers on 127.0.0.1: ids, content types, redirects,
attribution, our own hosts, size and time limits."""

from __future__ import annotations

import gzip
import json
import time
import zlib

import pytest

from activitypub.errors import (
    BadContentTypeError,
    BlockedAddressError,
    FetchTimeoutError,
    IdMismatchError,
    InvalidDocumentError,
    RedirectError,
    RemoteHTTPError,
    ResponseTooLargeError,
)
from activitypub.fetch import SafeFetcher, is_activitypub_content_type
from activitypub.keys import KeyPair
from activitypub.signatures import verify_request
from tests.activitypub.httpserver import Reply

LD = 'application/ld+json; profile="https://www.w3.org/ns/activitystreams"'


def note(server, path: str, **extra) -> dict:
    doc = {"id": server.url(path), "type": "Note", "attributedTo": server.url("/users/a")}
    doc.update(extra)
    return doc


async def test_fetch_json_happy_path(server, fetcher: SafeFetcher) -> None:
    server.routes["/notes/1"] = Reply.json(note(server, "/notes/1"))
    doc = await fetcher.fetch_json(server.url("/notes/1"))
    assert doc["id"] == server.url("/notes/1")
    (seen,) = server.requests
    accept = dict((k.lower(), v) for k, v in seen.headers)["accept"]
    assert "application/activity+json" in accept and "application/ld+json" in accept


# ----------------------------------------------------------------- content type


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "text/html",
        None,
        "application/ld+json",
        'application/ld+json; profile="https://example.org/other"',
    ],
)
async def test_non_activitystreams_content_type_is_rejected(server, fetcher, content_type) -> None:
    """application/json, text/html, none, ld+json without profile -> reject."""
    reply = Reply.json(note(server, "/n"))
    reply.headers = [("Content-Type", content_type)] if content_type else []
    server.routes["/n"] = reply
    with pytest.raises(BadContentTypeError):
        await fetcher.fetch_json(server.url("/n"))


@pytest.mark.parametrize(
    "content_type",
    [
        "application/activity+json",
        "application/activity+json; charset=utf-8",
        LD,
        'application/ld+json; profile="https://www.w3.org/ns/activitystreams https://x.example/p"',
        'Application/LD+JSON;profile="https://x.example/p https://www.w3.org/ns/activitystreams"',
    ],
)
async def test_activitystreams_content_types_are_accepted(server, fetcher, content_type) -> None:
    """Multi-profile ld+json that includes the AS IRI -> accept."""
    server.routes["/n"] = Reply.json(note(server, "/n"), content_type=content_type)
    assert (await fetcher.fetch_json(server.url("/n")))["type"] == "Note"


def test_content_type_predicate_edges() -> None:
    assert not is_activitypub_content_type("application/activity+jsonx")
    assert not is_activitypub_content_type("")
    assert is_activitypub_content_type(
        "application/ld+json; profile=https://www.w3.org/ns/activitystreams"
    )


# ----------------------------------------------------------------- id != URL


async def test_id_on_another_host_is_rejected_without_refetch(server, server_b, fetcher):
    """(Akkoma fixture) an id on another host -> reject, no fetch from that host."""
    server.routes["/n"] = Reply.json(note(server_b, "/n", attributedTo=server_b.url("/u")))
    with pytest.raises(IdMismatchError):
        await fetcher.fetch_json(server.url("/n"))
    assert server_b.requests == []


async def test_id_on_same_host_other_path_is_refetched_once(server, fetcher) -> None:
    """Same-host other path -> exactly one re-fetch by id, which must match."""
    server.routes["/n"] = Reply.json(note(server, "/elsewhere"))
    server.routes["/elsewhere"] = Reply.json(note(server, "/elsewhere-again"))
    with pytest.raises(IdMismatchError):
        await fetcher.fetch_json(server.url("/n"))
    assert [r.target for r in server.requests] == ["/n", "/elsewhere"]


async def test_refetch_by_same_host_id_that_is_missing_fails(server, fetcher) -> None:
    server.routes["/n"] = Reply.json(note(server, "/gone"))
    with pytest.raises(RemoteHTTPError) as info:
        await fetcher.fetch_json(server.url("/n"))
    assert info.value.status == 404 and server.hits("/gone") == 1


async def test_refetch_by_canonical_id_is_accepted(server, fetcher) -> None:
    """Control: /n claims /notes/1 on the same origin, which serves itself."""
    server.routes["/n"] = Reply.json(note(server, "/notes/1"))
    server.routes["/notes/1"] = Reply.json(note(server, "/notes/1", content="canonical"))
    doc = await fetcher.fetch_json(server.url("/n"))
    assert doc["content"] == "canonical"


async def test_document_without_id_is_rejected(server, fetcher) -> None:
    """A document without id -> reject."""
    server.routes["/n"] = Reply.json({"type": "Note"})
    with pytest.raises(IdMismatchError, match="document has no id"):
        await fetcher.fetch_json(server.url("/n"))
    assert len(server.requests) == 1


async def test_expect_id_match_false(server, fetcher) -> None:
    server.routes["/n"] = Reply.json({"type": "OrderedCollectionPage"})
    assert (await fetcher.fetch_json(server.url("/n"), expect_id_match=False))["type"]


# ----------------------------------------------------------------- redirects


async def test_cross_origin_redirect_claiming_the_old_id_is_rejected(server, server_b, fetcher):
    """a/obj 302-> b/obj whose id claims a/obj -> reject."""
    server.routes["/obj"] = Reply.redirect(server_b.url("/obj"))
    server_b.routes["/obj"] = Reply.json(note(server, "/obj"))
    with pytest.raises(IdMismatchError):
        await fetcher.fetch_json(server.url("/obj"))


async def test_cross_origin_redirect_result_belongs_to_the_final_url(server, server_b, fetcher):
    """After a cross-origin redirect, the document is b's (its id is b's URL)."""
    server.routes["/obj"] = Reply.redirect(server_b.url("/obj"))
    server_b.routes["/obj"] = Reply.json(note(server_b, "/obj", attributedTo=server_b.url("/u")))
    assert (await fetcher.fetch_json(server.url("/obj")))["id"] == server_b.url("/obj")


async def test_same_host_redirect_is_followed(server, fetcher) -> None:
    """(Akkoma's allowed redirect) same-host redirect -> OK."""
    server.routes["/obj"] = Reply.redirect("/objects/1", status=301)
    server.routes["/objects/1"] = Reply.json(note(server, "/objects/1"))
    assert (await fetcher.fetch_json(server.url("/obj")))["id"] == server.url("/objects/1")


async def test_three_redirect_hops_are_followed_a_fourth_is_an_error(server, fetcher) -> None:
    """At most 3 hops (as Mastodon); the 4th is an error."""
    for i in range(4):
        server.routes[f"/r{i}"] = Reply.redirect(f"/r{i + 1}")
    server.routes["/r4"] = Reply.json(note(server, "/r4"))
    server.routes["/r1"] = Reply.redirect("/r2")
    assert (await fetcher.fetch_json(server.url("/r1")))["id"] == server.url("/r4")
    with pytest.raises(RedirectError, match="more than 3 redirects"):
        await fetcher.fetch_json(server.url("/r0"))


async def test_redirect_without_location_and_to_other_scheme(server, fetcher) -> None:
    server.routes["/a"] = Reply(status=302)
    server.routes["/b"] = Reply.redirect("file:///etc/passwd")
    with pytest.raises(RedirectError):
        await fetcher.fetch_json(server.url("/a"))
    with pytest.raises(RedirectError):
        await fetcher.fetch_json(server.url("/b"))


# ----------------------------------------------------------------- attribution, our own hosts


async def test_attributed_to_on_another_origin_is_rejected(server, server_b, fetcher) -> None:
    """id on a, attributedTo on b -> reject."""
    server.routes["/n"] = Reply.json(note(server, "/n", attributedTo=server_b.url("/users/b")))
    with pytest.raises(InvalidDocumentError, match="attributedTo"):
        await fetcher.fetch_json(server.url("/n"))


async def test_actor_on_another_origin_is_rejected(server, server_b, fetcher) -> None:
    """An activity on a whose actor is on b -> reject (list forms too)."""
    doc = {
        "id": server.url("/act"),
        "type": "Create",
        "actor": [{"type": "Person", "id": server_b.url("/users/b")}],
    }
    server.routes["/act"] = Reply.json(doc)
    with pytest.raises(InvalidDocumentError, match="actor"):
        await fetcher.fetch_json(server.url("/act"))


async def test_our_own_urls_are_never_fetched(server, fetcher) -> None:
    """Our own host (any case/trailing dot/port) -> reject with no HTTP."""
    for url in (
        "https://us.example/media/x.json",
        "https://US.EXAMPLE./users/a",
        "http://us.example:8080/x",
    ):
        with pytest.raises(BlockedAddressError, match="our own URLs"):
            await fetcher.fetch_json(url)
    server.routes["/n"] = Reply.redirect("https://us.example/users/a")
    with pytest.raises(BlockedAddressError):
        await fetcher.fetch_json(server.url("/n"))


async def test_remote_note_attributed_to_a_local_user_is_rejected(server, fetcher) -> None:
    """A remote Note claiming one of our users as author -> reject."""
    server.routes["/n"] = Reply.json(note(server, "/n", attributedTo="https://us.example/users/a"))
    with pytest.raises(InvalidDocumentError):
        await fetcher.fetch_json(server.url("/n"))


# ----------------------------------------------------------------- size and time


async def test_chunked_2mb_json_is_a_size_error(server, fetcher) -> None:
    """2 MB chunked JSON -> size error."""
    body = json.dumps(note(server, "/big", content="x" * 2_000_000)).encode()
    server.routes["/big"] = Reply(
        headers=[("Content-Type", "application/activity+json")], body=body, chunked=True
    )
    with pytest.raises(ResponseTooLargeError, match="body exceeds 1048576 bytes"):
        await fetcher.fetch_json(server.url("/big"))


async def test_oversized_content_length_is_refused_before_reading(server) -> None:
    """Content-Length 2 MB -> refused before reading (the body never comes)."""
    server.routes["/big"] = Reply(
        headers=[("Content-Type", "application/activity+json"), ("Content-Length", "2000000")],
        trickle=0.05,
    )
    fetcher = SafeFetcher(allow_private_addresses=True, deadline=10)
    started = time.monotonic()
    with pytest.raises(ResponseTooLargeError, match="Content-Length 2000000"):
        await fetcher.fetch_json(server.url("/big"))
    assert time.monotonic() - started < 5
    await fetcher.aclose()


async def test_slow_body_hits_the_overall_deadline(server) -> None:
    """A body trickling 1 byte at a time -> aborted at the overall deadline."""
    server.routes["/slow"] = Reply(
        headers=[("Content-Type", "application/activity+json"), ("Content-Length", "1000")],
        trickle=0.01,
    )
    fetcher = SafeFetcher(allow_private_addresses=True, deadline=0.3)
    started = time.monotonic()
    with pytest.raises(FetchTimeoutError):
        await fetcher.fetch_json(server.url("/slow"))
    assert time.monotonic() - started < 3
    await fetcher.aclose()


@pytest.fixture(scope="module")
def gzip_bomb() -> bytes:
    """~256 MiB of zeros, gzip-compressed to a few hundred KB."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    block = b"\0" * (1 << 20)
    return b"".join(compressor.compress(block) for _ in range(256)) + compressor.flush()


async def test_gzip_bomb_stops_at_the_size_cap(server, fetcher, gzip_bomb) -> None:
    """Gzip bomb -> aborted at the cap (we inflate with a bounded output size)."""
    server.routes["/bomb"] = Reply(
        headers=[("Content-Type", "application/activity+json"), ("Content-Encoding", "gzip")],
        body=gzip_bomb,
    )
    with pytest.raises(ResponseTooLargeError):
        await fetcher.fetch_json(server.url("/bomb"))


async def test_gzip_body_is_decoded(server, fetcher) -> None:
    body = gzip.compress(json.dumps(note(server, "/gz")).encode())
    server.routes["/gz"] = Reply(
        headers=[("Content-Type", "application/activity+json"), ("Content-Encoding", "gzip")],
        body=body,
    )
    assert (await fetcher.fetch_json(server.url("/gz")))["id"] == server.url("/gz")


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b"[" * 200_000 + b"]" * 200_000])
async def test_invalid_json(server, fetcher, body) -> None:
    server.routes["/bad"] = Reply(
        headers=[("Content-Type", "application/activity+json")], body=body
    )
    with pytest.raises(InvalidDocumentError):
        await fetcher.fetch_json(server.url("/bad"))


@pytest.mark.parametrize("status", [401, 404, 410, 500])
async def test_remote_http_errors(server, fetcher, status) -> None:
    server.routes["/x"] = Reply(status=status)
    with pytest.raises(RemoteHTTPError) as info:
        await fetcher.fetch_json(server.url("/x"))
    assert info.value.status == status


# ----------------------------------------------------------------- media and signed GETs


async def test_fetch_media_with_cap(server, fetcher) -> None:
    server.routes["/m.png"] = Reply(headers=[("Content-Type", "image/png")], body=b"\x89PNG" * 10)
    body, content_type = await fetcher.fetch_media(server.url("/m.png"))
    assert (body[:4], content_type) == (b"\x89PNG", "image/png")
    with pytest.raises(ResponseTooLargeError):
        await fetcher.fetch_media(server.url("/m.png"), max_bytes=10)


async def test_signed_get_verifies(server, fetcher, alice_key: KeyPair, key_store) -> None:
    """Signed GETs (for authorized-fetch servers) carry a cavage signature the server can verify."""
    server.routes["/n"] = Reply.json(note(server, "/n"))
    key_id = "https://a.example/users/alice#main-key"
    await fetcher.fetch_json(server.url("/n"), signer=(key_id, alice_key.private_pem))
    (seen,) = server.requests
    result = await verify_request("GET", seen.target, seen.headers, b"", key_store)
    assert result.key_id == key_id
