"""HTTP signatures: byte-exact signing, Mastodon's verification rules, forged and tampered
requests (malformed, body swap, replay elsewhere, stale date, key not bound to its owner)."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from activitypub.errors import FetchError, SignatureError
from activitypub.keys import KeyPair, load_private_key, load_public_key
from activitypub.signatures import (
    SignatureAuth,
    cavage_signing_string,
    sign_request_headers,
    verify_request,
)

ALICE = "https://a.example/users/alice"
KEY_ID = ALICE + "#main-key"
INBOX = "https://b.example/users/bob/inbox"
NOW = datetime(2026, 7, 7, 10, 0, 0, tzinfo=UTC)
BODY = b'{"type":"Create","actor":"https://a.example/users/alice"}'
CT = "application/activity+json"


def signed_post(key: KeyPair, *, body: bytes = BODY, now: datetime = NOW, **kw: object) -> dict:
    headers = sign_request_headers(
        "POST",
        INBOX,
        key_id=KEY_ID,
        private_pem=key.private_pem,
        body=body,
        content_type=CT,
        now=now,
        **kw,  # type: ignore[arg-type]
    )
    return headers


def cavage_header(key: KeyPair, text: str, params: str) -> str:
    signature = load_private_key(key.private_pem).sign(
        text.encode(), padding.PKCS1v15(), hashes.SHA256()
    )
    return f'{params},signature="{base64.b64encode(signature).decode()}"'


async def verify(headers, *, method="POST", target="/users/bob/inbox", body=BODY, store, now=NOW):
    return await verify_request(method, target, headers, body, store, now=now)


async def reason_of(headers, store, **kw) -> str:
    with pytest.raises(SignatureError) as info:
        await verify(headers, store=store, **kw)
    return info.value.reason


# ----------------------------------------------------------------- signing


def test_post_signing_string_is_byte_exact(fixed_key: KeyPair) -> None:
    """Lowercased names, Mastodon's header order, no trailing newline."""
    headers = sign_request_headers(
        "POST",
        "https://mastodon.example/users/alice/inbox",
        key_id=KEY_ID,
        private_pem=fixed_key.private_pem,
        body=b'{"a":1}',
        content_type=CT,
        now=NOW,
    )
    digest = "SHA-256=" + base64.b64encode(hashlib.sha256(b'{"a":1}').digest()).decode()
    assert headers["Host"] == "mastodon.example"
    assert headers["Date"] == "Tue, 07 Jul 2026 10:00:00 GMT"
    assert headers["Digest"] == digest
    expected = (
        "(request-target): post /users/alice/inbox\n"
        "host: mastodon.example\n"
        "date: Tue, 07 Jul 2026 10:00:00 GMT\n"
        f"digest: {digest}\n"
        "content-type: application/activity+json"
    )
    signature = base64.b64encode(
        load_private_key(fixed_key.private_pem).sign(
            expected.encode(), padding.PKCS1v15(), hashes.SHA256()
        )
    ).decode()
    assert headers["Signature"] == (
        f'keyId="{KEY_ID}",algorithm="rsa-sha256",'
        f'headers="(request-target) host date digest content-type",signature="{signature}"'
    )
    assert "\n" not in signature


def test_get_signing_string_includes_query(fixed_key: KeyPair) -> None:
    """GET signs (request-target) host date, with the query string."""
    headers = sign_request_headers(
        "GET",
        "https://a.example/users/x/outbox?page=2",
        key_id=KEY_ID,
        private_pem=fixed_key.private_pem,
        now=NOW,
    )
    assert "Digest" not in headers
    assert 'headers="(request-target) host date"' in headers["Signature"]
    text = cavage_signing_string(
        "GET",
        "/users/x/outbox?page=2",
        {"host": headers["Host"], "date": headers["Date"]},
        ["(request-target)", "host", "date"],
    )
    assert text == (
        "(request-target): get /users/x/outbox?page=2\nhost: a.example\n"
        "date: Tue, 07 Jul 2026 10:00:00 GMT"
    )
    signature = base64.b64decode(headers["Signature"].split('signature="')[1].rstrip('"'))
    load_public_key(fixed_key.public_pem).verify(
        signature, text.encode(), padding.PKCS1v15(), hashes.SHA256()
    )


