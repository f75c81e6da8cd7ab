"""The forged-activity corpus: every way we know to make the inbox take what it must not.

Each `Variant` is one request an attacker (or a broken server) could send to our inbox,
built against a fresh instance with a fake fediverse around it, with the status we answer
and how many inbox rows may exist afterwards (almost always none). `test_corpus.py` runs
them all in CI; `docs/security.md` is generated from this list (`python -m
tests.instance.hardening.corpus > docs/security.md`) and a test keeps the two in step.

Actors on the fake fediverse: `alice` and `mallory` on remote.example (their documents and
keys are served), `eve` on evil.example; `bot` is our local AI account.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from activitypub.httpsig.cavage import cavage_signing_string
from activitypub.httpsig.common import format_http_date, rsa_sign, sha256_b64
from activitypub.signatures import sign_request_headers
from tests.instance.fediverse import ACTIVITY_JSON, RemoteActor


@dataclass(frozen=True)
class Request:
    body: bytes
    headers: dict[str, str]
    path: str = "/inbox"
    declared: int | None = None  # a Content-Length to send instead of the body's length


@dataclass
class World:
    """What a variant builds its requests from (`test_corpus.world` makes one)."""

    rt: Any
    alice: RemoteActor
    mallory: RemoteActor  # on alice's server, with a key of its own
    eve: RemoteActor  # on evil.example
    squatter: RemoteActor  # on evil.example; its document lists alice's key id as its own
    gone: RemoteActor  # on evil.example, deleted: nothing of it is served
    bot: str  # our local AI account's URI

    @property
    def host(self) -> str:
        return str(self.rt.settings.host)

    def sign(
        self, actor: RemoteActor, activity: Any = None, *, body: bytes | None = None,
        path: str = "/inbox", url: str | None = None, scheme: str = "cavage",
        key_id: str | None = None, pem: str | None = None, shift: timedelta = timedelta(0),
        content_type: str = ACTIVITY_JSON,
    ) -> Request:  # fmt: skip
        """`activity` (default: a new Create by `actor`) signed the way our own signer does."""
        raw = body if body is not None else json.dumps(activity or actor.create()).encode()
        headers = sign_request_headers(
            "POST", url or f"{self.rt.settings.base_url}{path}",
            key_id=key_id or actor.key_id, private_pem=pem or actor.private_pem, body=raw,
            content_type=content_type, scheme=scheme,  # type: ignore[arg-type]
            now=self.rt.now() + shift,
        )  # fmt: skip
        return Request(raw, headers, path)

    def cavage(
        self, actor: RemoteActor, covered: str, *, digest: str | None = None,
        date: str | None = None, algorithm: str = "rsa-sha256", age_s: int | None = None,
        lifetime_s: int = 300, more: str = "",
    ) -> Request:  # fmt: skip
        """A hand-made draft-cavage signature over the headers in `covered`, to build what
        our signer never would. `age_s`: hs2019 `(created)` that long ago and `(expires)`
        `lifetime_s` after it; `more`: parameters put in front."""
        body = json.dumps(actor.create()).encode()
        headers = {
            "Host": self.host, "Date": date or format_http_date(self.rt.now()),
            "Content-Type": ACTIVITY_JSON, "Digest": digest or f"SHA-256={sha256_b64(body)}",
        }  # fmt: skip
        params = f'{more}keyId="{actor.key_id}",algorithm="{algorithm}"'
        created = expires = None
        if age_s is not None:
            created = int(self.rt.now().timestamp()) - age_s
            expires = created + lifetime_s
            params += f",created={created},expires={expires}"
        values = {name.lower(): value for name, value in headers.items()}
        text = cavage_signing_string("POST", "/inbox", values, covered.split(),
                                     created=created, expires=expires)  # fmt: skip
        signed = base64.b64encode(rsa_sign(actor.private_pem, text.encode())).decode()
        headers["Signature"] = f'{params},headers="{covered}",signature="{signed}"'
        return Request(body, headers)


Build = Callable[[World], "Request | list[Request]"]


@dataclass(frozen=True)
class Variant:
    """One attempt: `build` makes the request (or a list: all but the last must be
    accepted, the last is the attempt); `status` is our answer to it and `rows` the inbox
    rows there may be afterwards."""

    name: str
    threat: str
    build: Build
    status: int
    rows: int = 0
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    fetches: bool = True  # False: the attempt must not make us fetch anything
    honest_after: bool = True  # alice's honest request is still accepted afterwards
    because: str = ""  # what the error names (the reason must be the one we meant)


def signature(request: Request, value: str) -> Request:
    return with_headers(request, Signature=value)


def with_headers(request: Request, **headers: str) -> Request:
    return replace(request, headers={**request.headers, **headers})


def without(request: Request, *names: str) -> Request:
    gone = {n.lower() for n in names}
    return replace(request, headers={k: v for k, v in request.headers.items()
                                     if k.lower() not in gone})  # fmt: skip


def at(request: Request, path: str) -> Request:
    return replace(request, path=path)


def swapped_body(request: Request, actor: RemoteActor) -> Request:
    return replace(request, body=json.dumps(actor.create()).encode())


def note(actor: RemoteActor, **fields: Any) -> dict[str, Any]:
    return {**actor.note(), **fields}


def mastodon_pin(w: World) -> dict[str, Any]:
    """Mastodon's Add of a pinned post (app/serializers/activitypub/add_serializer.rb): no id."""
    return {"@context": "https://www.w3.org/ns/activitystreams", "type": "Add",
            "actor": w.alice.uri, "object": f"{w.alice.uri}/statuses/1",
            "target": f"{w.alice.uri}/collections/featured"}  # fmt: skip


