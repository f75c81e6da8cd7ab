"""JSON-LD with bundled contexts only: a remote `@context` causes zero network I/O."""

from __future__ import annotations

import socket

import pytest

from activitypub import jsonld
from activitypub.errors import ContextNotBundledError

AS = "https://www.w3.org/ns/activitystreams"
SEC = "https://w3id.org/security/v1"


@pytest.fixture
def no_network(monkeypatch) -> list:
    """Record (and refuse) every socket connect and DNS lookup."""
    attempts: list = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    return attempts


def test_bundled_contexts_load() -> None:
    assert jsonld.bundled_context(AS)["@context"]["Note"] == "as:Note"
    assert "publicKeyPem" in jsonld.bundled_context(SEC)["@context"]
    assert jsonld.bundled_context(AS + "#")["@context"]  # fragment ignored


@pytest.mark.parametrize(
    "context",
    [
        "http://127.0.0.1:6379/",
        ["https://www.w3.org/ns/activitystreams", "http://169.254.169.254/latest/"],
    ],
)
def test_remote_context_is_never_fetched(no_network, context) -> None:
    """@context http://127.0.0.1:6379/ -> refused with zero network I/O."""
    document = {"@context": context, "id": "https://a.example/n", "type": "Note"}
    with pytest.raises(ContextNotBundledError):
        jsonld.expand(document)
    with pytest.raises(ContextNotBundledError):
        jsonld.compact(document)
    with pytest.raises(ContextNotBundledError):
        jsonld.offline_document_loader("http://127.0.0.1:6379/", {})
    assert no_network == []


def test_normalize_drops_unknown_remote_contexts(no_network) -> None:
    """Unknown remote contexts are dropped (not fetched); inline ones stay."""
    document = {
        "@context": ["http://127.0.0.1:6379/", SEC, {"toot": "http://joinmastodon.org/ns#"}],
        "id": "https://a.example/n",
        "type": "Note",
        "content": "hi",
    }
    normalized = jsonld.normalize_context(document)
    assert normalized["@context"] == [AS, SEC, {"toot": "http://joinmastodon.org/ns#"}]
    assert normalized["content"] == "hi" and document["@context"][0] == "http://127.0.0.1:6379/"
    assert jsonld.normalize_context({"id": "x"})["@context"] == AS
    assert no_network == []


def test_context_redefining_actor_is_read_as_plain_json(no_network) -> None:
    """An inline context redefining `actor` changes nothing we read as JSON."""
    from activitypub.objects import Activity

    document = {
        "@context": [AS, {"actor": "http://evil.example/ns#notActor"}],
        "id": "https://a.example/act",
        "type": "Like",
        "actor": "https://a.example/u",
        "object": "https://b.example/n",
    }
    assert Activity(jsonld.normalize_context(document)).actor == "https://a.example/u"
    expanded = jsonld.expand(document)
    assert "https://www.w3.org/ns/activitystreams#actor" not in expanded[0]
    assert no_network == []


def test_compact_actor_offline(no_network) -> None:
    actor = {
        "@context": [AS, SEC],
        "id": "https://a.example/u",
        "type": "Service",
        "publicKey": {
            "id": "https://a.example/u#main-key",
            "owner": "https://a.example/u",
            "publicKeyPem": "PEM",
        },
    }
    compacted = jsonld.compact(actor, [AS, SEC])
    assert compacted["publicKey"]["publicKeyPem"] == "PEM"
    assert no_network == []