def test_non_default_port_is_in_host() -> None:
    headers = sign_request_headers(
        "GET",
        "http://127.0.0.1:8080/a",
        key_id=KEY_ID,
        private_pem=load_pem_fixture(),
        now=NOW,
    )
    assert headers["Host"] == "127.0.0.1:8080"


def load_pem_fixture() -> str:
    from activitypub.keys import generate_rsa_keypair

    return generate_rsa_keypair().private_pem


async def test_signature_auth_signs_httpx_requests(alice_key: KeyPair, key_store) -> None:
    """SignatureAuth (httpx.Auth) signs the exact body bytes httpx sends."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(202)

    auth = SignatureAuth(KEY_ID, alice_key.private_pem, clock=lambda: NOW)
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler), auth=auth) as client:
        await client.post(INBOX, content=BODY, headers={"Content-Type": CT})
        await client.get("https://b.example/users/bob?x=1")
    post, get = seen
    result = await verify(list(post.headers.multi_items()), store=key_store, body=post.content)
    assert result.owner == ALICE and result.scheme == "cavage"
    result = await verify(
        list(get.headers.multi_items()),
        method="GET",
        target="/users/bob?x=1",
        body=b"",
        store=key_store,
    )
    assert result.covered == ("(request-target)", "host", "date")


async def test_signature_auth_rfc9421(alice_key: KeyPair, key_store) -> None:
    seen: list[httpx.Request] = []
    auth = SignatureAuth(KEY_ID, alice_key.private_pem, scheme="rfc9421", clock=lambda: NOW)
    transport = httpx.MockTransport(lambda r: seen.append(r) or httpx.Response(202))
    async with httpx.AsyncClient(transport=transport, auth=auth) as client:
        await client.post(INBOX, content=BODY, headers={"Content-Type": CT})
    (post,) = seen
    result = await verify(post.headers, store=key_store, body=post.content)
    assert result.scheme == "rfc9421" and result.algorithm == "rsa-v1_5-sha256"
    assert result.covered == ("@method", "@target-uri", "content-digest")


# ----------------------------------------------------------------- verification: happy paths


async def test_round_trip_cavage(alice_key: KeyPair, key_store) -> None:
    result = await verify(signed_post(alice_key), store=key_store)
    assert (result.key_id, result.owner, result.algorithm) == (KEY_ID, ALICE, "rsa-sha256")
    assert result.created == NOW
    assert key_store.calls == [(KEY_ID, False)]


async def test_round_trip_rfc9421(alice_key: KeyPair, key_store) -> None:
    headers = signed_post(alice_key, scheme="rfc9421")
    assert headers["Content-Digest"].startswith("sha-256=:")
    result = await verify(headers, store=key_store)
    assert result.scheme == "rfc9421" and result.owner == ALICE


async def test_missing_algorithm_means_hs2019(alice_key: KeyPair, key_store) -> None:
    """As Mastodon: a missing algorithm is hs2019, which is accepted with an RSA key."""
    headers = signed_post(alice_key)
    headers["Signature"] = headers["Signature"].replace('algorithm="rsa-sha256",', "")
    result = await verify(headers, store=key_store)
    assert result.algorithm == "hs2019"


async def test_hs2019_with_created(alice_key: KeyPair, key_store) -> None:
    """(created)/(expires) are allowed with hs2019."""
    created = int(NOW.timestamp()) - 10
    digest = "SHA-256=" + base64.b64encode(hashlib.sha256(BODY).digest()).decode()
    text = (
        f"(request-target): post /users/bob/inbox\n(created): {created}\n"
        f"host: b.example\ndigest: {digest}"
    )
    params = (
        f'keyId="{KEY_ID}",algorithm="hs2019",created={created},'
        'headers="(request-target) (created) host digest"'
    )
    headers = {
        "Host": "b.example",
        "Digest": digest,
        "Signature": cavage_header(alice_key, text, params),
    }
    result = await verify(headers, store=key_store)
    assert result.created == datetime.fromtimestamp(created, UTC)


async def test_lowercase_digest_name_and_extra_algorithms(alice_key: KeyPair, key_store) -> None:
    """`sha-256=` and `SHA-256=` both accepted; other digests alongside ignored."""
    b64 = base64.b64encode(hashlib.sha256(BODY).digest()).decode()
    for digest in (f"sha-256={b64}", f"SHA-512=AAAA,SHA-256={b64}"):
        date = "Tue, 07 Jul 2026 10:00:00 GMT"
        text = (
            f"(request-target): post /users/bob/inbox\nhost: b.example\ndate: {date}\n"
            f"digest: {digest}"
        )
        params = (
            f'keyId="{KEY_ID}",algorithm="rsa-sha256",headers="(request-target) host date digest"'
        )
        headers = {
            "Host": "b.example",
            "Date": date,
            "Digest": digest,
            "Signature": cavage_header(alice_key, text, params),
        }
        assert (await verify(headers, store=key_store)).owner == ALICE


async def test_repeated_header_values_are_joined(alice_key: KeyPair, key_store) -> None:
    """Rebuild from the raw request; repeated fields join with ', '."""
    date = "Tue, 07 Jul 2026 10:00:00 GMT"
    text = f"(request-target): get /users/bob\nhost: b.example\ndate: {date}\nx-thing: one, two"
    params = f'keyId="{KEY_ID}",headers="(request-target) host date x-thing"'
    raw = [
        (b"Host", b"b.example"),
        (b"Date", date.encode()),
        (b"X-Thing", b"one"),
        (b"x-thing", b"two"),
        (b"Signature", cavage_header(alice_key, text, params).encode()),
    ]
    result = await verify(raw, method="GET", target="/users/bob", body=b"", store=key_store)
    assert result.key_id == KEY_ID


async def test_content_type_is_not_normalised(alice_key: KeyPair, key_store) -> None:
    """Mastodon signs content-type; the raw value is what must verify."""
    raw_ct = 'application/ld+json; profile="https://www.w3.org/ns/activitystreams"'
    headers = signed_post(alice_key)
    headers = sign_request_headers(
        "POST",
        INBOX,
        key_id=KEY_ID,
        private_pem=alice_key.private_pem,
        body=BODY,
        content_type=raw_ct,
        now=NOW,
    )
    assert (await verify(headers, store=key_store)).owner == ALICE
    headers["Content-Type"] = "application/ld+json"
    assert await reason_of(headers, key_store) == "signature does not verify with the signer's key"


# ----------------------------------------------------------------- malformed signatures


@pytest.mark.parametrize(
    ("signature", "reason"),
    [
        (None, "request is not signed: no Signature header"),
        ("garbage", "Signature header is malformed"),
        ('keyId="x",keyId="y",signature="AA=="', "Signature header repeats the keyId parameter"),
        ('algorithm="rsa-sha256",signature="AAAA"', "Signature header has no keyId"),
        (f'keyId="{KEY_ID}",algorithm="rsa-sha256"', "Signature header has no signature"),
        (f'keyId="{KEY_ID}",signature="not base64!"', "signature is not valid base64"),
        (
            f'keyId="{KEY_ID}",algorithm="rsa-sha1",headers="(request-target) host date digest",'
            'signature="AAAA"',
            "unsupported signature algorithm 'rsa-sha1'",
        ),
        (
            f'keyId="{KEY_ID}",algorithm="hmac-sha256",signature="AAAA"',
            "unsupported signature algorithm 'hmac-sha256'",
        ),
    ],
)
async def test_malformed_signatures_are_refused(alice_key, key_store, signature, reason) -> None:
    """No/garbage Signature, unsupported algorithm -> 401 with a specific reason."""
    headers = signed_post(alice_key)
    del headers["Signature"]
    if signature is not None:
        headers["Signature"] = signature
    assert await reason_of(headers, key_store) == reason
    assert key_store.calls == []


# ----------------------------------------------------------------- body swap


async def test_swapped_body_is_a_digest_mismatch(alice_key, key_store) -> None:
    """Sign body A, send body B -> digest mismatch (before any key fetch)."""
    headers = signed_post(alice_key)
    reason = await reason_of(headers, key_store, body=b'{"type":"Delete"}')
    assert reason == "digest mismatch: the body does not match its signed digest"
    assert key_store.calls == []


async def test_swapped_body_with_rewritten_digest_does_not_verify(alice_key, key_store) -> None:
    """The attacker also rewrites Digest -> the signature no longer verifies."""
    swapped = b'{"type":"Delete"}'
    headers = signed_post(alice_key)
    headers["Digest"] = "SHA-256=" + base64.b64encode(hashlib.sha256(swapped).digest()).decode()
    reason = await reason_of(headers, key_store, body=swapped)
    assert reason == "signature does not verify with the signer's key"


async def test_unsigned_digest_is_refused(alice_key, key_store) -> None:
    """A Digest header that is present but not signed -> 401."""
    date = "Tue, 07 Jul 2026 10:00:00 GMT"
    text = f"(request-target): post /users/bob/inbox\nhost: b.example\ndate: {date}"
    params = f'keyId="{KEY_ID}",algorithm="rsa-sha256",headers="(request-target) host date"'
    headers = {
        "Host": "b.example",
        "Date": date,
        "Digest": "SHA-256=" + base64.b64encode(hashlib.sha256(BODY).digest()).decode(),
        "Signature": cavage_header(alice_key, text, params),
    }
    assert (
        await reason_of(headers, key_store) == "the Digest header must be signed on a POST request"
    )


async def test_sha512_only_digest_is_refused(alice_key, key_store) -> None:
    """Only SHA-256 digests are accepted, as by Mastodon."""
    digest = "SHA-512=" + base64.b64encode(hashlib.sha512(BODY).digest()).decode()
    date = "Tue, 07 Jul 2026 10:00:00 GMT"
    text = (
        f"(request-target): post /users/bob/inbox\nhost: b.example\ndate: {date}\ndigest: {digest}"
    )
    params = f'keyId="{KEY_ID}",algorithm="rsa-sha256",headers="(request-target) host date digest"'
    headers = {
        "Host": "b.example",
        "Date": date,
        "Digest": digest,
        "Signature": cavage_header(alice_key, text, params),
    }
    assert await reason_of(headers, key_store) == "only SHA-256 digests are supported"


async def test_rfc9421_swapped_body_is_a_digest_mismatch(alice_key, key_store) -> None:
    """RFC 9421 Content-Digest is recomputed too."""
    headers = signed_post(alice_key, scheme="rfc9421")
    reason = await reason_of(headers, key_store, body=b"{}")
    assert reason == "digest mismatch: the body does not match its signed digest"


async def test_rfc9421_post_without_content_digest_is_refused(alice_key, key_store) -> None:
    """An RFC 9421 POST must cover content-digest."""
    headers = sign_request_headers(
        "GET", INBOX, key_id=KEY_ID, private_pem=alice_key.private_pem, scheme="rfc9421", now=NOW
    )
    reason = await reason_of(headers, key_store, body=b"")
    assert reason == "the Content-Digest header must be signed on a POST request"


# ----------------------------------------------------------------- replay to another target


def signed_get(
    key: KeyPair, url: str = "https://b.example/users/bob/outbox?page=1", scheme: str = "cavage"
) -> dict:
    return sign_request_headers(
        "GET", url, key_id=KEY_ID, private_pem=key.private_pem, now=NOW, scheme=scheme
    )  # type: ignore[arg-type]


@pytest.mark.parametrize("scheme", ["cavage", "rfc9421"])
async def test_signed_get_verifies_at_its_own_target(alice_key, key_store, scheme) -> None:
    result = await verify(
        signed_get(alice_key, scheme=scheme),
        method="GET",
        target="/users/bob/outbox?page=1",
        body=b"",
        store=key_store,
    )
    assert result.owner == ALICE


@pytest.mark.parametrize("scheme", ["cavage", "rfc9421"])
@pytest.mark.parametrize(
    ("method", "target", "host"),
    [
        ("GET", "/users/carol/outbox?page=1", "b.example"),  # other path
        ("GET", "/users/bob/outbox?page=1&x=2", "b.example"),  # other query
        ("GET", "/users/bob/outbox", "b.example"),  # query dropped
        ("GET", "/users/bob/outbox?page=1", "c.example"),  # other Host
        ("DELETE", "/users/bob/outbox?page=1", "b.example"),  # other method
    ],
)
async def test_signed_get_replayed_elsewhere_is_refused(
    alice_key, key_store, scheme, method, target, host
):
    """A signed GET replayed to another path/query/Host/method -> 401."""
    headers = signed_get(alice_key, scheme=scheme)
    headers["Host"] = host
    reason = await reason_of(headers, key_store, method=method, target=target, body=b"")
    assert reason == "signature does not verify with the signer's key"
    assert key_store.calls == [(KEY_ID, False), (KEY_ID, True)]  # one re-fetch, then reject


@pytest.mark.parametrize("scheme", ["cavage", "rfc9421"])
async def test_signed_get_replayed_as_post_is_refused(alice_key, key_store, scheme) -> None:
    """A signed GET replayed as a POST is refused (no signed digest)."""
    headers = signed_get(alice_key, scheme=scheme)
    reason = await reason_of(headers, key_store, target="/users/bob/outbox?page=1")
    assert reason in (
        "the Digest header must be signed on a POST request",
        "the Content-Digest header must be signed on a POST request",
    )


async def test_get_must_sign_host(alice_key, key_store) -> None:
    """A GET must sign Host, or it could be replayed to another server."""
    date = "Tue, 07 Jul 2026 10:00:00 GMT"
    text = f"(request-target): get /users/bob\ndate: {date}"
    params = f'keyId="{KEY_ID}",algorithm="rsa-sha256",headers="(request-target) date"'
    headers = {
        "Host": "b.example",
        "Date": date,
        "Signature": cavage_header(alice_key, text, params),
    }
    reason = await reason_of(headers, key_store, method="GET", target="/users/bob", body=b"")
    assert reason == "the Host header must be signed on a GET request"


@pytest.mark.parametrize(
    ("signed", "reason"),
    [
        ("(request-target) host digest", "the Date header or (created) must be signed"),
        ("host date", "(request-target) or the Digest header must be signed"),
        (
            "(request-target) (created) host date digest",
            "(created) and (expires) are only allowed with hs2019",
        ),
    ],
)
async def test_mastodon_signed_header_coverage_rules(alice_key, key_store, signed, reason) -> None:
    """Mastodon's rules on which headers must be signed, each with its own reason."""
    headers = signed_post(alice_key)
    params = headers["Signature"].split(",headers=")[0]
    headers["Signature"] = f'{params},headers="{signed}",signature="AAAA"'
    assert await reason_of(headers, key_store) == reason