def forwarded_create(w: World) -> dict[str, Any]:
    """eve "forwards" a Create in alice's name whose id is the one alice's Delete will have."""
    return {"id": f"{w.alice.uri}#delete", "type": "Create", "actor": w.alice.uri,
            "object": f"{w.alice.uri}/statuses/1"}  # fmt: skip


def twice(w: World) -> list[Request]:
    activity = w.alice.create()
    return [w.sign(w.alice, activity), w.sign(w.alice, activity)]


SIGNED = "(request-target) host date digest"
CREATED = "(request-target) host (created) (expires) digest"
HOUR = timedelta(hours=1)

# ------------------------------------------------------------------------------------------
# signatures (draft-cavage, as Mastodon signs)
SIGNATURES = [
    Variant(
        "no signature",
        "an unsigned activity",
        lambda w: without(w.sign(w.alice), "Signature"),
        401,
        because="request is not signed: no Signature header",
    ),
    Variant(
        "garbage Signature",
        "a Signature header that does not parse",
        lambda w: signature(w.sign(w.alice), "garbage"),
        401,
        because="Signature header is malformed",
    ),
    Variant(
        "garbage Authorization",
        "a signature in `Authorization: Signature` that does not parse",
        lambda w: with_headers(
            without(w.sign(w.alice), "Signature"), Authorization="Signature keyId=,,"
        ),
        401,
        because="Signature header is malformed",
    ),
    Variant(
        "keyId given twice",
        "a Signature naming two keys",
        lambda w: w.cavage(w.alice, SIGNED, more=f'keyId="{w.mallory.key_id}",'),
        401,
        because="Signature header repeats the keyId parameter",
    ),
    Variant(
        "rsa-sha1",
        "a weak algorithm named",
        lambda w: w.cavage(w.alice, SIGNED, algorithm="rsa-sha1"),
        401,
        because="unsupported signature algorithm 'rsa-sha1'",
    ),
    Variant(
        "hmac-sha256",
        "a symmetric algorithm named",
        lambda w: w.cavage(w.alice, SIGNED, algorithm="hmac-sha256"),
        401,
        because="unsupported signature algorithm 'hmac-sha256'",
    ),
    Variant(
        "empty signature value",
        "a Signature whose signature is empty",
        lambda w: signature(
            w.sign(w.alice),
            f'keyId="{w.alice.key_id}",algorithm="rsa-sha256",headers="{SIGNED}",signature=""',
        ),
        401,
        because="Signature header has no signature",
    ),
    Variant(
        "signature not base64",
        "a signature that is no base64",
        lambda w: signature(
            w.sign(w.alice), f'keyId="{w.alice.key_id}",headers="{SIGNED}",signature="%%%"'
        ),
        401,
        because="signature is not valid base64",
    ),
    Variant(
        "someone else's private key",
        "mallory signs with alice's keyId",
        lambda w: w.sign(w.alice, pem=w.mallory.private_pem),
        401,
        because="signature does not verify with the signer's key",
    ),
    Variant(
        "body swapped",
        "a signed request whose body was replaced (digest mismatch)",
        lambda w: swapped_body(w.sign(w.alice), w.alice),
        401,
        because="digest mismatch: the body does not match its signed digest",
    ),
    Variant(
        "digest not signed",
        "a Digest header outside the signed headers",
        lambda w: w.cavage(w.alice, "(request-target) host date"),
        401,
        because="the Digest header must be signed on a POST request",
    ),
    Variant(
        "no Digest",
        "a POST without a Digest",
        lambda w: without(w.cavage(w.alice, "(request-target) host date"), "Digest"),
        401,
        because="the Digest header must be signed on a POST request",
    ),
    Variant(
        "SHA-512 digest only",
        "a digest algorithm we do not check",
        lambda w: w.cavage(
            w.alice, SIGNED, digest="SHA-512=" + base64.b64encode(b"x" * 64).decode()
        ),
        401,
        because="only SHA-256 digests are supported",
    ),
    Variant(
        "digest not base64",
        "a digest that is no base64",
        lambda w: w.cavage(w.alice, SIGNED, digest="SHA-256=%%%"),
        401,
        because="digest is not valid base64",
    ),
    Variant(
        "date not signed",
        "a signature that leaves the date out, valid for ever",
        lambda w: w.cavage(w.alice, "(request-target) host digest"),
        401,
        because="the Date header or (created) must be signed",
    ),
    Variant(
        "signed two hours ago",
        "a replay of an old signed request",
        lambda w: w.sign(w.alice, shift=-2 * HOUR),
        401,
        because="signature has expired: date is too far in the past",
    ),
    Variant(
        "signed for two hours ahead",
        "a request signed to be replayed later",
        lambda w: w.sign(w.alice, shift=2 * HOUR),
        401,
        because="signature date is too far in the future",
    ),
    Variant(
        "unparsable Date",
        "a Date that is no HTTP date",
        lambda w: w.cavage(w.alice, SIGNED, date="yesterday"),
        401,
        because="Date header is not a valid HTTP date",
    ),
    Variant(
        "a 20-digit year",
        "a Date that overflowed the date parser (a 500, found by fuzzing)",
        lambda w: w.cavage(w.alice, SIGNED, date="Mon, 01 Jan 99999999999999999999 00:00:00 GMT"),
        401,
        because="Date header is not a valid HTTP date",
    ),
    Variant(
        "(expires) passed",
        "an hs2019 signature past its own (expires) and the hour of clock skew",
        lambda w: w.cavage(w.alice, CREATED, algorithm="hs2019", age_s=3 * 3600, lifetime_s=60),
        401,
        because="signature has expired: date is too far in the past",
    ),
    Variant(
        "(expires) past the cap",
        "an hs2019 signature that asks to live two days (12 hours at most)",
        lambda w: w.cavage(
            w.alice, CREATED, algorithm="hs2019", age_s=14 * 3600, lifetime_s=48 * 3600
        ),
        401,
        because="signature has expired: date is too far in the past",
    ),
    Variant(
        "(created) with rsa-sha256",
        "(created) is hs2019's only",
        lambda w: w.cavage(w.alice, CREATED, age_s=0),
        401,
        because="(created) and (expires) are only allowed with hs2019",
    ),
    Variant(
        "a signed header repeated",
        "the same header twice in the signed list",
        lambda w: w.cavage(w.alice, "(request-target) host date date digest"),
        401,
        because="Signature header has too many or repeated signed headers",
    ),
    Variant(
        "sent to another path",
        "a request signed for /inbox sent to a personal inbox",
        lambda w: at(w.sign(w.alice), "/users/bot/inbox"),
        401,
        because="signature does not verify with the signer's key",
    ),
    Variant(
        "query added",
        "a query the signature did not cover",
        lambda w: at(w.sign(w.alice), "/inbox?x=2"),
        401,
        because="signature does not verify with the signer's key",
    ),
    Variant(
        "relayed from another server",
        "a request signed for victim.example, replayed to us with its Host",
        lambda w: w.sign(w.alice, url="http://victim.example/inbox"),
        401,
        fetches=False,
        because="the request names another host than this instance",
    ),
    Variant(
        "relayed, Host rewritten",
        "a request signed for victim.example with our Host put in",
        lambda w: with_headers(w.sign(w.alice, url="http://victim.example/inbox"), Host=w.host),
        401,
        because="signature does not verify with the signer's key",
    ),
    Variant(
        "relayed, host not signed",
        "a relayed request that did not sign Host",
        lambda w: with_headers(
            w.cavage(w.alice, "(request-target) date digest"), Host="victim.example"
        ),
        401,
        fetches=False,
        because="the request names another host than this instance",
    ),
    Variant(
        "key owned elsewhere",
        "a key document on one server naming an owner on another",
        lambda w: w.sign(w.eve, key_id="https://remote.example/keys/eve"),
        401,
        because="unknown key",
    ),
    Variant(
        "squatted key id",
        "an actor document listing another server's key id as its own (finding 3)",
        lambda w: w.sign(w.squatter),
        401,
        because="unknown key",
    ),
    Variant(
        "another's key id, own key",
        "eve signs with alice's key id and her own key",
        lambda w: w.sign(w.eve, key_id=w.alice.key_id),
        401,
        because="signature does not verify with the signer's key",
    ),
    Variant(
        "our own key id",
        "a remote request signed with one of our accounts' key ids",
        lambda w: w.sign(w.alice, key_id=f"{w.bot}#main-key"),
        401,
        because="signature does not verify with the signer's key",
    ),
    Variant(
        "unknown key",
        "a key id that answers 404",
        lambda w: w.sign(w.alice, key_id="https://remote.example/users/nobody#main-key"),
        401,
        because="could not fetch the signer's key",
    ),
    Variant(
        "key id not http(s)",
        "a key id on another scheme (a file to read)",
        lambda w: w.sign(w.alice, key_id="file:///etc/passwd"),
        401,
        fetches=False,
        because="unknown key",
    ),
]

