"""Payloads shaped like what Mastodon, GoToSocial, Misskey and Pixelfed send, replayed.

Each `fixtures/*.json` holds one sender's actor document (and GoToSocial's `…/main-key` stub),
the activities it POSTs, how it signs them (algorithm, Digest spelling, signed headers, key id
form) and the outcome Dreamloom must reach. Shapes follow the servers' source code and
documentation; `source` in each file says where from. Placeholders: `{target_actor}`,
`{target_post}`, `{target_url}`, `{local_host}`, `{public_key_pem}`.

The requests are signed here, by a small independent draft-cavage signer (not Dreamloom's),
and POSTed to an in-process Dreamloom (tests/instance_fixtures.py `runtime`/`client`). The
sender's server is a fake at the httpx transport (`httpx.MockTransport`): it serves the actor, key
and WebFinger documents (401 to unsigned GETs where the real server refuses them, 410 for a
deleted actor) and records what Dreamloom POSTs back. Background work is then advanced step
by step, without sleeping.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from sqlalchemy import select

from instance.runtime import Runtime
from instance.storage.models import Account, Follow, InboxItem, Post

pytestmark = pytest.mark.interop

FIXTURES = Path(__file__).resolve().parent / "fixtures"
ACTIVITY_JSON = "application/activity+json"
MAX_WORK_ROUNDS = 50


def load_fixtures() -> list[Any]:
    params = []
    for path in sorted(FIXTURES.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        params.append(
            pytest.param(
                path.stem,
                id=path.stem,
                marks=pytest.mark.capability(data["software"], data["what"]),
            )
        )
    return params


@functools.cache
def sender_key(software: str) -> tuple[str, str]:
    """(private PEM, public PEM): one RSA-2048 key per sending server, per run."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


def substitute(value: Any, values: dict[str, str]) -> Any:
    if isinstance(value, str):
        for key, replacement in values.items():
            value = value.replace("{" + key + "}", replacement)
        return value
    if isinstance(value, list):
        return [substitute(v, values) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v, values) for k, v in value.items()}
    return value


def sign_post(url: str, body: bytes, signing: dict[str, Any], private_pem: str) -> dict[str, str]:
    """draft-cavage as the sending server does it (header order, Digest spelling, hs2019)."""
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    moment = datetime.now(UTC) + timedelta(seconds=signing.get("date_offset_s", 0))
    digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
    headers = {
        "host": parts.netloc,
        "date": format_datetime(moment, usegmt=True),
        "digest": f"{signing['digest']}={digest}",
        "content-type": ACTIVITY_JSON,
        "content-length": str(len(body)),
    }
    lines = []
    for name in signing["headers"]:
        if name == "(request-target)":
            lines.append(f"(request-target): post {target}")
        else:
            lines.append(f"{name}: {headers[name]}")
    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    signature = key.sign("\n".join(lines).encode(), padding.PKCS1v15(), hashes.SHA256())
    headers["signature"] = (
        f'keyId="{signing["key_id"]}",algorithm="{signing["algorithm"]}",'
        f'headers="{" ".join(signing["headers"])}",'
        f'signature="{base64.b64encode(signature).decode()}"'
    )
    return headers