async def test_rfc9421_requires_method_and_target(alice_key, key_store) -> None:
    """Mastodon's RFC 9421 profile: @method, @target-uri and created required; one algorithm."""
    headers = signed_post(alice_key, scheme="rfc9421")
    good_input = headers["Signature-Input"]
    headers["Signature-Input"] = good_input.replace('"@method" ', "")
    assert await reason_of(headers, key_store) == "@method and @target-uri must be signed"
    headers["Signature-Input"] = good_input.replace(';alg="rsa-v1_5-sha256"', ';alg="ed25519"')
    assert await reason_of(headers, key_store) == "unsupported signature algorithm 'ed25519'"
    created = good_input.split("created=")[1].split(";")[0]
    headers["Signature-Input"] = good_input.replace(f";created={created}", "")
    assert await reason_of(headers, key_store) == "signature has no created parameter"
    headers["Signature-Input"] = good_input + ', sig2=("@method")'
    assert await reason_of(headers, key_store) == "exactly one RFC 9421 signature is supported"
    headers["Signature-Input"] = "sig1=(((("
    assert (await reason_of(headers, key_store)).startswith("malformed RFC 9421 signature headers")


# ----------------------------------------------------------------- time window


@pytest.mark.parametrize(
    ("offset", "reason"),
    [
        (timedelta(hours=-2), "signature has expired: date is too far in the past"),
        (timedelta(minutes=-66), "signature has expired: date is too far in the past"),
        (timedelta(hours=2), "signature date is too far in the future"),
        (timedelta(minutes=61), "signature date is too far in the future"),
    ],
)
@pytest.mark.parametrize("scheme", ["cavage", "rfc9421"])
async def test_stale_or_future_date_is_refused(
    alice_key, key_store, offset, reason, scheme
) -> None:
    """Date now-2h / now+2h -> 401 (fake clock; 1 h future, 65 min past)."""
    headers = signed_post(alice_key, now=NOW + offset, scheme=scheme)
    assert await reason_of(headers, key_store) == reason
    assert key_store.calls == []