# signatures (RFC 9421)
RFC9421 = [
    Variant(
        "RFC 9421 body swapped",
        "a Content-Digest that does not match the body",
        lambda w: swapped_body(w.sign(w.alice, scheme="rfc9421"), w.alice),
        401,
        because="digest mismatch: the body does not match its signed digest",
    ),
    Variant(
        "RFC 9421 for another authority",
        "@target-uri of another server, our Host put in (finding 13)",
        lambda w: with_headers(
            w.sign(w.alice, scheme="rfc9421", url="http://victim.example/inbox"), Host=w.host
        ),
        401,
        because="signature does not verify with the signer's key",
    ),
    Variant(
        "RFC 9421 expired",
        "an RFC 9421 signature created two hours ago",
        lambda w: w.sign(w.alice, scheme="rfc9421", shift=-2 * HOUR),
        401,
        because="signature has expired: date is too far in the past",
    ),
    Variant(
        "RFC 9421 without Content-Digest",
        "an RFC 9421 POST missing a signed component",
        lambda w: without(w.sign(w.alice, scheme="rfc9421"), "Content-Digest"),
        401,
        because="request has a body but no Content-Digest header",
    ),
    Variant(
        "RFC 9421 wrong key",
        "mallory's key under alice's keyid",
        lambda w: w.sign(w.alice, scheme="rfc9421", pem=w.mallory.private_pem),
        401,
        because="signature does not verify with the signer's key",
    ),
    Variant(
        "RFC 9421 garbage",
        "a Signature-Input that does not parse",
        lambda w: with_headers(
            w.sign(w.alice, scheme="rfc9421"),
            **{"Signature-Input": "sig1=(((", "Signature": "sig1=:AA:"},
        ),
        401,
        because="malformed RFC 9421 signature headers: invalid bare item",
    ),
]

