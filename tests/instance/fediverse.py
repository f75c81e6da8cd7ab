"""A fake fediverse at the httpx transport: remote servers that cannot run here.

`FakeFediverse` is a callable for `httpx.MockTransport`: it serves the actor, key, object and
WebFinger documents a test registers, answers POSTs with 202, and records every request.
`RemoteActor` holds a remote account's key and signs POSTs to our inbox the way Mastodon
does (draft-cavage, rsa-sha256, Digest, content-type signed).
"""

from __future__ import annotations

import functools
import itertools
import json
from dataclasses import dataclass, field
from typing import Any

import httpx

from activitypub.keys import generate_rsa_keypair
from activitypub.objects import build_actor
from activitypub.signatures import sign_request_headers

AS = "https://www.w3.org/ns/activitystreams"
PUBLIC = f"{AS}#Public"
ACTIVITY_JSON = "application/activity+json"
_ids = itertools.count(1)


@functools.cache
def keypair(n: int) -> tuple[str, str]:
    """A few RSA keys shared by the whole run (generating one takes ~0.1 s)."""
    return generate_rsa_keypair()


@dataclass
class RemoteActor:
    username: str
    host: str
    private_pem: str
    public_pem: str
    key_style: str = "fragment"  # "fragment": <actor>#main-key; "stub": <actor>/main-key

    @property
    def uri(self) -> str:
        return f"https://{self.host}/users/{self.username}"

    @property
    def key_id(self) -> str:
        sep = "#" if self.key_style == "fragment" else "/"
        return f"{self.uri}{sep}main-key"

    @property
    def inbox(self) -> str:
        return f"{self.uri}/inbox"

    @property
    def shared_inbox(self) -> str:
        return f"https://{self.host}/inbox"

    def document(self, **overrides: Any) -> dict[str, Any]:
        doc = build_actor(
            actor_id=self.uri, username=self.username, inbox=self.inbox,
            outbox=f"{self.uri}/outbox", followers=f"{self.uri}/followers",
            following=f"{self.uri}/following", shared_inbox=self.shared_inbox,
            public_key_pem=self.public_pem, key_id=self.key_id, actor_type="Person",
            name=self.username.title(),
        )  # fmt: skip
        doc.update(overrides)
        return doc

    def new_id(self, kind: str = "activities") -> str:
        return f"{self.uri}/{kind}/{next(_ids)}"

    def note(self, content: str = "<p>hello</p>", **extra: Any) -> dict[str, Any]:
        note = {
            "id": self.new_id("statuses"), "type": "Note", "attributedTo": self.uri,
            "content": content, "published": "2026-07-07T10:00:00Z",
            "to": [PUBLIC], "cc": [f"{self.uri}/followers"],
        }  # fmt: skip
        note.update(extra)
        return note

    def activity(self, kind: str, obj: Any, **extra: Any) -> dict[str, Any]:
        doc = {"@context": AS, "id": self.new_id(), "type": kind, "actor": self.uri, "object": obj}
        doc.update(extra)
        return doc

    def create(self, note: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
        note = note or self.note()
        return self.activity("Create", note, to=note.get("to"), cc=note.get("cc"), **extra)

    def signed_headers(
        self, url: str, body: bytes, *, key_id: str | None = None, private_pem: str | None = None,
        content_type: str = ACTIVITY_JSON, now: Any = None,
    ) -> dict[str, str]:  # fmt: skip
        return sign_request_headers(
            "POST", url, key_id=key_id or self.key_id, private_pem=private_pem or self.private_pem,
            body=body, content_type=content_type, now=now,
        )  # fmt: skip


class Body(httpx.AsyncByteStream):
    """A response body that is streamed (the safe fetcher reads raw chunks under its cap)."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    async def __aiter__(self) -> Any:
        yield self.data


@dataclass
class FakeFediverse:
    documents: dict[str, tuple[int, Any]] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)
    actors: dict[str, RemoteActor] = field(default_factory=dict)

    def actor(
        self, username: str = "alice", host: str = "remote.example", *, key: int = 0,
        key_style: str = "fragment", **overrides: Any,
    ) -> RemoteActor:  # fmt: skip
        """A remote actor whose documents (actor, key stub, WebFinger) are served."""
        private_pem, public_pem = keypair(key)
        actor = RemoteActor(username, host, private_pem, public_pem, key_style)
        self.actors[actor.uri] = actor
        self.serve(actor.uri, actor.document(**overrides))
        if key_style == "stub":
            self.serve(actor.key_id, {
                "@context": AS, "id": actor.key_id, "type": "CryptographicKey",
                "owner": actor.uri, "publicKeyPem": public_pem,
            })  # fmt: skip
        self.serve(
            f"https://{host}/.well-known/webfinger?resource=acct:{username}@{host}",
            {"subject": f"acct:{username}@{host}",
             "links": [{"rel": "self", "type": ACTIVITY_JSON, "href": actor.uri}]},
        )  # fmt: skip
        return actor

    def serve(self, url: str, document: Any, status: int = 200) -> None:
        self.documents[url] = (status, document)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.method == "POST":
            return httpx.Response(202)
        status, document = self.documents.get(str(request.url), (404, {"error": "not found"}))
        return httpx.Response(
            status, stream=Body(json.dumps(document).encode()),
            headers={"content-type": ACTIVITY_JSON},
        )  # fmt: skip

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self))

    def gets(self, url: str | None = None) -> list[str]:
        return [str(r.url) for r in self.requests
                if r.method == "GET" and (url is None or str(r.url) == url)]  # fmt: skip