@pytest.mark.parametrize(
    "offset", [timedelta(seconds=-30), timedelta(minutes=-64), timedelta(minutes=59)]
)
async def test_date_inside_the_window_is_accepted(alice_key, key_store, offset) -> None:
    """now-30 s (and the window's edges) -> OK."""
    assert (await verify(signed_post(alice_key, now=NOW + offset), store=key_store)).owner == ALICE


async def test_unparsable_date_is_refused(alice_key, key_store) -> None:
    """An unparsable Date -> 401."""
    headers = signed_post(alice_key)
    headers["Date"] = "yesterday-ish"
    assert await reason_of(headers, key_store) == "Date header is not a valid HTTP date"


# ----------------------------------------------------------------- key binding and key refresh


async def test_key_with_owner_on_another_origin_is_refused(alice_key, key_store) -> None:
    """keyId https://evil/k with owner https://victim/bob -> 401 (key and owner share an origin)."""
    key_store.keys.clear()
    evil = "https://evil.example/k"
    key_store.add(evil, "https://victim.example/users/bob", alice_key.public_pem)
    headers = sign_request_headers(
        "POST",
        INBOX,
        key_id=evil,
        private_pem=alice_key.private_pem,
        body=BODY,
        content_type=CT,
        now=NOW,
    )
    reason = await reason_of(headers, key_store)
    assert reason == (
        "key https://evil.example/k is not on the same origin as its owner "
        "https://victim.example/users/bob"
    )