# what the request is
SHAPES = [
    Variant(
        "application/json",
        "a body that does not say it is ActivityStreams",
        lambda w: w.sign(w.alice, content_type="application/json"),
        415,
        because="Content-Type must be application/activity+json",
    ),
    Variant(
        "text/html",
        "an HTML body",
        lambda w: w.sign(w.alice, content_type="text/html"),
        415,
        because="Content-Type must be application/activity+json",
    ),
    Variant(
        "ld+json without profile",
        "JSON-LD without the ActivityStreams profile",
        lambda w: w.sign(w.alice, content_type="application/ld+json"),
        415,
        because="Content-Type must be application/activity+json",
    ),
    Variant(
        "declared too large",
        "a Content-Length over the 1 MiB cap",
        lambda w: replace(w.sign(w.alice), declared=2 << 20),
        413,
    ),
    Variant(
        "too large",
        "a body over the 1 MiB cap",
        lambda w: w.sign(w.alice, body=b'{"x": "' + b"a" * (1 << 20) + b'"}'),
        413,
        because="activity too large",
    ),
    Variant(
        "not JSON",
        "a body that is not JSON",
        lambda w: w.sign(w.alice, body=b"hello"),
        400,
        because="body is not JSON",
    ),
    Variant(
        "a JSON array",
        "JSON that is not an object",
        lambda w: w.sign(w.alice, body=b"[1, 2]"),
        400,
        because="body is not a JSON object",
    ),
    Variant(
        "deep nesting",
        "JSON nested past the parser's depth",
        lambda w: w.sign(w.alice, body=b"[" * 100_000 + b"]" * 100_000),
        400,
        because="body is not JSON",
    ),
    Variant(
        "personal inbox of nobody",
        "the inbox of an account that does not exist",
        lambda w: w.sign(w.alice, path="/users/nobody/inbox"),
        404,
        because="no such account",
    ),
]