class Body(httpx.AsyncByteStream):
    """A streamed response body (Dreamloom's safe fetcher reads raw chunks under its cap)."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    async def __aiter__(self) -> Any:
        yield self.data


def json_response(status: int, doc: Any, content_type: str = ACTIVITY_JSON) -> httpx.Response:
    return httpx.Response(
        status, stream=Body(json.dumps(doc).encode()), headers={"content-type": content_type}
    )


class FakeRemote:
    """The sending server, at the httpx transport: documents by URL, POSTs recorded."""

    def __init__(self) -> None:
        self.documents: dict[str, dict[str, Any]] = {}
        self.signed_only: set[str] = set()
        self.gone: set[str] = set()
        self.posts: list[tuple[str, dict[str, Any]]] = []
        self.gets: list[tuple[str, bool]] = []

    def serve(self, doc: dict[str, Any], *, signed_only: bool = False) -> None:
        self.documents[doc["id"]] = doc
        if signed_only:
            self.signed_only.add(doc["id"])

    def __call__(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url.copy_with(fragment=None, query=None))
        signed = "signature" in request.headers or "signature-input" in request.headers
        if request.method == "POST":
            try:
                body = json.loads(request.content)
            except ValueError:
                body = {"unparsed": request.content.decode("utf-8", "replace")}
            self.posts.append((url, body))
            return httpx.Response(202)
        self.gets.append((str(request.url), signed))
        if request.url.path == "/.well-known/webfinger":
            resource = parse_qs(request.url.query.decode()).get("resource", [""])[0]
            for doc in self.documents.values():
                name = doc.get("preferredUsername")
                if name and resource == f"acct:{name}@{request.url.host}":
                    link = {"rel": "self", "type": ACTIVITY_JSON, "href": doc["id"]}
                    jrd = {"subject": resource, "links": [link]}
                    return json_response(200, jrd, "application/jrd+json")
            return httpx.Response(404)
        if url in self.gone:
            return httpx.Response(410)
        if url in self.signed_only and not signed:
            return httpx.Response(401, text="Request not signed")
        if url in self.documents:
            return json_response(200, self.documents[url])
        return httpx.Response(404)


async def advance_work(rt: Runtime) -> None:
    """Run every background worker but the GPU one until none has anything left to do."""
    from instance.roles import worker_factories

    workers = [make(rt) for make in worker_factories()]
    workers = [w for w in workers if w.name != "generation"]
    try:
        for _ in range(MAX_WORK_ROUNDS):
            done = 0
            for worker in workers:
                done += await worker.run_once()
            if not done:
                return
    finally:
        for worker in workers:
            close = getattr(worker, "aclose", None)
            if close is not None:
                await close()


def ident(value: Any) -> Any:
    return value.get("id") if isinstance(value, dict) else value


@pytest.mark.parametrize("name", load_fixtures())
async def test_payload_fixture(
    name: str,
    runtime: Runtime,
    client: httpx.AsyncClient,
    new_account: Callable[..., Any],
) -> None:
    from instance.content.posting import Draft, publish

    spec = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    private_pem, public_pem = sender_key(spec["software"])
    locked = spec["target"].startswith("locked")
    target = await new_account(spec["target"], ai=True, manually_approves_followers=locked)
    async with runtime.session() as session:
        author = await session.get(Account, target.id)
        assert author is not None
        post = await publish(
            session, runtime, author, Draft(text="a lighthouse in fog"), federate=False
        )
        post_uri, post_url = post.uri, post.url or post.uri
    values = {
        "target_actor": target.uri,
        "target_post": post_uri,
        "target_url": post_url,
        "local_host": runtime.settings.host,
        "public_key_pem": public_pem,
    }
    spec = substitute(spec, values)

    fake = FakeRemote()
    if spec.get("actor"):
        fake.serve(spec["actor"], signed_only=spec.get("signed_fetch_only", False))
    if spec.get("key_document"):
        fake.serve(spec["key_document"], signed_only=spec.get("signed_fetch_only", False))
    fake.gone.update(spec.get("gone", []))
    await runtime.use_http(httpx.AsyncClient(transport=httpx.MockTransport(fake)))

    inbox = target.inbox_uri if spec["inbox"] == "personal" else runtime.urls.shared_inbox()
    statuses = []
    for activity in spec["activities"]:
        body = json.dumps(activity).encode()
        headers = sign_post(inbox, body, spec["signing"], private_pem)
        if spec["signing"].get("tamper_body"):
            body = body.replace(b'"Like"', b'"Like" ')
            headers["content-length"] = str(len(body))
        response = await client.post(inbox, content=body, headers=headers)
        statuses.append((response.status_code, response.text[:300]))
        await advance_work(runtime)

    expected = spec["expect"]["status"]
    assert all(status == expected for status, _ in statuses), (
        f"expected {expected} for every POST, got {statuses}"
    )
    await check_outcome(spec, runtime, fake, post_uri)


async def check_outcome(spec: dict[str, Any], rt: Runtime, fake: FakeRemote, post_uri: str) -> None:
    outcome = spec["expect"]["outcome"]
    actor_id = ident(spec["activities"][0].get("actor"))
    target_uri = spec["activities"][0].get("object")
    async with rt.session() as session:
        parent = await session.scalar(select(Post).where(Post.uri == post_uri))
        assert parent is not None
        follow = await session.scalar(
            select(Follow)
            .join(Account, Account.id == Follow.follower_id)
            .where(Account.uri == actor_id)
        )
        stored = list(
            await session.scalars(select(Post).where(Post.local.is_(False), Post.uri != post_uri))
        )
        inbox_rows = list(await session.scalars(select(InboxItem)))
    accepts = [
        body
        for url, body in fake.posts
        if body.get("type") == "Accept" and ident(body.get("object")) == spec["activities"][0]["id"]
    ]
    work = "; ".join(f"{r.activity_uri}: {r.status} {r.last_error or ''}" for r in inbox_rows)

    if outcome != "nothing_stored":
        pending = [r for r in inbox_rows if r.status in ("queued", "running")]
        assert not pending, f"inbox rows never processed: {work}"

    if outcome == "follow_accepted":
        assert follow is not None and follow.accepted, f"follow not recorded as accepted ({work})"
        assert accepts, f"no Accept of the Follow was delivered; POSTs: {fake.posts} ({work})"
        actor = spec["actor"]
        inboxes = {actor["inbox"], actor.get("endpoints", {}).get("sharedInbox")}
        assert any(url in inboxes for url, body in fake.posts if body in accepts)
        assert accepts[0].get("actor") == target_uri
    elif outcome == "follow_pending":
        assert follow is not None, f"follow request not recorded ({work})"
        assert not follow.accepted, "a locked account accepted a follow by itself"
        assert not accepts, "an Accept was sent for a locked account"
    elif outcome == "follow_removed":
        assert accepts, f"the Follow before the Undo was never accepted ({work})"
        assert follow is None, f"Undo{{Follow}} left the follow in place ({work})"
    elif outcome == "reply_stored":
        replies = [p for p in stored if p.in_reply_to_uri == post_uri]
        assert replies, f"reply not stored ({work})"
        assert "<script" not in replies[0].content and "onerror" not in replies[0].content
        assert parent.replies_count == 1
    elif outcome == "like_counted":
        assert parent.likes_count == 1, f"likes_count={parent.likes_count} ({work})"
    elif outcome == "boost_counted":
        assert parent.boosts_count == 1, f"boosts_count={parent.boosts_count} ({work})"
    elif outcome == "quote_stored":
        quotes = [p for p in stored if p.quote_uri == post_uri]
        assert quotes, f"quote not stored as a quote of the AI post ({work})"
    elif outcome == "like_or_ignored":
        assert parent.likes_count in (0, 1)
        assert all(r.status not in ("queued", "running") for r in inbox_rows), work
    elif outcome == "nothing_stored":
        assert parent.likes_count == 0 and not stored and follow is None
    else:
        raise AssertionError(f"unknown outcome {outcome!r} in {spec}")