async def test_resolved_key_must_match_the_key_id(alice_key, key_store) -> None:
    """The resolved key must be the one named by keyId."""
    key_store.keys[KEY_ID] = key_store.keys[KEY_ID].__class__(
        ALICE + "#other-key", ALICE, alice_key.public_pem
    )
    reason = await reason_of(signed_post(alice_key), key_store)
    assert reason == f"resolved key id {ALICE}#other-key does not match keyId {KEY_ID}"


async def test_unknown_key_and_fetch_failure(alice_key, key_store) -> None:
    key_store.keys.clear()
    assert await reason_of(signed_post(alice_key), key_store) == f"unknown key {KEY_ID}"

    async def failing(key_id: str, refresh: bool):
        raise FetchError(key_id, "remote answered HTTP 410")

    reason = await reason_of(signed_post(alice_key), failing)
    assert reason == f"could not fetch the signer's key {KEY_ID}: remote answered HTTP 410"


async def test_rotated_key_is_refetched_once(alice_key, other_key, key_store) -> None:
    """Verification fails with the cached key (a rotated key) -> one refresh, then OK."""
    key_store.keys.clear()
    key_store.add(KEY_ID, ALICE, alice_key.public_pem)
    key_store.fresh[KEY_ID] = key_store.keys[KEY_ID].__class__(KEY_ID, ALICE, other_key.public_pem)
    result = await verify(signed_post(other_key), store=key_store)
    assert result.owner == ALICE
    assert key_store.calls == [(KEY_ID, False), (KEY_ID, True)]


async def test_wrong_key_rejected_after_one_refresh(alice_key, other_key, key_store) -> None:
    reason = await reason_of(signed_post(other_key), key_store)
    assert reason == "signature does not verify with the signer's key"
    assert key_store.calls == [(KEY_ID, False), (KEY_ID, True)]


async def test_authorization_header_form(alice_key, key_store) -> None:
    headers = signed_post(alice_key)
    headers["Authorization"] = "Signature " + headers.pop("Signature")
    assert (await verify(headers, store=key_store)).owner == ALICE