# who may say what (intake.admit)
ORIGINS = [
    Variant(
        "no id",
        "an activity without an id",
        lambda w: w.sign(w.alice, {**w.alice.create(), "id": None}),
        400,
        because="an activity needs an id",
    ),
    Variant(
        "id not http(s)",
        "an id that is no URL we can fetch",
        lambda w: w.sign(w.alice, {**w.alice.create(), "id": "urn:uuid:1"}),
        400,
        because="not an http(s) URL that we can store",
    ),
    Variant(
        "id with an unpaired surrogate",
        "an id no database stores (finding 4)",
        lambda w: w.sign(w.alice, {**w.alice.create(), "id": f"{w.alice.uri}/\ud800"}),
        400,
        because="not an http(s) URL that we can store",
    ),
    Variant(
        "id with a NUL",
        "an id no database stores (finding 4)",
        lambda w: w.sign(w.alice, {**w.alice.create(), "id": f"{w.alice.uri}/a\x00b"}),
        400,
        because="not an http(s) URL that we can store",
    ),
    Variant(
        "id too long",
        "an id longer than the column (finding 4)",
        lambda w: w.sign(w.alice, {**w.alice.create(), "id": f"{w.alice.uri}/" + "x" * 2100}),
        400,
        because="not an http(s) URL that we can store",
    ),
    Variant(
        "no actor",
        "an activity without an actor",
        lambda w: w.sign(w.alice, {**w.alice.create(), "actor": None}),
        400,
        because="an activity needs an actor and a type",
    ),
    Variant(
        "no type",
        "an activity without a type",
        lambda w: w.sign(w.alice, {**w.alice.create(), "type": None}),
        400,
        because="an activity needs an actor and a type",
    ),
    Variant(
        "a Like in another's name",
        "mallory signs a Like as alice",
        lambda w: w.sign(w.mallory, w.alice.activity("Like", w.bot)),
        403,
        because="the signer",
    ),
    Variant(
        "an Undo in another's name",
        "mallory undoes alice's follow",
        lambda w: w.sign(
            w.mallory,
            w.alice.activity("Undo", {"type": "Follow", "actor": w.alice.uri, "object": w.bot}),
        ),
        403,
        because="the signer",
    ),
    Variant(
        "a Delete in another's name",
        "mallory, whose key we know, deletes alice",
        lambda w: [w.sign(w.mallory), w.sign(w.mallory, w.alice.activity("Delete", w.alice.uri))],
        403,
        rows=1,
        because="the signer",
    ),
    Variant(
        "an Update in another's name",
        "mallory rewrites alice's profile",
        lambda w: w.sign(w.mallory, w.alice.activity("Update", w.alice.document(name="hacked"))),
        403,
        because="the signer",
    ),
    Variant(
        "an Accept in another's name",
        "mallory accepts a follow for alice",
        lambda w: w.sign(w.mallory, w.alice.activity("Accept", f"{w.bot}#follows/1")),
        403,
        because="the signer",
    ),
    Variant(
        "a Block in another's name",
        "mallory blocks us as alice",
        lambda w: w.sign(w.mallory, w.alice.activity("Block", w.bot)),
        403,
        because="the signer",
    ),
    Variant(
        "forwarded Create of an object elsewhere",
        "a forwarded Create whose object is not on its actor's server",
        lambda w: w.sign(
            w.alice, w.eve.create(note(w.eve, id="https://remote.example/statuses/x"))
        ),
        403,
        because="the signer",
    ),
    Variant(
        "our actor claimed",
        "a remote request in the name of our account",
        lambda w: w.sign(w.alice, {**w.alice.create(), "actor": w.bot}),
        403,
        because="a remote server cannot send activities of a local actor",
    ),
    Variant(
        "our actor in another spelling",
        "our account's URL in upper case",
        lambda w: w.sign(w.alice, {**w.alice.create(), "actor": w.bot.upper()}),
        403,
        because="a remote server cannot send activities of a local actor",
    ),
    Variant(
        "an id of ours",
        "a remote activity with one of our ids",
        lambda w: w.sign(w.alice, {**w.alice.create(), "id": f"{w.bot}/activities/1"}),
        403,
        because="a remote server cannot send activities of a local actor",
    ),
    Variant(
        "an id on another server",
        "claiming another server's predictable future id (finding 9)",
        lambda w: w.sign(
            w.alice,
            w.alice.activity("Like", w.bot, id="https://victim.example/users/carol#likes/1"),
        ),
        403,
        because="the activity id",
    ),
    Variant(
        "an object on another server",
        "a Create of an object on another server",
        lambda w: w.sign(
            w.alice, w.alice.create(note(w.alice, id="https://victim.example/statuses/1"))
        ),
        403,
        because="https://victim.example/statuses/1 is not on the origin of the actor",
    ),
    Variant(
        "attributed to another server",
        "a Create in the name of someone elsewhere",
        lambda w: w.sign(
            w.alice,
            w.alice.create(note(w.alice, attributedTo="https://victim.example/users/carol")),
        ),
        403,
        because="https://victim.example/users/carol is not on the origin of the actor",
    ),
    Variant(
        "attributed to our account",
        "a Note put in our account's mouth",
        lambda w: w.sign(w.alice, w.alice.create(note(w.alice, attributedTo=w.bot))),
        403,
        because="a remote actor cannot Create local object",
    ),
    Variant(
        "an Update of our post",
        "an edit of one of our posts",
        lambda w: w.sign(
            w.alice, w.alice.activity("Update", {"id": f"{w.bot}/posts/1", "type": "Note"})
        ),
        403,
        because="a remote actor cannot Update local object",
    ),
    Variant(
        "a Create without an object id",
        "a Create whose object has no id",
        lambda w: w.sign(w.alice, w.alice.create(note(w.alice, id=None))),
        400,
        because="Create without an object id",
    ),
]

