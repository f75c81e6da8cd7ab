"""HTTP message signatures: draft-cavage-12 and RFC 9421, signing and verifying.

This module is the public API; the schemes live in `activitypub.httpsig`
(`common`, `cavage`, `rfc9421`) and every public name is re-exported here.

Signing, in the byte-exact form Mastodon verifies:

- `sign_request_headers(...)` returns the headers to add to one request, cavage by default
  (`(request-target) host date digest content-type` for POST, `(request-target) host date`
  for GET, query included) or RFC 9421 (`@method @target-uri [content-digest]`, `created`,
  `rsa-v1_5-sha256`, with an RFC 9530 `Content-Digest`).
- `SignatureAuth` is the same as an `httpx.Auth`, for a shared client.

Verifying: `await verify_request(...)` rebuilds the signed message from the raw request,
enforces Mastodon's rules, recomputes the body digest, fetches the key through an injected
resolver (once more with `refresh=True` when verification fails, for rotated keys), checks
that key and owner share an origin, and returns a `VerifiedSignature` — or raises
`SignatureError` whose `reason` says exactly what was wrong. So a malformed signature, a
swapped body, a request replayed to another target, a stale or future date and a key that
its claimed owner does not vouch for are all refused. Mapping that to a 401 is the caller's
policy.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from datetime import datetime

import httpx

from activitypub.errors import SignatureError
from activitypub.httpsig.cavage import (
    CavageParams,
    cavage_headers,
    cavage_signing_string,
    parse_signature_header,
    verify_cavage,
)
from activitypub.httpsig.common import (
    BODY_METHODS,
    CLOCK_SKEW,
    DEFAULT_EXPIRY,
    MAX_EXPIRY,
    HeaderInput,
    KeyResolver,
    SignatureScheme,
    VerifiedSignature,
    format_http_date,
    header_lists,
    joined,
    utcnow,
)
from activitypub.httpsig.rfc9421 import (
    RFC9421_ALGORITHM,
    RFC9421_LABEL,
    rfc9421_headers,
    verify_rfc9421,
)
from activitypub.keys import PublicKeyInfo

__all__ = [
    "CLOCK_SKEW",
    "DEFAULT_EXPIRY",
    "MAX_EXPIRY",
    "RFC9421_ALGORITHM",
    "RFC9421_LABEL",
    "CavageParams",
    "HeaderInput",
    "KeyResolver",
    "PublicKeyInfo",
    "SignatureAuth",
    "SignatureScheme",
    "VerifiedSignature",
    "cavage_signing_string",
    "format_http_date",
    "parse_signature_header",
    "sign_request_headers",
    "verify_request",
]


def sign_request_headers(
    method: str,
    url: str | httpx.URL,
    *,
    key_id: str,
    private_pem: str,
    body: bytes | None = None,
    content_type: str | None = None,
    scheme: SignatureScheme = "cavage",
    now: datetime | None = None,
) -> dict[str, str]:
    """Return the headers that sign one request: Host, Date, digests and the signature.

    Send the returned headers together with exactly `body` and `content_type`.
    """
    target_url = url if isinstance(url, httpx.URL) else httpx.URL(url)
    method = method.upper()
    moment = utcnow(now)
    headers = {"Host": target_url.netloc.decode("ascii"), "Date": format_http_date(moment)}
    if content_type is not None:
        headers["Content-Type"] = content_type
    if scheme == "rfc9421":
        headers.update(rfc9421_headers(method, target_url, key_id, private_pem, body, moment))
    else:
        headers.update(cavage_headers(method, target_url, key_id, private_pem, body, headers))
    return headers


class SignatureAuth(httpx.Auth):
    """Sign every request of an `httpx` client (cavage by default, or RFC 9421).

    `clock` returns the current time; inject one in tests.
    """

    requires_request_body = True

    def __init__(
        self,
        key_id: str,
        private_pem: str,
        *,
        scheme: SignatureScheme = "cavage",
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.key_id = key_id
        self.private_pem = private_pem
        self.scheme: SignatureScheme = scheme
        self.clock = clock

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        self.sign(request)
        yield request

    def sign(self, request: httpx.Request) -> None:
        """Add the signature headers to `request` in place."""
        body = request.content
        signed = sign_request_headers(
            request.method,
            request.url,
            key_id=self.key_id,
            private_pem=self.private_pem,
            body=body if body or request.method in BODY_METHODS else None,
            content_type=request.headers.get("content-type"),
            scheme=self.scheme,
            now=self.clock() if self.clock else None,
        )
        for name, value in signed.items():
            request.headers[name] = value


async def verify_request(
    method: str,
    target: str,
    headers: HeaderInput,
    body: bytes,
    key_resolver: KeyResolver,
    *,
    now: datetime | None = None,
    scheme: str = "https",
) -> VerifiedSignature:
    """Verify the HTTP signature of one incoming request.

    `target` is the raw path and query from the request line; `headers` the raw headers
    (a mapping, or (name, value) pairs for repeated fields); `scheme` the public scheme
    used for RFC 9421 `@target-uri`. Raises `SignatureError` with a specific reason.

    A request with `Signature-Input` is RFC 9421; otherwise the cavage signature comes from
    `Signature`, or from `Authorization: Signature ...`.
    """
    lists = header_lists(headers)
    moment = utcnow(now)
    if "signature-input" in lists:
        return await verify_rfc9421(
            method.upper(), target, lists, body, key_resolver, moment, scheme
        )
    raw = joined(lists, "signature")
    if raw is None:
        auth = joined(lists, "authorization") or ""
        if auth[:10].lower() == "signature ":
            raw = auth[10:]
    if raw is None:
        raise SignatureError("request is not signed: no Signature header")
    return await verify_cavage(method.upper(), target, lists, body, key_resolver, moment, raw)
