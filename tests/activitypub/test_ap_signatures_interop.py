"""Interop both ways with independent implementations: apsig (draft-cavage) and
http_message_signatures (RFC 9421). They check against the real clock, so these tests sign
with the real current time (no waiting involved)."""

from __future__ import annotations

import warnings

import httpx
from apsig.draft.sign import Signer as ApsigSigner
from apsig.draft.verify import Verifier as ApsigVerifier
from http_message_signatures import (
    HTTPMessageSigner,
    HTTPMessageVerifier,
    HTTPSignatureKeyResolver,
    algorithms,
)

from activitypub.keys import KeyPair, load_private_key, load_public_key
from activitypub.signatures import sign_request_headers, verify_request

KEY_ID = "https://a.example/users/alice#main-key"
INBOX = "https://b.example/users/bob/inbox"
BODY = b'{"type":"Follow","actor":"https://a.example/users/alice"}'
CT = "application/activity+json"


async def test_apsig_verifies_our_cavage_post(alice_key: KeyPair) -> None:
    """An independent verifier accepts our cavage POST signature."""
    headers = sign_request_headers(
        "POST", INBOX, key_id=KEY_ID, private_pem=alice_key.private_pem, body=BODY, content_type=CT
    )
    verifier = ApsigVerifier(alice_key.public_pem, "POST", INBOX, headers, BODY)
    assert verifier.verify(raise_on_fail=True) == KEY_ID


async def test_apsig_verifies_our_cavage_get(alice_key: KeyPair) -> None:
    """Our signed GET verifies (apsig signs the path only, so no query here)."""
    url = "https://b.example/users/bob"
    headers = sign_request_headers("GET", url, key_id=KEY_ID, private_pem=alice_key.private_pem)
    assert ApsigVerifier(alice_key.public_pem, "GET", url, headers).verify(True) == KEY_ID


async def test_apsig_verifies_our_hs2019(alice_key: KeyPair) -> None:
    """hs2019 is rsa-sha256 on the wire for RSA keys; apsig only knows the latter name."""
    headers = sign_request_headers(
        "POST", INBOX, key_id=KEY_ID, private_pem=alice_key.private_pem, body=BODY, content_type=CT
    )
    ours_as_hs2019 = headers["Signature"].replace('"rsa-sha256"', '"hs2019"')
    mapped = dict(headers, Signature=ours_as_hs2019.replace('"hs2019"', '"rsa-sha256"'))
    assert ApsigVerifier(alice_key.public_pem, "POST", INBOX, mapped, BODY).verify(True) == KEY_ID


async def test_we_verify_apsig_signatures(alice_key: KeyPair, key_store) -> None:
    """apsig signs (request-target) date host digest; we accept it, and as hs2019 too."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        signed = ApsigSigner(
            headers={"Content-Type": CT},
            private_key=load_private_key(alice_key.private_pem),
            method="POST",
            url=INBOX,
            key_id=KEY_ID,
            body=BODY,
        ).sign()
    result = await verify_request("POST", "/users/bob/inbox", signed, BODY, key_store)
    assert result.owner == "https://a.example/users/alice" and result.algorithm == "rsa-sha256"
    signed["Signature"] = signed["Signature"].replace('"rsa-sha256"', '"hs2019"')
    result = await verify_request("POST", "/users/bob/inbox", signed, BODY, key_store)
    assert result.algorithm == "hs2019"


class _Keys(HTTPSignatureKeyResolver):
    def __init__(self, key: KeyPair) -> None:
        self.key = key

    def resolve_public_key(self, key_id: str):  # type: ignore[no-untyped-def]
        assert key_id == KEY_ID
        return load_public_key(self.key.public_pem)

    def resolve_private_key(self, key_id: str):  # type: ignore[no-untyped-def]
        return load_private_key(self.key.private_pem)


async def test_http_message_signatures_verifies_our_rfc9421(alice_key: KeyPair) -> None:
    """Our RFC 9421 POST (with RFC 9530 Content-Digest) verifies independently."""
    headers = sign_request_headers(
        "POST",
        INBOX,
        key_id=KEY_ID,
        private_pem=alice_key.private_pem,
        body=BODY,
        content_type=CT,
        scheme="rfc9421",
    )
    request = httpx.Request("POST", INBOX, headers=headers, content=BODY)
    verifier = HTTPMessageVerifier(
        signature_algorithm=algorithms.RSA_V1_5_SHA256, key_resolver=_Keys(alice_key)
    )
    (result,) = verifier.verify(
        request, body=BODY, require_components=("@method", "@target-uri", "content-digest")
    )
    assert result.parameters["keyid"] == KEY_ID and result.body == BODY


async def test_we_verify_http_message_signatures(alice_key: KeyPair, key_store) -> None:
    """We accept a Mastodon-profile RFC 9421 signature made by another library."""
    url = "https://b.example/users/bob/inbox?via=shared"
    request = httpx.Request("POST", url, headers={"Content-Type": CT}, content=BODY)
    signer = HTTPMessageSigner(
        signature_algorithm=algorithms.RSA_V1_5_SHA256, key_resolver=_Keys(alice_key)
    )
    signer.sign(
        request,
        key_id=KEY_ID,
        covered_component_ids=("@method", "@target-uri"),
        body=BODY,
        label="sig",
    )
    result = await verify_request(
        "POST", "/users/bob/inbox?via=shared", list(request.headers.multi_items()), BODY, key_store
    )
    assert result.scheme == "rfc9421"
    assert result.covered == ("@method", "@target-uri", "content-digest")