# limits (instance/inbound/limits.py)
LIMITS = [
    Variant(
        "past the actor's allowance",
        "one actor flooding the inbox (finding 8)",
        lambda w: [w.sign(w.alice), w.sign(w.alice)],
        429,
        rows=1,
        settings={"federation": {"inbox_actor_per_minute": 1}},
        honest_after=False,
        because="you are sending faster than this instance takes",
    ),
    Variant(
        "past the actor's bytes",
        "one actor filling the disk (finding 8)",
        lambda w: [
            w.sign(w.alice, w.alice.create(note(w.alice, content="a" * 600_000))),
            w.sign(w.alice, w.alice.create(note(w.alice, content="a" * 600_000))),
        ],
        429,
        rows=1,
        settings={"federation": {"inbox_actor_mb_per_minute": 1}},
        honest_after=False,
        because="you are sending faster than this instance takes",
    ),
    Variant(
        "past the server's allowance",
        "one server's actors flooding the inbox",
        lambda w: [w.sign(w.alice), w.sign(w.mallory)],
        429,
        rows=1,
        settings={"federation": {"inbox_domain_per_minute": 1}},
        honest_after=False,
        because="you are sending faster than this instance takes",
    ),
    Variant(
        "disk nearly full",
        "writes past the free-disk watermark (finding 8)",
        lambda w: w.sign(w.alice),
        503,
        settings={"federation": {"inbox_min_free_disk_mb": 1 << 40}},
        honest_after=False,
        because="this instance is short of disk space",
    ),
]

# accepted, and nothing done twice or for nothing
HARMLESS = [
    Variant(
        "the Delete of an actor we never knew",
        "Mastodon's deletion broadcast: its key is gone, nothing to fetch or keep",
        lambda w: w.sign(w.gone, w.gone.activity("Delete", w.gone.uri)),
        202,
        fetches=False,
    ),
    Variant(
        "a type we do not handle",
        "accepted (so it is not retried) and not kept",
        lambda w: w.sign(w.alice, w.alice.activity("Listen", "https://x.example/1")),
        202,
    ),
    Variant(
        "a pin without an id",
        "Mastodon's Add of a pinned post has no id: accepted, not kept, never 400",
        lambda w: w.sign(w.alice, mastodon_pin(w)),
        202,
    ),
    Variant(
        "an id taken by a forward",
        "eve forwards a Create in alice's name with alice's future Delete id; alice's real "
        "Delete is still kept (finding 9, by the red-team pass)",
        lambda w: [
            w.sign(w.alice),  # alice is known: her Delete is verified, not dropped unread
            w.sign(w.eve, forwarded_create(w)),
            w.sign(w.alice, w.alice.activity("Delete", w.alice.uri, id=f"{w.alice.uri}#delete")),
        ],
        202,
        rows=3,
    ),
    Variant("the same activity again", "a redelivery is kept once", twice, 202, rows=1),
]

CORPUS: list[Variant] = [*SIGNATURES, *RFC9421, *SHAPES, *ORIGINS, *LIMITS, *HARMLESS]

# ------------------------------------------------------------------------------------------
# the review findings of December 2026, each with the commit's test
FINDINGS = [
    (
        1,
        "Stored XSS through remote URLs copied into our pages and posts",
        "hardening/test_links.py",
    ),
    (2, "Private remixes listed by the public lineage", "hardening/test_lineage.py"),
    (3, "Key-id squatting by another server's actor document", "hardening/test_keys.py"),
    (4, "One unstorable id failing a whole write batch", "hardening/test_intake.py"),
    (5, "Slow bodies holding every inbox slot", "hardening/test_slow_bodies.py"),
    (6, "A key-fetch tarpit starving the inbox and deliveries", "hardening/test_key_fetches.py"),
    (7, "Memory kept per request with a new keyId", "hardening/test_key_fetches.py"),
    (8, "One actor filling the disk; inbox rows kept for ever", "hardening/test_inbox_limits.py"),
    (9, "Activity ids not bound to their actor's server", "hardening/test_intake.py"),
    (10, "One slow server holding up the inbox worker", "inbound/test_inbox_worker.py"),
    (
        11,
        "Ask quotas per host:port, remote asks filling the queue, a reply per refusal",
        "hardening/test_asks.py",
    ),
    (12, "Login failures counted only after hashing", "web/test_web_login.py"),
    (13, "Signatures for another authority accepted", "hardening/test_signed_for_us.py"),
    (14, "WebFinger without a deadline; a blocked address as a 500", "hardening/test_edges.py"),
    (15, "?page= overflow as a 500; tracebacks for gone clients", "hardening/test_edges.py"),
    (
        16,
        "X-Forwarded-For trusted by default; accounts locked out by strangers",
        "web/test_web_login.py",
    ),
    (17, "The database world-readable, images private", "hardening/test_file_modes.py"),
    (
        18,
        "Remote usernames passing for local ones; posts from the future",
        "hardening/test_impersonation.py",
    ),
    (19, "Remote images hotlinked from our pages", "hardening/test_remote_media.py"),
    (20, "A quote stamp returned for another post", "hardening/test_stamps.py"),
    (21, "The ask word filter bypassed by spelling", "hardening/test_asks.py"),
    (22, "Unlimited reports per actor", "hardening/test_reports_and_leases.py"),
    (
        23,
        "Inbox items of a crashed worker waiting five minutes",
        "hardening/test_reports_and_leases.py",
    ),
]

RED_TEAM_TEST = "instance/hardening/test_red_team.py"
RED_TEAM = [
    ("R1", "A huge audience de-duplicated in quadratic time", "activitypub/test_ap_addressing.py"),
    ("R2", "Mention tags costing a query each, in the write lock", RED_TEAM_TEST),
    ("R3", "An id taken by a forwarded Create", "instance/hardening/test_intake.py"),
    ("R4", "A slow image host holding the object-fetch pool", RED_TEAM_TEST),
    ("R5", "A remote-image cache with no cap, blind to free disk", RED_TEAM_TEST),
    ("R6", "A deleted remote post's images still served", RED_TEAM_TEST),
]


def markdown() -> str:
    lines = [
        "# Security: what the inbox refuses, and what was fixed",
        "",
        "Generated from `tests/instance/hardening/corpus.py` (`python -m "
        "tests.instance.hardening.corpus > docs/security.md`); "
        "`tests/instance/hardening/test_corpus.py` runs every line below in CI and fails "
        "when this page and the corpus differ.",
        "",
        "## The forged-activity corpus",
        "",
        f"{len(CORPUS)} requests an attacker, or a broken server, could send to our inbox. "
        "Each runs against a fresh instance; *rows* is how many inbox rows may exist "
        "afterwards.",
        "",
        "| # | request | threat | answer | rows |",
        "|---|---|---|---|---|",
    ]
    for n, v in enumerate(CORPUS, 1):
        note = " (with the accepted requests before it)" if v.rows else ""
        answer = f"{v.status}: {v.because}" if v.because else str(v.status)
        lines.append(f"| {n} | {v.name} | {v.threat} | {answer} | {v.rows}{note} |")
    lines += [
        "",
        "## Review findings, December 2026",
        "",
        "An adversarial review against a live instance found these; each has a test that "
        "fails on the code before its fix (under `tests/instance/`).",
        "",
        "| finding | what | test |",
        "|---|---|---|",
    ]
    lines += [f"| {n} | {what} | `{test}` |" for n, what, test in FINDINGS]
    lines += [
        "",
        "## Red-team pass, December 2026",
        "",
        "A second adversarial pass, after the fixes above, attacked them and what they "
        "added; each has a test that fails on the code before its fix (under `tests/`).",
        "",
        "| finding | what | test |",
        "|---|---|---|",
    ]
    lines += [f"| {n} | {what} | `{test}` |" for n, what, test in RED_TEAM]
    lines += [
        "",
        "## Also in CI",
        "",
        "- Property-based fuzzing (hypothesis) of the signature parsers and verifier, the "
        "object views, URL and host normalisation, the origin policy and the HTML sanitiser: "
        "only their typed errors, never another exception (`tests/*/test_fuzz_*.py`; "
        "`FUZZ_EXAMPLES=N` to run longer).",
        "- Overload: ten times what the inbox sustains is answered with 503 or 429 and "
        "Retry-After, and every accepted activity is kept and handled "
        "(`hardening/test_overload.py`; the numbers of `dreamloom bench overload` are in "
        "BENCHMARKS.md).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown(), end="")
